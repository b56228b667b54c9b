"""A worker that stops (for an upgrade) leaves its running jobs in their containers; the next
worker adopts them and sees them to their end, as if nothing happened: real engine, real
freqtrade, two workers one after the other."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator

import docker
import pytest
from fastapi.testclient import TestClient

from fta.db import session_scope
from fta.jobs.models import Job, JobStatus
from fta.runtime import DockerJobRunner, ManagedContainer
from fta.settings import Settings, get_settings
from tests.support.api import Client, sign_up, upload_strategy
from tests.support.jobs import wait_for_job
from tests.support.sandbox import Sandbox
from tests.support.scoped_worker import ScopedWorker

pytestmark = pytest.mark.docker

BACKTEST = {
    "exchange": "binance",
    "pairs": ["BTC/USDT"],
    "timeframe": "5m",
    "timerange": "20240101-20240103",
    "stake_amount": 100,
    "max_open_trades": 1,
}


class TenantRunner(DockerJobRunner):
    """The engine as one tenant's worker sees it: the other tests' containers are not its
    to adopt or remove."""

    def __init__(self, settings: Settings, labels: dict[str, str], tenant_id: str) -> None:
        super().__init__(settings, extra_labels=labels)
        self.tenant_id = tenant_id

    def list_managed(self) -> list[ManagedContainer]:
        return [c for c in super().list_managed() if c.tenant == self.tenant_id]


@pytest.fixture
def client(http: TestClient) -> Client:
    # Not the sandbox's worker's: this test plays both workers itself.
    return sign_up(http)


@pytest.fixture
def new_worker(client: Client, sandbox: Sandbox) -> Iterator[Callable[..., ScopedWorker]]:
    """Makes a worker of the client's alone, as the sandbox's is (same socket proxy), with
    `settings` changed."""
    made: list[tuple[ScopedWorker, TenantRunner]] = []

    def make(**settings_changed: object) -> ScopedWorker:
        settings = get_settings().model_copy(update=settings_changed)
        runner = TenantRunner(settings, sandbox.labels, client.tenant_id)
        worker = ScopedWorker(runner, settings, max_parallel=1, tenants={client.tenant_id})
        made.append((worker, runner))
        return worker

    yield make
    for worker, runner in made:
        worker.stopping.set()
        worker.pool.shutdown(wait=True)
        runner.close()
    # Its leftovers (cgroups) go with the sandbox's.
    sandbox.forget_tenant(client.tenant_id)


def _container_running(container_id: str) -> bool:
    engine = docker.from_env()
    try:
        return bool(engine.containers.get(container_id).status == "running")
    except docker.errors.NotFound:
        return False
    finally:
        engine.close()


@pytest.mark.timeout(600)
def test_a_running_job_survives_its_worker_and_ends_with_the_next(
    client: Client, new_worker: Callable[..., ScopedWorker]
) -> None:
    job_id = _submit_patient(client)

    first = new_worker()
    assert first.claim_and_start() == 1
    deadline = time.monotonic() + 240
    while "patient: second 3" not in _logs(client, job_id):
        assert time.monotonic() < deadline, _logs(client, job_id)[-2000:]
        time.sleep(0.5)
    # It stops as for an upgrade: the job goes on in its container, and its lease ends, so
    # that the next worker takes over at once rather than after the lease time.
    first.shutdown()
    with session_scope() as session:
        job = session.get(Job, uuid.UUID(job_id))
        assert job is not None
        status, container_id = job.status, job.container_id
    assert status == JobStatus.RUNNING and container_id is not None
    assert _container_running(container_id)
    time.sleep(3)  # it writes lines no worker reads meanwhile

    second = new_worker()
    second.reconcile()
    assert set(second.in_flight) == {uuid.UUID(job_id)}
    ended = wait_for_job(client, job_id, timeout=300)
    assert ended["status"] == "succeeded", (ended, _logs(client, job_id)[-3000:])
    assert client.http.get(f"/api/v1/jobs/{job_id}/result", headers=client.auth).status_code == 200
    # Every line once, in order: what the first worker stored is not stored again, and what
    # was written while no worker listened is not lost.
    seconds = [int(n) for n in re.findall(r"^patient: second (\d+)$", _logs(client, job_id), re.M)]
    assert seconds == list(range(1, 21)), seconds
    assert not _container_running(container_id)


def _submit_patient(client: Client) -> str:
    """A backtest of the strategy that prints one numbered line a second, submitted."""
    strategy_id = upload_strategy(client, "Patient")
    body = {"kind": "backtest", "strategy_id": strategy_id, "config": BACKTEST}
    submitted = client.http.post("/api/v1/jobs", json=body, headers=client.auth)
    assert submitted.status_code == 202, submitted.text
    return str(submitted.json()["id"])


def _logs(client: Client, job_id: str) -> str:
    return client.http.get(f"/api/v1/jobs/{job_id}/logs", headers=client.auth).text


@pytest.mark.timeout(600)
def test_a_killed_workers_running_job_is_left_alone_while_its_lease_runs_then_adopted(
    client: Client, new_worker: Callable[..., ScopedWorker]
) -> None:
    job_id = _submit_patient(client)

    first, second = new_worker(worker_lease_seconds=8.0), new_worker(worker_lease_seconds=8.0)
    assert first.claim_and_start() == 1
    deadline = time.monotonic() + 240
    while "patient: second 3" not in _logs(client, job_id):
        assert time.monotonic() < deadline, _logs(client, job_id)[-2000:]
        time.sleep(0.5)
    container_id = _job_row(job_id).container_id
    assert container_id is not None
    # Both live: the second's reconciler leaves the first's job and container alone.
    second.reconcile()
    assert not second.in_flight and _container_running(container_id)
    job = _job_row(job_id)
    assert job.status == JobStatus.RUNNING and job.worker_id == first.lease.worker_id

    # The first is killed: its threads stop, its lease is never ended; it runs out.
    dead = first.lease.worker_id
    first.stopping.set()
    first.pool.shutdown(wait=True)
    assert _container_running(container_id)
    while True:
        second.reconcile()
        if second.in_flight:
            break
        assert _job_row(job_id).worker_id == dead
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert set(second.in_flight) == {uuid.UUID(job_id)}
    assert _job_row(job_id).worker_id == second.lease.worker_id
    ended = wait_for_job(client, job_id, timeout=300)
    assert ended["status"] == "succeeded", (ended, _logs(client, job_id)[-3000:])
    seconds = [int(n) for n in re.findall(r"^patient: second (\d+)$", _logs(client, job_id), re.M)]
    assert seconds == list(range(1, 21)), seconds
    assert not _container_running(container_id)


def _job_row(job_id: str) -> Job:
    with session_scope() as session:
        job = session.get(Job, uuid.UUID(job_id))
        assert job is not None
        session.expunge(job)
        return job
