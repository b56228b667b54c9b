"""The operator's view of what runs: each worker's heartbeat says whether the Docker engine
answered it; running jobs and bots across accounts, each account's queue; the kill switches
stop any account's job or bot as its owner could, audited in that account's chain."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from fta.accounts.models import Tenant, TenantStatus
from fta.audit.models import AuditEvent
from fta.bots.models import Bot, DesiredState
from fta.db import session_scope
from fta.jobs.models import Job, JobStatus
from fta.operators.models import WorkerHeartbeat
from fta.runtime.protocol import ManagedContainer, StorageUnavailable, TenantDiskUse
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


class DiskHelperDown(FakeRuntime):
    def tenant_disk_usage(self) -> list[TenantDiskUse]:
        raise StorageUnavailable("tenant disk helper unreachable: [Errno 2] No such file")


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


MB = 1_000_000


def _disks_of(seen: dict[str, Any], *tenants: str) -> list[dict[str, Any]]:
    return [disk for disk in seen["disks"] if disk["tenant_id"] in tenants]


def test_each_accounts_disk_is_shown_the_fullest_first(
    http: TestClient, admin: dict[str, str], client: Client
) -> None:
    roomy = subscribe(sign_up(http, "Roomy"))
    leaving = subscribe(sign_up(http, "Leaving"))
    runtime = FakeRuntime()
    runtime.disks = {
        client.tenant_id: (200 * MB, 190 * MB),
        roomy.tenant_id: (2_000 * MB, 100 * MB),
        leaving.tenant_id: (200 * MB, 10 * MB),
        "zz7zz7zz": (200 * MB, 200 * MB),  # a disk the database knows no account of
    }
    with session_scope() as session:
        tenant = session.get(Tenant, leaving.tenant_id)
        assert tenant is not None
        tenant.status = TenantStatus.ERASING  # its erasure deletes its disk, then its row
    worker = Worker(runtime, get_settings(), max_parallel=1)
    worker.name = f"worker-disks-{uuid.uuid4().hex[:6]}"
    worker.heartbeat()
    worker.measure_disks()

    seen = http.get(f"{API}/operations", headers=admin).json()
    full, spacious = _disks_of(seen, client.tenant_id, roomy.tenant_id, leaving.tenant_id)
    assert (full["tenant_id"], full["tenant"]) == (client.tenant_id, "Watched")
    assert (full["used_bytes"], full["size_bytes"], full["used_percent"]) == (
        190 * MB,
        200 * MB,
        95,
    )
    assert full["nearly_full"] and not spacious["nearly_full"]
    assert (spacious["tenant_id"], spacious["used_percent"]) == (roomy.tenant_id, 5)
    assert "zz7zz7zz" not in {disk["tenant_id"] for disk in seen["disks"]}
    assert seen["nearly_full_disks"] >= 1
    workers = {w["name"]: w for w in seen["workers"]}
    assert workers[worker.name]["disks_measured_at"] and not workers[worker.name]["disks_error"]

    # The client reads its own disk beside its other storage.
    own = client.http.get("/api/v1/storage", headers=client.auth).json()["data_disk"]
    assert (own["used_bytes"], own["size_bytes"]) == (190 * MB, 200 * MB)
    assert (
        roomy.http.get("/api/v1/storage", headers=roomy.auth).json()["data_disk"]["used_bytes"]
        == 100 * MB
    )

    # The helper down: the worker says why, and the last measures stay shown with their time.
    down = Worker(DiskHelperDown(), get_settings(), max_parallel=1)
    down.name = f"worker-nodisks-{uuid.uuid4().hex[:6]}"
    down.heartbeat()
    down.measure_disks()
    seen = http.get(f"{API}/operations", headers=admin).json()
    beat = {w["name"]: w for w in seen["workers"]}[down.name]
    assert beat["disks_measured_at"] is None and "unreachable" in beat["disks_error"]
    assert len(_disks_of(seen, client.tenant_id, roomy.tenant_id)) == 2

    worker.pool.shutdown()
    down.pool.shutdown()
