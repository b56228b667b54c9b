"""Claiming queued jobs: oldest first, one claim per job, the plan's concurrency respected."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import update

from fta.db import session_scope
from fta.jobs import service as jobs
from fta.jobs.models import Job, JobStatus
from tests.support.api import Client, sign_up

CONFIG = {
    "exchange": "binance",
    "pairs": ["BTC/USDT"],
    "timeframe": "5m",
    "timerange": "20240101-20240102",
}


def _submit(http: TestClient, client: Client) -> str:
    response = http.post(
        "/api/v1/jobs", json={"kind": "download-data", "config": CONFIG}, headers=client.auth
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def test_claims_respect_order_and_plan_concurrency(http: TestClient) -> None:
    client = sign_up(http)
    submitted = [_submit(http, client) for _ in range(3)]  # the default plan runs 2 at once
    claimed: list[str] = []
    try:
        for _ in range(4):
            with session_scope() as session:
                job = jobs.claim_next_job(session)
                if job is not None and job.tenant_id == client.tenant_id:
                    claimed.append(str(job.id))
                    assert job.status == JobStatus.STARTING
        assert claimed == submitted[:2]
        with session_scope() as session:
            finished = session.get(Job, claimed[0])
            assert finished is not None
            jobs.advance(finished, JobStatus.FAILED, error="test")
        with session_scope() as session:
            third = jobs.claim_next_job(session)
            assert third is not None and str(third.id) == submitted[2]
            claimed.append(str(third.id))
    finally:
        with session_scope() as session:
            session.execute(
                update(Job)
                .where(Job.tenant_id == client.tenant_id, Job.status != JobStatus.FAILED)
                .values(status=JobStatus.CANCELLED)
            )
