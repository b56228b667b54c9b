"""A tenant's next job in a container started ahead for it: same result as in a container of
its own, billed like one, and never another tenant's.

Real Docker through the real socket proxy, the real gateway and real freqtrade, through the
API and the sandbox's worker (whose pool starts warm containers after each job)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal

import docker
import pytest
from fastapi.testclient import TestClient

from fta.db import session_scope
from fta.jobs.models import Job
from tests.integration.strategies import source
from tests.support.api import Client, sign_up
from tests.support.jobs import run_job, warm_container
from tests.support.sandbox import Sandbox

pytestmark = pytest.mark.docker

CONFIG = {
    "pairs": ["DOGE/USDT"],
    "timeframe": "5m",
    "timerange": "20230801-20230805",
    "stake_amount": 100,
    "max_open_trades": 1,
}


@pytest.fixture
def tenants(http: TestClient, sandbox: Sandbox) -> Iterator[tuple[Client, Client]]:
    first, second = sign_up(http), sign_up(http)
    sandbox.forget_tenant(first.tenant_id)
    sandbox.forget_tenant(second.tenant_id)
    yield first, second


@pytest.fixture
def engine() -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    yield client
    client.close()


def _cpu_seconds(engine: docker.DockerClient, container_id: str) -> Decimal:
    """The CPU time the container has used so far, from the engine's own counters."""
    stats = engine.api.stats(container_id, stream=False)
    return Decimal(stats["cpu_stats"]["cpu_usage"]["total_usage"]) / Decimal(1_000_000_000)


def _job(job_id: str) -> Job:
    with session_scope() as session:
        job = session.get(Job, uuid.UUID(job_id))
        assert job is not None
        session.expunge(job)
        return job


def test_the_next_job_runs_in_the_container_started_for_it_with_the_same_result(
    http: TestClient, tenants: tuple[Client, Client], engine: docker.DockerClient
) -> None:
    first, second = tenants
    strategy = http.post(
        "/api/v1/strategies",
        json={"name": "RsiQuick", "source": source("RsiQuick")},
        headers=first.auth,
    ).json()["id"]
    cold_id, cold = run_job(first, kind="backtest", strategy_id=strategy, config=CONFIG)
    waiting = warm_container(engine, first.tenant_id)
    assert _job(cold_id).container_id != waiting

    waited_cpu = _cpu_seconds(engine, waiting)
    warm_id, warm = run_job(first, kind="backtest", strategy_id=strategy, config=CONFIG)
    served = _job(warm_id)
    assert served.container_id == waiting
    # Identical to the run in a container of its own: trades, figures and the data used.
    for key in ("trades", "profit_total_abs", "data", "backtest_start_ms", "backtest_end_ms"):
        assert warm[key] == cold[key], key
    # Billed like it: the CPU of its imports, done while it waited, included.
    assert served.cpu_seconds is not None and served.cpu_seconds > waited_cpu
    # It served that one job and is gone; a new one waits for the tenant's next job.
    with pytest.raises(docker.errors.NotFound):
        engine.api.inspect_container(waiting)
    next_warm = warm_container(engine, first.tenant_id)

    # Another tenant's job never runs in it.
    other = http.post(
        "/api/v1/strategies",
        json={"name": "RsiQuick", "source": source("RsiQuick")},
        headers=second.auth,
    ).json()["id"]
    other_id, other_result = run_job(second, kind="backtest", strategy_id=other, config=CONFIG)
    assert _job(other_id).container_id != next_warm
    assert engine.api.inspect_container(next_warm)["State"]["Running"]
    assert other_result["trades"] == cold["trades"]
