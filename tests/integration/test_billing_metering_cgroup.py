"""A job's metered CPU time against the kernel's own accounting, on real freqtrade jobs run
through the sandbox: the tenant's parent cgroup keeps the CPU time of removed containers."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import docker
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from fta.billing.models import UsageEvent
from fta.db import session_scope
from fta.runtime import read_tenant_usage
from fta.settings import get_settings
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
