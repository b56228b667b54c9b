"""The worker's decisions recorded in Postgres, its containers run by the in-memory runtime
(tests/support/fake_runtime.py): no Docker. A job's container's end becomes the job's status,
error, result and usage; the reconciler removes orphans and fails abandoned jobs; the bot
supervisor starts a bot, records its crash with its cause, and stops it. The same paths
against the real engine: test_job_sandbox.py, test_reconciler.py, test_bot_sandbox.py."""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from fta.bots.models import ActualState, Bot
from fta.db import session_scope, utcnow
from fta.jobs.models import Job, JobLogChunk, JobStatus
from fta.runtime import ContainerSpec, Limits, Usage
from fta.settings import get_settings
from fta.worker.handlers import JobHandler
from fta.worker.reconciler import reconcile
from fta.worker.warm_pool import WARM_OWNER_PREFIX, WarmPool
from tests.support.api import Client, leave_nothing_waiting, sign_up, upload_strategy
from tests.support.fake_runtime import FAKE_IMAGE_ID, FakeRuntime, Outcome
from tests.support.jobs import DOWNLOAD_SUMMARY, claimed_download_job, running_job
from tests.support.scoped_worker import ScopedBotSupervisor

LIMITS = Limits(nano_cpus=500_000_000, memory_bytes=64 << 20, pids=64, tmpfs_bytes=1 << 20)
BOT_CONFIG = {
    "exchange": "binance",
    "pairs": ["BTC/USDT"],
    "timeframe": "5m",
    "stake_amount": 100,
    "max_open_trades": 1,
    "dry_run_wallet": 1000,
}


@pytest.fixture
def client(http: TestClient) -> Iterator[Client]:
    client = sign_up(http)
    yield client
    leave_nothing_waiting(client)


def _job(job_id: uuid.UUID) -> Job:
    with session_scope() as session:
        job = session.get(Job, job_id)
        assert job is not None
        session.expunge(job)
        return job


@pytest.mark.parametrize(
    ("outcome", "status", "error"),
    [
        (
            Outcome(lines=("fetching", "FTA-RESULT:" + json.dumps(DOWNLOAD_SUMMARY)), seconds=0.2),
            JobStatus.SUCCEEDED,
            None,
        ),
        (
            Outcome(
                exit_code=1, lines=("fetching", "FTA-ERROR: the exchange refused"), seconds=0.2
            ),
            JobStatus.FAILED,
            "freqtrade exited with code 1: the exchange refused",
        ),
        (Outcome(oom=True, seconds=0.2), JobStatus.OOM_KILLED, "exceeded the plan's limit"),
    ],
    ids=["succeeded", "failed", "oom_killed"],
)
def test_a_jobs_container_end_is_recorded(
    client: Client, outcome: Outcome, status: JobStatus, error: str | None
) -> None:
    runtime = FakeRuntime()
    # Whether the shared candle cache lacks these candles depends on the tests before.
    runtime.script(Outcome(lines=("filled",)), owner_kind="cache-fill")
    runtime.script(outcome, owner_kind="job")
    job_id = claimed_download_job(client)
    JobHandler(runtime, get_settings()).run(job_id)
    job = _job(job_id)
    assert job.status == status
    assert job.error == error or (error is not None and error in (job.error or ""))
    assert job.market_data_source == get_settings().market_data_source.value
    result = client.http.get(f"/api/v1/jobs/{job_id}/result", headers=client.auth)
    assert (result.status_code == 200) is (status is JobStatus.SUCCEEDED), result.text
    # The job ran in a container of its own, pinned to its image, and it is gone.
    own = [c for c, spec in runtime.created.items() if spec.owner_kind == "job"]
    assert len(own) == 1 and job.container_id == own[0]
    assert not runtime.containers and own[0] in runtime.removed
    # Billed from the samples taken while it ran (the fake reads 1.25 s and 64 MiB).
    assert job.cpu_seconds is not None and job.cpu_seconds >= Decimal("1.25")
    assert job.memory_max_bytes is not None and job.memory_max_bytes >= 64 << 20


