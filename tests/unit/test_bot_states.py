"""The worker-side state machine of a bot's container."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fta.bots import service
from fta.bots.models import TRANSITIONS, ActualState, Bot, DesiredState


def _bot(state: ActualState = ActualState.STOPPED) -> Bot:
    return Bot(actual_state=state, desired_state=DesiredState.RUNNING, restarts=0)


def test_every_state_has_a_way_out() -> None:
    assert set(TRANSITIONS) == set(ActualState)
    for state, targets in TRANSITIONS.items():
        assert targets and state not in targets


def test_a_normal_run() -> None:
    bot = _bot()
    service.advance(bot, ActualState.STARTING)
    service.advance(bot, ActualState.RUNNING, container_id="c1")
    assert bot.started_at is not None and bot.container_id == "c1"
    service.advance(bot, ActualState.STOPPING)
    service.advance(bot, ActualState.STOPPED)
    assert bot.container_id is None and bot.started_at is None and bot.restarts == 0


@pytest.mark.parametrize(
    ("start", "target"),
    [
        (ActualState.STOPPED, ActualState.RUNNING),
        (ActualState.STOPPED, ActualState.CRASHED),
        (ActualState.RUNNING, ActualState.STARTING),
        (ActualState.STOPPING, ActualState.RUNNING),
        (ActualState.CRASHED, ActualState.RUNNING),
        (ActualState.CRASHED, ActualState.STOPPING),
    ],
)
def test_illegal_transitions_are_refused(start: ActualState, target: ActualState) -> None:
    bot = _bot(start)
    with pytest.raises(ValueError, match="illegal transition"):
        service.advance(bot, target)
    assert bot.actual_state == start


def test_crashes_back_off_and_count_restarts() -> None:
    bot = _bot(ActualState.RUNNING)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    service.record_crash(bot, "exit code 1", None, now)
    assert bot.actual_state == ActualState.CRASHED
    assert bot.restart_backoff_until == now + timedelta(seconds=10)
    service.advance(bot, ActualState.STARTING)
    assert bot.restarts == 1 and bot.last_error is None
    service.record_crash(bot, "exit code 1", None, now)
    assert bot.restart_backoff_until == now + timedelta(seconds=20)
    service.advance(bot, ActualState.STARTING)
    bot.restarts = 40
    service.record_crash(bot, "exit code 1", None, now)
    assert bot.restart_backoff_until == now + timedelta(minutes=10)


def test_the_documented_diagram_is_the_transition_table() -> None:
    text = (Path(__file__).parents[2] / "docs" / "architecture.md").read_text()
    (diagram,) = re.findall(r"```mermaid\n(stateDiagram-v2\n.*?)```", text, re.DOTALL)
    arrows = re.findall(r"^\s*(\w+) --> (\w+)", diagram, re.MULTILINE)
    drawn = {(ActualState(source), ActualState(target)) for source, target in arrows}
    table = {(source, target) for source, targets in TRANSITIONS.items() for target in targets}
    assert len(arrows) == len(drawn)
    assert drawn == table
    assert re.search(r"\[\*\] --> stopped\b", diagram)


def test_a_bot_that_gave_up_and_stopped_starts_without_counting_a_restart() -> None:
    bot = _bot(ActualState.CRASHED)
    service.advance(bot, ActualState.STOPPED)
    service.advance(bot, ActualState.STARTING)
    assert bot.restarts == 0
