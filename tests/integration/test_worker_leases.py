"""Several workers against one database (fta.worker.leases): real Postgres, real worker code,
the in-memory runtime of tests/support/fake_runtime.py as the one engine they share. No job is
claimed twice, a live worker's running job is left alone by the other's reconciler, a dead
worker's job is adopted once its lease has run out, and a worker whose lease ran out stops
acting as its jobs' owner. The same against the real engine: test_job_adoption.py."""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from fta.accounts.models import Tenant, TenantStatus
from fta.bots import service as bots
from fta.bots.models import ActualState
from fta.db import session_scope
from fta.jobs.models import Job, JobStatus
from fta.operators.models import WorkerLease
from fta.settings import get_settings
from fta.worker import leases
from fta.worker.leases import Lease
from fta.worker.warm_pool import warm_worker
from tests.integration.test_worker_fake_runtime import (
    _bot,
    _job,
    _stored,
    _stored_log,
    _until,
)
from tests.support.api import Client, leave_nothing_waiting, sign_up
from tests.support.fake_runtime import FakeRuntime, Outcome
from tests.support.jobs import DOWNLOAD_CONFIG, DOWNLOAD_SUMMARY
from tests.support.scoped_worker import ScopedBotSupervisor, ScopedWorker

RESULT = "FTA-RESULT:" + json.dumps(DOWNLOAD_SUMMARY)
JOBS = 24


@pytest.fixture
def clients(http: TestClient) -> Iterator[list[Client]]:
    made = [sign_up(http, f"Lease{n}") for n in range(3)]
    yield made
    for client in made:
        leave_nothing_waiting(client)


@pytest.fixture
def workers(clients: list[Client]) -> Iterator[Callable[..., ScopedWorker]]:
    """Makes workers of the clients' alone, sharing one runtime (one engine); stops them all
    afterwards without ending their leases (their jobs are all ended by then)."""
    made: list[ScopedWorker] = []

    def make(runtime: FakeRuntime, **settings: object) -> ScopedWorker:
        tuned = get_settings().model_copy(update={"warm_containers": 0, **settings})
        tenants = {client.tenant_id for client in clients}
        worker = ScopedWorker(runtime, tuned, max_parallel=2, tenants=tenants)
        made.append(worker)
        return worker

    yield make
    for worker in made:
        worker.stopping.set()
        worker.pool.shutdown(wait=True)


def _submit(client: Client) -> uuid.UUID:
    job_id = _try_submit(client)
    assert job_id is not None
    return job_id


def _try_submit(client: Client) -> uuid.UUID | None:
    """A job of the client's submitted, or None while its queue is full (a trial's is short)."""
    response = client.http.post(
        "/api/v1/jobs",
        json={"kind": "download-data", "config": DOWNLOAD_CONFIG},
        headers=client.auth,
    )
    if response.status_code == 429:
        return None
    assert response.status_code == 202, response.text
    return uuid.UUID(response.json()["id"])


def _expire(worker_id: str) -> None:
    """The lease runs out now, as if its worker had stopped renewing it a lease time ago."""
    with session_scope() as session:
        session.execute(
            update(WorkerLease)
            .where(WorkerLease.id == worker_id)
            .values(expires_at=WorkerLease.started_at)
        )


def _run(worker: ScopedWorker) -> threading.Thread:
    thread = threading.Thread(target=worker.run_forever, name="worker", daemon=True)
    thread.start()
    return thread


# --- the lease itself ----------------------------------------------------------------------


@pytest.mark.usefixtures("app_settings")
def test_a_lease_is_held_while_renewed_and_not_once_ended() -> None:
    now = [0.0]
    lease = Lease("lease-test", 30, clock=lambda: now[0])
    first = lease.acquire()
    assert lease.held() and lease.holds(first) and not lease.holds("another")
    with session_scope() as session:
        assert leases.is_live(session, first) and first in leases.live_workers(session)
    # Its own clock says the lease time passed without a renewal: no longer acted on...
    now[0] = 30.0
    assert not lease.held()
    # ...until a renewal finds it live in the database and extends it.
    assert lease.renew() and lease.held()
    lease.release()
    assert not lease.held()
    with session_scope() as session:
        assert not leases.is_live(session, first)
    # An ended lease is never renewed: a new one, under a new id, is taken instead.
    assert not lease.renew() and not lease.held()
    second = lease.acquire()
    assert second != first and lease.holds(second) and not lease.holds(first)
    lease.release()


