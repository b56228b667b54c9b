"""The job state machine allows exactly the documented transitions."""

from __future__ import annotations

import pytest

from fta.jobs.models import FINAL_STATUSES, TRANSITIONS, Job, JobStatus
from fta.jobs.service import advance


def _job(status: JobStatus) -> Job:
    return Job(status=status, kind="backtest", config={}, max_seconds=60)


@pytest.mark.parametrize(
    ("start", "end"),
    [(s, e) for s, targets in TRANSITIONS.items() for e in targets],
)
def test_allowed_transitions(start: JobStatus, end: JobStatus) -> None:
    job = _job(start)
    advance(job, end)
    assert job.status == end
    assert (job.finished_at is not None) == (end in FINAL_STATUSES)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (JobStatus.QUEUED, JobStatus.RUNNING),
        (JobStatus.QUEUED, JobStatus.SUCCEEDED),
        (JobStatus.SUCCEEDED, JobStatus.FAILED),
        (JobStatus.CANCELLED, JobStatus.QUEUED),
        (JobStatus.RUNNING, JobStatus.STARTING),
    ],
)
def test_forbidden_transitions(start: JobStatus, end: JobStatus) -> None:
    with pytest.raises(ValueError, match="illegal transition"):
        advance(_job(start), end)
