"""The operator's view of what runs: each worker's heartbeat says whether the Docker engine
answered it; running jobs and bots across accounts, each account's queue; the kill switches
stop any account's job or bot as its owner could, audited in that account's chain."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from fta.audit.models import AuditEvent
from fta.bots.models import Bot, DesiredState
from fta.db import session_scope
from fta.jobs.models import Job, JobStatus
from fta.operators.models import WorkerHeartbeat
from fta.runtime.protocol import ManagedContainer
from fta.settings import get_settings
from fta.worker.main import Worker
from tests.integration.strategies import source
from tests.support.admins import admin_headers, create_admin
from tests.support.api import Client, leave_nothing_waiting, sign_up, subscribe
from tests.support.fake_runtime import FakeRuntime
from tests.support.jobs import running_job

API = "/api/v1/admin"
DATA_CONFIG = {
    "exchange": "binance",
    "pairs": ["BTC/USDT"],
    "timeframe": "1h",
    "timerange": "20240101-20240103",
}


class EngineDown(FakeRuntime):
    def list_managed(self) -> list[ManagedContainer]:
        raise ConnectionError("the socket proxy refused the connection")


@pytest.fixture(scope="module")
def admin(http: TestClient) -> dict[str, str]:
    return admin_headers(http, create_admin())


@pytest.fixture
def client(http: TestClient) -> Iterator[Client]:
    client = subscribe(sign_up(http, "Watched"))
    yield client
    leave_nothing_waiting(client)


def _heartbeat(name: str) -> WorkerHeartbeat:
    with session_scope() as session:
        beat = session.get(WorkerHeartbeat, name)
        assert beat is not None
        session.expunge(beat)
        return beat


def test_a_workers_heartbeat_says_whether_docker_answers(
    http: TestClient, admin: dict[str, str]
) -> None:
    up = Worker(FakeRuntime(), get_settings(), max_parallel=1)
    up.name = f"worker-up-{uuid.uuid4().hex[:6]}"
    up.heartbeat()
    assert _heartbeat(up.name).docker_ok and _heartbeat(up.name).containers == 0
    down = Worker(EngineDown(), get_settings(), max_parallel=1)
    down.name = f"worker-down-{uuid.uuid4().hex[:6]}"
    down.heartbeat()
    beat = _heartbeat(down.name)
    assert not beat.docker_ok and beat.containers is None
    assert beat.docker_error == "ConnectionError: the socket proxy refused the connection"
    workers = {w["name"]: w for w in http.get(f"{API}/operations", headers=admin).json()["workers"]}
    assert workers[up.name]["docker_ok"] and not workers[up.name]["silent"]
    assert not workers[down.name]["docker_ok"]
    up.pool.shutdown()
    down.pool.shutdown()


def test_the_kill_switches_stop_any_accounts_job_and_bot(
    http: TestClient, admin: dict[str, str], client: Client
) -> None:
    queued = client.http.post(
        "/api/v1/jobs", json={"kind": "download-data", "config": DATA_CONFIG}, headers=client.auth
    ).json()["id"]
    running = running_job(client.tenant_id)
    seen = http.get(f"{API}/operations", headers=admin).json()
    assert str(running) in {job["id"] for job in seen["jobs"]}
    queue = {q["tenant_id"]: q for q in seen["queues"]}[client.tenant_id]
    assert (queue["queued"], queue["running"]) == (1, 1)

    assert http.post(f"{API}/jobs/{running}/cancel", headers=admin).status_code == 202
    assert http.post(f"{API}/jobs/{queued}/cancel", headers=admin).status_code == 202
    with session_scope() as session:
        job = session.get(Job, running)
        assert job is not None and job.cancel_requested  # its worker stops the container
        job = session.get(Job, uuid.UUID(queued))
        assert job is not None and job.status == JobStatus.CANCELLED
    assert http.post(f"{API}/jobs/{queued}/cancel", headers=admin).status_code == 409
    assert http.post(f"{API}/jobs/{uuid.uuid4()}/cancel", headers=admin).status_code == 404

    bot = client.http.post(
        "/api/v1/bots",
        json={
            "name": "watched",
            "strategy_id": client.http.post(
                "/api/v1/strategies",
                json={"name": "Quick", "source": source("Quick")},
                headers=client.auth,
            ).json()["id"],
            "config": {
                "exchange": "binance",
                "pairs": ["BTC/USDT"],
                "timeframe": "5m",
                "stake_amount": 100,
                "max_open_trades": 1,
                "dry_run_wallet": 1000,
            },
        },
        headers=client.auth,
    ).json()["id"]
    with session_scope() as session:
        row = session.get(Bot, uuid.UUID(bot))
        assert row is not None
        row.desired_state = DesiredState.RUNNING  # as a start would, without a live exchange
    assert bot in {b["id"] for b in http.get(f"{API}/operations", headers=admin).json()["bots"]}
    assert http.post(f"{API}/bots/{bot}/stop", headers=admin).status_code == 202
    with session_scope() as session:
        row = session.get(Bot, uuid.UUID(bot))
        assert row is not None and row.desired_state == DesiredState.STOPPED
        actions = session.scalars(
            select(AuditEvent.action).where(
                AuditEvent.tenant_id == client.tenant_id,
                AuditEvent.target.in_([str(running), queued, bot]),
            )
        ).all()
    assert sorted(actions) == [
        "bot.create",
        "bot.stop",
        "job.cancel",
        "job.cancel",
        "job.submit.download-data",
    ]
