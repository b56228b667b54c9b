"""Claiming queued jobs: one claim per job, each tenant within its bounds, the pool shared
fairly, trial accounts bounded harder than paying ones."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from fta.db import session_scope
from fta.jobs import service as jobs
from fta.jobs.models import ACTIVE_STATUSES, Job, JobStatus
from tests.support.api import Client, sign_up, subscribe

CONFIG = {
    "exchange": "binance",
    "pairs": ["BTC/USDT"],
    "timeframe": "5m",
    "timerange": "20240101-20240102",
}


def _submit(client: Client, **extra: object) -> str:
    response = client.http.post(
        "/api/v1/jobs",
        json={"kind": "download-data", "config": CONFIG, **extra},
        headers=client.auth,
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def _claim(tenants: list[Client], slots: int) -> str | None:
    """One claim for a pool of `slots`, among these tenants' jobs only."""
    with session_scope() as session:
        job = jobs.claim_next_job(session, slots=slots, tenants=[t.tenant_id for t in tenants])
        if job is None:
            return None
        assert job.status == JobStatus.STARTING
        return str(job.id)


def _finish(job_id: str) -> None:
    with session_scope() as session:
        job = session.get(Job, job_id)
        assert job is not None
        jobs.advance(job, JobStatus.FAILED, error="test")


@pytest.fixture
def clients(http: TestClient) -> Iterator[list[Client]]:
    """Sign-ups of one test; their unfinished jobs are cancelled afterwards."""
    made: list[Client] = []
    yield made
    with session_scope() as session:
        session.execute(
            update(Job)
            .where(
                Job.tenant_id.in_([c.tenant_id for c in made]),
                Job.status.in_([*ACTIVE_STATUSES, JobStatus.QUEUED]),
            )
            .values(status=JobStatus.CANCELLED)
        )


def test_a_paying_tenant_runs_its_plans_concurrency_oldest_first(
    http: TestClient, clients: list[Client]
) -> None:
    client = subscribe(sign_up(http))
    clients.append(client)
    submitted = [_submit(client) for _ in range(3)]  # the default plan runs 2 at once
    claimed = [_claim([client], slots=4) for _ in range(3)]
    assert claimed == [*submitted[:2], None]
    _finish(submitted[0])
    assert _claim([client], slots=4) == submitted[2]


def test_the_next_slot_goes_to_the_least_served_tenant(
    http: TestClient, clients: list[Client]
) -> None:
    early, late = subscribe(sign_up(http, "Early")), subscribe(sign_up(http, "Late"))
    clients.extend([early, late])
    early_jobs = [_submit(early) for _ in range(3)]
    assert _claim(clients, slots=3) == early_jobs[0]
    late_job = _submit(late)
    # The early tenant's second job waited longer, but the late tenant runs nothing yet.
    assert _claim(clients, slots=3) == late_job
    assert _claim(clients, slots=3) == early_jobs[1]


def test_a_trial_runs_one_job_queues_two_and_is_held_to_its_time_limit(
    http: TestClient, clients: list[Client]
) -> None:
    trial = sign_up(http, "Trial")
    clients.append(trial)
    submitted = [_submit(trial) for _ in range(2)]
    assert _claim([trial], slots=4) == submitted[0]
    _submit(trial)  # two waiting now

    refused = http.post(
        "/api/v1/jobs", json={"kind": "download-data", "config": CONFIG}, headers=trial.auth
    )
    assert refused.status_code == 429, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["retry-after"]) > 0
    assert "2 of your jobs are already waiting" in refused.json()["detail"]
    assert _claim([trial], slots=4) is None, "a trial runs one job at a time"

    too_long = http.post(
        "/api/v1/jobs",
        json={"kind": "download-data", "config": CONFIG, "max_seconds": 901},
        headers=trial.auth,
    )
    assert too_long.status_code == 422, too_long.text
    assert "between 1 and 900 (your free trial's limit)" in too_long.json()["detail"]


def test_trials_together_leave_the_rest_of_the_pool_to_paying_tenants(
    http: TestClient, clients: list[Client]
) -> None:
    first, second = sign_up(http, "TrialA"), sign_up(http, "TrialB")
    paying = subscribe(sign_up(http, "Paying"))
    clients.extend([first, second, paying])
    trial_job = _submit(first)
    _submit(second)
    assert _claim(clients, slots=2) == trial_job
    assert _claim(clients, slots=2) is None, "trials hold half of a pool of two"
    paying_jobs = [_submit(paying) for _ in range(2)]
    assert _claim(clients, slots=2) == paying_jobs[0]
    assert _claim(clients, slots=2) == paying_jobs[1]
