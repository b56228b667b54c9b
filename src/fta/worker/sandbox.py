"""Runs one container to its end: start, stream logs, enforce the deadline, honour cancels.

Shared by tenant jobs and trusted cache fills; all Docker access goes through the runner.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from fta.runtime import (
    ContainerSpec,
    HandOffFailed,
    JobRunner,
    JobTimeout,
    Usage,
)
from fta.worker.containers import UsageSampler, cpu_decimal
from fta.worker.log_capture import LogCapture

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    EXITED = "exited"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    OOM_KILLED = "oom_killed"


@dataclass(frozen=True)
class RunReport:
    outcome: Outcome
    exit_code: int | None
    cpu_seconds: Decimal | None
    memory_max_bytes: int | None
    container_id: str


WAIT_SLICE_SECONDS = 1.0
# The exec that hands a warm container its job takes a fraction of a second; a container that
# has not taken it by then is replaced.
HAND_OFF_SECONDS = 20.0
# Every wait slice: a container's counters vanish with it, so a job that lives a few seconds
# must still be read while it runs (the memory peak is the cgroup's own, since its start).
USAGE_SAMPLE_SECONDS = 1.0


class Detached(Exception):
    """The worker is stopping, or its lease ran out (fta.worker.leases): the job's container
    is left as it is, for the next worker to adopt (fta.worker.reconciler)."""

    def __init__(self, container_id: str) -> None:
        super().__init__(f"container {container_id} left running for the next worker")
        self.container_id = container_id


def run_container(
    runner: JobRunner,
    spec: ContainerSpec,
    capture: LogCapture,
    *,
    max_seconds: int,
    on_started: Callable[[str], None],
    on_output: Callable[[], None],
    cancel_requested: Callable[[], bool],
    on_sample: Callable[[Usage], None] | None = None,
    warm_id: str | None = None,
    detach_requested: Callable[[], bool] | None = None,
) -> RunReport:
    """Creates (verified), starts and supervises a container; removes it once it ended.
    `on_sample` gets the usage so far after each reading. With `warm_id`, a warm container
    of the same spec (fta.worker.warm_pool) is handed the job instead, if it takes it. Once
    `detach_requested` answers true, raises `Detached` and leaves the container running."""
    container_id = _launch(runner, spec, warm_id)
    detached = False
    try:
        on_started(container_id)
        return supervise(
            runner,
            container_id,
            capture,
            memory_limit_bytes=spec.limits.memory_bytes,
            max_seconds=max_seconds,
            on_output=on_output,
            cancel_requested=cancel_requested,
            on_sample=on_sample,
            detach_requested=detach_requested,
        )
    except Detached:
        detached = True
        raise
    finally:
        if not detached:
            runner.remove(container_id)


def supervise(
    runner: JobRunner,
    container_id: str,
    capture: LogCapture,
    *,
    memory_limit_bytes: int,
    max_seconds: int,
    on_output: Callable[[], None],
    cancel_requested: Callable[[], bool],
    on_sample: Callable[[Usage], None] | None = None,
    detach_requested: Callable[[], bool] | None = None,
) -> RunReport:
    """Follows a started container to its end (or kills it at the deadline or on a cancel);
    its output from the first line, whoever started it."""
    follower = threading.Thread(target=_follow, args=(runner, container_id, capture), daemon=True)
    follower.start()
    deadline = time.monotonic() + max_seconds
    outcome: Outcome | None = None
    usage: Usage | None = None
    sampler = UsageSampler(runner, USAGE_SAMPLE_SECONDS)
    while True:
        now = time.monotonic()
        if sampler.due(container_id):
            usage = sampler.read(container_id)
            if usage is not None and on_sample is not None:
                on_sample(usage)
        if outcome is None and detach_requested is not None and detach_requested():
            on_output()
            raise Detached(container_id)
        if cancel_requested():
            runner.kill(container_id)
            outcome = Outcome.CANCELLED
        elif now >= deadline:
            runner.kill(container_id)
            outcome = Outcome.TIMED_OUT
        try:
            status = runner.wait(container_id, min(WAIT_SLICE_SECONDS, max(deadline - now, 0.1)))
            break
        except JobTimeout:
            on_output()
            continue
    if outcome is None and detach_requested is not None and detach_requested():
        # It ended as the worker stops or loses its lease: its record and its removal are the
        # next owner's, which reads it again from the first line.
        raise Detached(container_id)
    follower.join(timeout=10)
    on_output()
    if outcome is None:
        outcome = Outcome.OOM_KILLED if status.oom_killed else Outcome.EXITED
    usage = sampler.read_final(container_id)
    memory = usage.memory_max_bytes if usage else None
    if status.oom_killed:
        # Killed for reaching its limit: that is its peak, whenever the last sample was.
        memory = max(memory or 0, memory_limit_bytes)
    return RunReport(
        outcome=outcome,
        exit_code=status.exit_code,
        cpu_seconds=cpu_decimal(usage) if usage else None,
        memory_max_bytes=memory,
        container_id=container_id,
    )


def _launch(runner: JobRunner, spec: ContainerSpec, warm_id: str | None) -> str:
    """The running container of `spec`'s job: the warm one, or one created now."""
    if warm_id is not None:
        try:
            runner.hand_off(warm_id, spec.env, HAND_OFF_SECONDS)
            return warm_id
        except HandOffFailed as error:
            log.warning("%s; the job gets a container of its own", error)
            runner.remove(warm_id)
    container_id = runner.create(spec)
    try:
        runner.start(container_id)
    except BaseException:
        runner.remove(container_id)
        raise
    return container_id


def _follow(runner: JobRunner, container_id: str, capture: LogCapture) -> None:
    for line in runner.follow_logs(container_id):
        capture.feed(line)