@pytest.mark.usefixtures("app_settings")
def test_a_lease_that_ran_out_in_the_database_is_not_renewed() -> None:
    lease = Lease("lease-test", 30)
    worker_id = lease.acquire()
    _expire(worker_id)
    assert not lease.renew()
    assert not lease.held() and not lease.holds(worker_id)


# --- two workers -----------------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_two_workers_run_every_job_exactly_once(
    clients: list[Client], workers: Callable[..., ScopedWorker]
) -> None:
    runtime = FakeRuntime()
    runtime.script(*[Outcome(lines=("filled",))] * 20, owner_kind="cache-fill")
    runtime.script(*[Outcome(lines=("working", RESULT), seconds=0.3)] * 40, owner_kind="job")
    # Each reconciles every half second: a reconciler that took the other's running jobs
    # for abandoned ones would fail or adopt them.
    first = workers(runtime, worker_poll_seconds=0.1, reconcile_interval_seconds=0.5)
    second = workers(runtime, worker_poll_seconds=0.1, reconcile_interval_seconds=0.5)
    submitted = [_submit(client) for client in clients]
    threads = [_run(first)]
    _until(lambda: bool(first.in_flight))
    # The second starts (and reconciles) while the first runs jobs; more keep coming.
    threads.append(_run(second))
    deadline = time.monotonic() + 60
    while len(submitted) < JOBS:
        assert time.monotonic() < deadline, f"{len(submitted)} jobs submitted"
        for client in clients:
            job_id = _try_submit(client)
            if job_id is not None:
                submitted.append(job_id)
        time.sleep(0.05)

    def all_ended() -> bool:
        with session_scope() as session:
            statuses = session.scalars(select(Job.status).where(Job.id.in_(submitted))).all()
        return all(JobStatus(status).is_final for status in statuses)

    _until(all_ended, seconds=120)
    for worker in (first, second):
        worker.stopping.set()
    for thread in threads:
        thread.join(timeout=30)
    owners: Counter[str | None] = Counter()
    for job_id in submitted:
        job = _job(job_id)
        assert job.status == JobStatus.SUCCEEDED, (job_id, job.error)
        assert _stored_log(job_id) == "working\n"
        owners[job.worker_id] += 1
    # One container per job: none ran twice.
    containers = Counter(
        spec.owner_id for spec in runtime.created.values() if spec.owner_kind == "job"
    )
    assert containers == Counter({str(job_id): 1 for job_id in submitted})
    assert set(owners) <= {first.lease.worker_id, second.lease.worker_id}
    assert not runtime.containers