def _spec(tenant_id: str, owner: str) -> ContainerSpec:
    return ContainerSpec(
        tenant_id=tenant_id,
        owner_kind="job",
        owner_id=owner,
        image="fta/freqtrade:test",
        command=None,
        env={},
        limits=LIMITS,
        mounts=[],
        network=f"fta-client-{tenant_id}",
    )


def test_the_reconciler_removes_orphans_and_fails_abandoned_jobs(client: Client) -> None:
    runtime = FakeRuntime()
    tenant = client.tenant_id
    supervised, abandoned = running_job(tenant), running_job(tenant)
    kept = runtime.plant(_spec(tenant, str(supervised)))
    abandoned_container = runtime.plant(_spec(tenant, str(abandoned)))
    orphan = runtime.plant(_spec(tenant, str(uuid.uuid4())))
    malformed = runtime.plant(_spec(tenant, "not-a-uuid"))
    waiting = runtime.plant(_spec(tenant, WARM_OWNER_PREFIX + "aaaaaa"))
    unclaimed = runtime.plant(_spec(tenant, WARM_OWNER_PREFIX + "bbbbbb"))
    reconcile(runtime, frozenset({supervised}), warm={waiting})
    assert set(runtime.containers) == {kept, waiting}
    assert set(runtime.removed) == {abandoned_container, orphan, malformed, unclaimed}
    assert _job(supervised).status == JobStatus.RUNNING
    failed = _job(abandoned)
    assert failed.status == JobStatus.FAILED and "vanished" in (failed.error or "")


def _stored_log(job_id: uuid.UUID) -> str:
    with session_scope() as session:
        chunks = session.scalars(
            select(JobLogChunk.text).where(JobLogChunk.job_id == job_id).order_by(JobLogChunk.seq)
        )
        return "".join(chunks)


def _until(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.05)


