"""A job's metered CPU time against the kernel's own accounting, on real freqtrade jobs run
through the sandbox: the tenant's parent cgroup keeps the CPU time of removed containers.
Samples never lose CPU time, memory is billed without page cache, and jobs the reconciler
fails are billed from their containers."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import docker
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from fta.access.models import UsageEvent
from fta.db import session_scope, utcnow
from fta.jobs.models import Job, JobStatus
from fta.runtime import (
    ContainerSpec,
    DockerJobRunner,
    ExitStatus,
    JobTimeout,
    Limits,
    Mount,
    read_tenant_usage,
)
from fta.runtime.spec import JOB_USER, OwnerKind
from fta.settings import get_settings
from fta.worker.log_capture import LogCapture
from fta.worker.network_slots import take_slot_now
from fta.worker.reconciler import reconcile
from fta.worker.sandbox import USAGE_SAMPLE_SECONDS, run_container
from tests.integration.strategies import source
from tests.support.api import Client, sign_up
from tests.support.sandbox import Sandbox

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

BURN_CPU_SECONDS = Decimal(20)
CONFIG = {
    "exchange": "binance",
    "pairs": ["BTC/USDT"],
    "timeframe": "5m",
    "timerange": "20240101-20240110",
    "stake_amount": 100,
    "max_open_trades": 1,
}


@pytest.fixture
def client(http: TestClient, sandbox: Sandbox) -> Iterator[Client]:
    client = sign_up(http)
    sandbox.forget_tenant(client.tenant_id)
    yield client


def _tenant_cpu(tenant_id: str) -> Decimal:
    engine = docker.from_env()
    try:
        info = engine.info()
    finally:
        engine.close()
    usage = read_tenant_usage(
        tenant_id,
        version=2 if info.get("CgroupVersion") == "2" else 1,
        driver=info["CgroupDriver"],
        root=get_settings().tenant_cgroup_root,
    )
    return Decimal(str(usage.cpu_seconds))


def _run(http: TestClient, client: Client, name: str, text: str) -> dict[str, Any]:
    strategy = http.post(
        "/api/v1/strategies", json={"name": name, "source": text}, headers=client.auth
    )
    assert strategy.status_code == 201, strategy.text
    submitted = http.post(
        "/api/v1/jobs",
        json={"kind": "backtest", "strategy_id": strategy.json()["id"], "config": CONFIG},
        headers=client.auth,
    )
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline:
        job: dict[str, Any] = http.get(f"/api/v1/jobs/{job_id}", headers=client.auth).json()
        if job["status"] not in ("queued", "starting", "running"):
            logs = http.get(f"/api/v1/jobs/{job_id}/logs", headers=client.auth).text
            assert job["status"] == "succeeded", (job, logs[-3000:])
            return job
        time.sleep(0.5)
    pytest.fail(f"job {job_id} did not end")


def _metered(client: Client, job_id: str) -> Decimal:
    with session_scope() as session:
        event = session.scalars(
            select(UsageEvent).where(
                UsageEvent.tenant_id == client.tenant_id, UsageEvent.event_key == f"job:{job_id}"
            )
        ).one()
        assert event.subject_kind == "job" and event.subject_id == uuid.UUID(job_id)
        assert event.running_seconds > 0 and event.ram_gb_seconds > 0
        return event.cpu_seconds


def test_metered_cpu_matches_the_cgroup_and_a_burn_shows_as_its_time(
    http: TestClient, client: Client
) -> None:
    burner = source("Burner")
    # The same job without the burn: freqtrade's start-up and backtest. A first one fills
    # the candle cache (a fill is metered to the job that needs it), so that the baseline
    # and the burner run alike, alone in the tenant's cgroup.
    idle = burner.replace("class Burner", "class Unburnt").replace(
        f"BURN_CPU_SECONDS = {BURN_CPU_SECONDS}.0", "BURN_CPU_SECONDS = 0.0"
    )
    assert idle != burner
    _run(http, client, "Warmup", idle.replace("class Unburnt", "class Warmup"))
    baseline = _run(http, client, "Unburnt", idle)
    startup = _metered(client, baseline["id"])

    before = _tenant_cpu(client.tenant_id)
    burnt = _run(http, client, "Burner", burner)
    kernel = _tenant_cpu(client.tenant_id) - before
    metered = _metered(client, burnt["id"])

    assert abs(metered - kernel) <= kernel * Decimal("0.02"), (metered, kernel)
    assert Decimal(str(burnt["usage"]["cpu_seconds"])) == metered
    # The burn shows up as its own time on top of freqtrade's start-up.
    assert abs(metered - startup - BURN_CPU_SECONDS) <= BURN_CPU_SECONDS * Decimal("0.15"), (
        metered,
        startup,
    )


MIB = 1024 * 1024


def _spec(
    runner: DockerJobRunner,
    tenant_id: str,
    owner: uuid.UUID,
    script: str,
    mounts: list[Mount],
    owner_kind: OwnerKind = "job",
) -> ContainerSpec:
    network = runner.ensure_tenant_network(
        tenant_id, take_slot_now(tenant_id, get_settings(), utcnow())
    )
    return ContainerSpec(
        tenant_id=tenant_id,
        owner_kind=owner_kind,
        owner_id=str(owner),
        image="fta/base:bookworm",
        command=["sh", "-c", script],
        env={},
        limits=Limits(nano_cpus=1_000_000_000, memory_bytes=512 * MIB, pids=16, tmpfs_bytes=MIB),
        mounts=mounts,
        network=network.name,
        extra_hosts=network.extra_hosts,
        dns=network.dns,
    )


class SamplesAfterExit(DockerJobRunner):
    """Lets one usage reading fall after the container exited, as a slow wait slice does."""

    exited: ExitStatus | None = None

    def wait(self, container_id: str, timeout_s: float) -> ExitStatus:
        if self.exited is not None:
            return self.exited
        self.exited = super().wait(container_id, timeout_s)  # JobTimeout while it runs
        time.sleep(USAGE_SAMPLE_SECONDS)
        raise JobTimeout(container_id, timeout_s)


def test_a_reading_after_exit_keeps_the_cpu_and_memory_leaves_out_the_page_cache(
    client: Client, sandbox: Sandbox
) -> None:
    runner = SamplesAfterExit(get_settings(), extra_labels=sandbox.labels)
    volume = runner.ensure_volume(f"fta-test-cache-{uuid.uuid4().hex[:12]}")
    engine = docker.from_env()
    engine.containers.run(
        "fta/base:bookworm", ["chown", JOB_USER, "/data"], volumes=[f"{volume}:/data"], remove=True
    )
    # 200 MiB written to disk stays in the page cache, then about 3 s of CPU (a cache fill:
    # the one container that writes to a shared volume).
    script = (
        "dd if=/dev/zero of=/data/written bs=1M count=200 2>/dev/null && sync && "
        "timeout 3 sh -c 'while :; do :; done'; exit 0"
    )
    try:
        report = run_container(
            runner,
            _spec(
                runner,
                client.tenant_id,
                uuid.uuid4(),
                script,
                [Mount(volume, "/data", read_only=False)],
                owner_kind="cache-fill",
            ),
            LogCapture(max_line=1000, max_total=10_000),
            max_seconds=120,
            on_started=lambda _: None,
            on_output=lambda: None,
            cancel_requested=lambda: False,
        )
    finally:
        try:
            engine.volumes.get(volume).remove(force=True)
        finally:
            engine.close()
    assert report.exit_code == 0
    assert report.cpu_seconds is not None and report.cpu_seconds >= 2, report
    assert report.memory_max_bytes is not None and report.memory_max_bytes < 100 * MIB, report


def _abandoned_job(tenant_id: str, cpu_seconds: Decimal | None) -> uuid.UUID:
    with session_scope() as session:
        job = Job(
            tenant_id=tenant_id,
            kind="backtest",
            status=JobStatus.RUNNING,
            config={},
            max_seconds=600,
            started_at=utcnow() - timedelta(seconds=30),
            cpu_seconds=cpu_seconds,
        )
        session.add(job)
        session.flush()
        return job.id


def _event(tenant_id: str, job_id: uuid.UUID) -> UsageEvent | None:
    with session_scope() as session:
        event = session.scalars(
            select(UsageEvent).where(
                UsageEvent.tenant_id == tenant_id, UsageEvent.event_key == f"job:{job_id}"
            )
        ).first()
        if event is not None:
            session.expunge(event)
        return event


def test_jobs_the_reconciler_fails_are_billed_from_their_container_or_last_sample(
    client: Client, sandbox: Sandbox
) -> None:
    runner = DockerJobRunner(get_settings(), extra_labels=sandbox.labels)
    with_container = _abandoned_job(client.tenant_id, None)
    container_id = runner.create(
        _spec(runner, client.tenant_id, with_container, "while :; do :; done", [])
    )
    runner.start(container_id)
    # Its worker stopped after saving a sample of 7.25 s; its container is gone.
    without_container = _abandoned_job(client.tenant_id, Decimal("7.25"))
    time.sleep(3)

    reconcile(runner, frozenset())

    burnt = _event(client.tenant_id, with_container)
    assert burnt is not None and burnt.cpu_seconds >= 1, burnt
    assert 30 <= burnt.running_seconds <= 120 and burnt.ram_gb_seconds > 0
    sampled = _event(client.tenant_id, without_container)
    assert sampled is not None and sampled.cpu_seconds == Decimal("7.25")
    assert 30 <= sampled.running_seconds <= 120
