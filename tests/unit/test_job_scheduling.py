"""The fair pick of the next tenant to start a job, on its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fta.jobs.scheduling import TenantLoad, next_tenant, trial_slots

EARLY = datetime(2026, 1, 1, tzinfo=UTC)


def load(
    name: str,
    running: int,
    *,
    waiting_since: int | None = 0,
    limit: int = 4,
    trial: bool = False,
    may_start: bool = True,
) -> TenantLoad:
    since = None if waiting_since is None else EARLY + timedelta(minutes=waiting_since)
    return TenantLoad(name, running, since, limit, trial, may_start)


def test_the_least_served_tenant_goes_first_whatever_the_queue_order() -> None:
    loads = [load("hog", 3, waiting_since=0), load("late", 0, waiting_since=30)]
    assert next_tenant(loads, trial_slots=2) == "late"


def test_among_equals_the_oldest_waiting_job_goes_first() -> None:
    loads = [load("b", 1, waiting_since=5), load("a", 1, waiting_since=9)]
    assert next_tenant(loads, trial_slots=2) == "b"


def test_a_tenant_at_its_limit_waits_and_others_pass() -> None:
    loads = [load("full", 0, limit=0), load("capped", 2, limit=2), load("free", 3, limit=4)]
    assert next_tenant(loads, trial_slots=2) == "free"
    assert next_tenant(loads[:2], trial_slots=2) is None


def test_trials_together_hold_at_most_their_part_of_the_pool() -> None:
    trials = [load("t1", 1, trial=True), load("t2", 0, trial=True, waiting_since=1)]
    assert next_tenant(trials, trial_slots=1) is None
    assert next_tenant([*trials, load("paying", 2)], trial_slots=1) == "paying"
    assert next_tenant(trials, trial_slots=2) == "t2"


def test_a_tenant_that_may_not_start_or_has_nothing_waiting_is_skipped() -> None:
    loads = [load("blocked", 0, may_start=False), load("idle", 0, waiting_since=None)]
    assert next_tenant(loads, trial_slots=1) is None


@pytest.mark.parametrize(
    ("slots", "percent", "expected"), [(4, 50, 2), (2, 50, 1), (1, 10, 1), (10, 100, 10)]
)
def test_the_trials_part_of_the_pool_is_at_least_one_slot(
    slots: int, percent: int, expected: int
) -> None:
    assert trial_slots(slots, percent) == expected