@pytest.mark.parametrize("warm", [False, True], ids=["own-container", "warm-container"])
def test_a_job_left_running_by_a_stopping_worker_is_finished_by_the_next(
    client: Client, warm: bool
) -> None:
    runtime = FakeRuntime()
    runtime.script(Outcome(lines=("filled",)), owner_kind="cache-fill")
    pool = None
    if warm:
        # A job of the same shape before leaves a warm container for the next one.
        pool = WarmPool(runtime, capacity=1, idle_seconds=60, tenant_cpu=lambda _: None, now=utcnow)
        runtime.script(
            Outcome(lines=("FTA-RESULT:" + json.dumps(DOWNLOAD_SUMMARY),)), owner_kind="job"
        )
        JobHandler(runtime, get_settings(), pool).run(claimed_download_job(client))
        assert pool.held()
    lines = ("loading", "trading", "FTA-RESULT:" + json.dumps(DOWNLOAD_SUMMARY))
    runtime.script(Outcome(lines=lines, seconds=4, usage=Usage(3.5, 80 << 20)), owner_kind="job")
    job_id = claimed_download_job(client)
    stopping = threading.Event()
    first = JobHandler(runtime, get_settings(), pool, stopping)
    thread = threading.Thread(target=first.run, args=(job_id,))
    thread.start()
    _until(lambda: _job(job_id).status == JobStatus.RUNNING and bool(_stored_log(job_id)))
    stopping.set()
    thread.join(timeout=10)
    assert not thread.is_alive()
    # The first worker stopped: the job runs on, in the container it left.
    left = _job(job_id)
    container_id = left.container_id
    assert left.status == JobStatus.RUNNING and container_id in runtime.containers
    assert (pool is not None and container_id in runtime.called("hand_off")) is warm
    assert pool is None or container_id not in pool.held()

    adopted: list[tuple[uuid.UUID, str]] = []
    reconcile(runtime, frozenset(), adopt=lambda job, container: adopted.append((job, container)))
    assert adopted == [(job_id, container_id)]
    assert container_id in runtime.containers
    JobHandler(runtime, get_settings()).adopt(job_id, container_id)

    job = _job(job_id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    # Its output read again from the first line, nothing stored twice.
    assert _stored_log(job_id) == "loading\ntrading\n"
    result = client.http.get(f"/api/v1/jobs/{job_id}/result", headers=client.auth)
    assert result.status_code == 200, result.text
    assert job.cpu_seconds == Decimal("3.5") and job.memory_max_bytes == 80 << 20
    assert container_id in runtime.removed


def _bot(http: TestClient, client: Client) -> uuid.UUID:
    created = http.post(
        "/api/v1/bots",
        json={"name": "alpha", "strategy_id": upload_strategy(client), "config": BOT_CONFIG},
        headers=client.auth,
    )
    assert created.status_code == 201, created.text
    bot_id = created.json()["id"]
    started = http.post(f"/api/v1/bots/{bot_id}/start", headers=client.auth)
    assert started.status_code == 202, started.text
    return uuid.UUID(bot_id)


def _stored(bot_id: uuid.UUID) -> Bot:
    with session_scope() as session:
        bot = session.get(Bot, bot_id)
        assert bot is not None
        session.expunge(bot)
        return bot


def test_a_bot_is_started_its_crash_recorded_and_it_is_stopped(
    http: TestClient, client: Client
) -> None:
    runtime = FakeRuntime()
    bot_id = _bot(http, client)
    supervisor = ScopedBotSupervisor(runtime, get_settings(), {client.tenant_id})
    runtime.script(Outcome(exit_code=2, lines=("starting", "FTA-ERROR: the strategy failed")))
    supervisor.converge()
    bot = _stored(bot_id)
    (container_id,) = runtime.called("start")
    assert bot.actual_state == ActualState.STARTING and bot.container_id == container_id
    spec = runtime.containers[container_id].spec
    assert spec.owner_kind == "bot" and spec.image_id == FAKE_IMAGE_ID
    # Its container exited on its own: a crash, with the entry's cause, and it is removed.
    supervisor.converge()
    bot = _stored(bot_id)
    assert bot.actual_state == ActualState.CRASHED
    assert bot.last_error == "freqtrade exited with code 2: the strategy failed"
    assert "the strategy failed" in (bot.last_log_lines or "")
    assert container_id in runtime.removed
    # Stopped by the client while it waits out its back-off: stopped, no container started.
    stopped = http.post(f"/api/v1/bots/{bot_id}/stop", headers=client.auth)
    assert stopped.status_code == 202, stopped.text
    supervisor.converge()
    supervisor.wait_for_stops(10)
    assert _stored(bot_id).actual_state == ActualState.STOPPED
    assert runtime.called("start") == [container_id]


def test_a_running_bot_is_stopped_in_the_background(http: TestClient, client: Client) -> None:
    runtime = FakeRuntime()
    bot_id = _bot(http, client)
    supervisor = ScopedBotSupervisor(runtime, get_settings(), {client.tenant_id})
    runtime.script(Outcome(seconds=math.inf))
    supervisor.converge()
    (container_id,) = runtime.called("start")
    stopped = http.post(f"/api/v1/bots/{bot_id}/stop", headers=client.auth)
    assert stopped.status_code == 202, stopped.text
    supervisor.converge()
    supervisor.wait_for_stops(10)
    deadline = time.monotonic() + 10
    while _stored(bot_id).actual_state != ActualState.STOPPED and time.monotonic() < deadline:
        time.sleep(0.1)
    bot = _stored(bot_id)
    assert bot.actual_state == ActualState.STOPPED and bot.container_id is None
    assert runtime.called("stop") == [container_id] and container_id in runtime.removed