@pytest.mark.timeout(120)
def test_a_live_workers_job_is_left_alone_and_a_dead_ones_adopted(
    clients: list[Client], workers: Callable[..., ScopedWorker]
) -> None:
    runtime = FakeRuntime()
    runtime.script(*[Outcome(lines=("filled",))] * 2, owner_kind="cache-fill")
    runtime.script(Outcome(lines=("loading", "trading", RESULT), seconds=6), owner_kind="job")
    first = workers(runtime, worker_lease_seconds=2.0)
    second = workers(runtime, worker_lease_seconds=2.0)
    job_id = _submit(clients[0])
    assert first.claim_and_start() == 1
    _until(lambda: _job(job_id).status == JobStatus.RUNNING and bool(_stored_log(job_id)))
    container_id = _job(job_id).container_id
    assert container_id is not None and _job(job_id).worker_id == first.lease.worker_id

    # The first is live: the second's reconciler neither fails, adopts nor removes its job.
    second.reconcile()
    assert not second.in_flight
    job = _job(job_id)
    assert job.status == JobStatus.RUNNING and job.worker_id == first.lease.worker_id
    assert container_id in runtime.containers and container_id not in runtime.removed

    # The first dies: its threads stop, its lease is not ended (it runs out).
    dead = first.lease.worker_id
    first.stopping.set()
    first.pool.shutdown(wait=True)
    assert container_id in runtime.containers
    second.reconcile()
    assert not second.in_flight  # not yet: its lease still runs
    _until(lambda: not _live(dead), seconds=5)
    second.reconcile()
    assert set(second.in_flight) == {job_id}
    assert _job(job_id).worker_id == second.lease.worker_id
    _until(lambda: JobStatus(_job(job_id).status).is_final, seconds=30)
    job = _job(job_id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    # Its output read again from the first line, nothing stored twice.
    assert _stored_log(job_id) == "loading\ntrading\n"
    assert Counter(runtime.called("start"))[container_id] == 1
    assert container_id in runtime.removed


@pytest.mark.timeout(120)
def test_a_worker_whose_lease_ran_out_stops_acting_as_owner(
    clients: list[Client], workers: Callable[..., ScopedWorker]
) -> None:
    runtime = FakeRuntime()
    runtime.script(*[Outcome(lines=("filled",))] * 2, owner_kind="cache-fill")
    runtime.script(Outcome(lines=("loading", "trading", RESULT), seconds=5), owner_kind="job")
    runtime.script(Outcome(lines=(RESULT,)), owner_kind="job")
    # Its own renewal does not come round during the test: the test plays it.
    paused, other = workers(runtime, worker_lease_seconds=120.0), workers(runtime)
    job_id = _submit(clients[0])
    assert paused.claim_and_start() == 1
    _until(lambda: _job(job_id).status == JobStatus.RUNNING and bool(_stored_log(job_id)))
    container_id = _job(job_id).container_id
    # It was paused past its lease time: the other takes its job over...
    old = paused.lease.worker_id
    _expire(old)
    other.reconcile()
    assert set(other.in_flight) == {job_id}
    assert _job(job_id).worker_id == other.lease.worker_id
    # ...and its renewal, once it runs again, finds the lease run out.
    assert not paused.lease.renew()
    # It lets go of the job, leaving the container to the other, which sees it through.
    _until(lambda: not paused.in_flight)
    assert container_id in runtime.containers
    _until(lambda: JobStatus(_job(job_id).status).is_final, seconds=30)
    job = _job(job_id)
    assert job.status == JobStatus.SUCCEEDED and job.worker_id == other.lease.worker_id
    assert _stored_log(job_id) == "loading\ntrading\n"
    assert Counter(runtime.called("remove"))[container_id] == 1
    # It claims nothing under the lease that ran out, and reconciles nothing.
    queued = _submit(clients[1])
    assert paused.claim_and_start() == 0
    assert _job(queued).status == JobStatus.QUEUED
    paused.reconcile()
    assert not paused.in_flight
    # A new lease, and it works again.
    assert paused.lease.acquire() != old
    assert paused.claim_and_start() == 1
    assert _job(queued).worker_id == paused.lease.worker_id
    _until(lambda: _job(queued).status == JobStatus.SUCCEEDED, seconds=30)


def _live(worker_id: str) -> bool:
    with session_scope() as session:
        return leases.is_live(session, worker_id)


@pytest.mark.timeout(120)
def test_a_bot_is_converged_by_one_worker_and_taken_over_from_a_dead_one(
    http: TestClient, clients: list[Client]
) -> None:
    client = clients[0]
    runtime = FakeRuntime()
    runtime.script(Outcome(lines=("starting", "running"), seconds=math.inf), owner_kind="bot")
    bot_id = _bot(http, client)
    first_lease, second_lease = Lease("first", 30), Lease("second", 30)
    first_lease.acquire(), second_lease.acquire()
    settings, tenants = get_settings(), {client.tenant_id}
    first = ScopedBotSupervisor(runtime, settings, tenants, first_lease)
    second = ScopedBotSupervisor(runtime, settings, tenants, second_lease)
    first.converge()
    (container_id,) = runtime.called("start")
    bot = _stored(bot_id)
    assert bot.worker_id == first_lease.worker_id and bot.container_id == container_id
    _until(lambda: runtime.called("follow_logs") == [container_id])
    # The first's lease is live: the second neither starts, stops nor follows the bot, nor
    # waits for its row while the first holds it.
    with session_scope() as session:
        assert bots.lock_bot(session, bot_id) is not None
        waiting = threading.Thread(target=second.converge, daemon=True)
        waiting.start()
        waiting.join(timeout=10)
        assert not waiting.is_alive()
    for _ in range(2):
        second.converge()
    assert runtime.called("start") == [container_id]
    assert runtime.called("follow_logs") == [container_id]
    assert not runtime.called("stop") and container_id in runtime.containers
    assert _stored(bot_id).worker_id == first_lease.worker_id
    # The first dies: once its lease has run out, the second follows the running bot again,
    # without starting it twice.
    _expire(first_lease.worker_id)
    second.converge()
    bot = _stored(bot_id)
    assert bot.worker_id == second_lease.worker_id and bot.container_id == container_id
    assert bot.actual_state in (ActualState.STARTING, ActualState.RUNNING)
    _until(lambda: runtime.called("follow_logs") == [container_id, container_id])
    assert runtime.called("start") == [container_id] and not runtime.called("stop")
    # Stopped by its client: the second stops it.
    stopped = http.post(f"/api/v1/bots/{bot_id}/stop", headers=client.auth)
    assert stopped.status_code == 202, stopped.text
    first.converge()  # its lease ran out: it does nothing
    assert not runtime.called("stop")
    second.converge()
    second.wait_for_stops(10)
    assert runtime.called("stop") == [container_id]
    _until(lambda: _stored(bot_id).actual_state == ActualState.STOPPED)
    for lease in (first_lease, second_lease):
        lease.release()


@pytest.mark.timeout(120)
def test_a_warm_container_goes_only_with_its_pools_worker(
    clients: list[Client], workers: Callable[..., ScopedWorker]
) -> None:
    runtime = FakeRuntime()
    runtime.script(*[Outcome(lines=("filled",))] * 2, owner_kind="cache-fill")
    runtime.script(Outcome(lines=(RESULT,)), owner_kind="job")
    first, second = workers(runtime, warm_containers=1), workers(runtime, warm_containers=1)
    assert first.warm is not None
    job_id = _submit(clients[0])
    assert first.claim_and_start() == 1
    _until(lambda: _job(job_id).status == JobStatus.SUCCEEDED)
    _until(lambda: bool(first.warm and first.warm.held()))
    (warm_id,) = first.warm.held()
    assert warm_worker(runtime.containers[warm_id].spec.owner_id) == first.lease.worker_id
    # The first is live: its pool's container is not the second's to remove.
    second.reconcile()
    assert warm_id in runtime.containers
    # Its lease ran out: the container goes.
    _expire(first.lease.worker_id)
    second.reconcile()
    assert warm_id not in runtime.containers and warm_id in runtime.removed


@pytest.mark.timeout(120)
def test_no_warm_container_is_made_for_an_account_that_stopped_being_active(
    clients: list[Client], workers: Callable[..., ScopedWorker]
) -> None:
    runtime = FakeRuntime()
    runtime.script(*[Outcome(lines=("filled",))] * 2, owner_kind="cache-fill")
    runtime.script(Outcome(lines=(RESULT,), seconds=1.0), owner_kind="job")
    worker = workers(runtime, warm_containers=1)
    job_id = _submit(clients[0])
    assert worker.claim_and_start() == 1
    _until(lambda: _job(job_id).status == JobStatus.RUNNING)
    # Suspended while its job runs (any worker's network round may now remove its network).
    with session_scope() as session:
        session.execute(
            update(Tenant)
            .where(Tenant.id == clients[0].tenant_id)
            .values(status=TenantStatus.SUSPENDED)
        )
    _until(lambda: _job(job_id).status == JobStatus.SUCCEEDED)
    _until(lambda: not worker.in_flight)
    assert worker.warm is not None and not worker.warm.held()
    assert not [spec for spec in runtime.created.values() if spec.handoff]
