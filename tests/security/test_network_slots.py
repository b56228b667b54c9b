"""Network slots, as an outside audit used them up: 25 sign-ups in 4.5 s each took one of the
pool's 2,048 tenant subnets for good. A slot is now taken only when the worker first needs the
tenant's network, and given back (network removed, index freed) when the tenant does not use
it: idle for `network_idle_days`, or suspended, with nothing running."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import docker
import pytest
from docker.errors import NotFound
from fastapi.testclient import TestClient
from sqlalchemy import select, text, update

from fta.accounts.models import Tenant, TenantStatus
from fta.db import session_scope, utcnow
from fta.jobs.models import Job
from fta.runtime import DockerJobRunner
from fta.runtime.spec import tenant_network_name
from fta.settings import Settings, get_settings
from fta.worker.network_slots import AT_CAPACITY, AtCapacity, take_slot_now
from tests.integration.strategies import source
from tests.support.api import Client, sign_up
from tests.support.docker_resources import local_docker
from tests.support.jobs import warm_container
from tests.support.sandbox import Sandbox
from tests.support.scoped_worker import ScopedWorker

BACKTEST = {
    "exchange": "binance",
    "pairs": ["BTC/USDT"],
    "timeframe": "5m",
    "timerange": "20240101-20240103",
    "stake_amount": 100,
    "max_open_trades": 1,
}


def _slots(tenant_ids: list[str]) -> dict[str, int | None]:
    with session_scope() as session:
        rows = session.execute(
            select(Tenant.id, Tenant.subnet_index).where(Tenant.id.in_(tenant_ids))
        )
        return {tenant_id: index for tenant_id, index in rows}


def _free(count: int) -> list[int]:
    """The `count` smallest indices no tenant holds."""
    with session_scope() as session:
        held = set(session.scalars(select(Tenant.subnet_index).where(Tenant.subnet_index >= 0)))
    return [index for index in range(len(held) + count) if index not in held][:count]


def _smallest_free() -> int:
    return _free(1)[0]


def _new_tenant(http: TestClient) -> str:
    email = f"slot-{secrets.token_hex(6)}@example.com"
    body = {"email": email, "password": secrets.token_urlsafe(16), "display_name": "Slots"}
    response = http.post("/api/v1/auth/signup", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["tenant_id"])


def test_a_burst_of_signups_takes_no_network_slot(http: TestClient) -> None:
    started = time.monotonic()
    tenants = [_new_tenant(http) for _ in range(25)]
    assert time.monotonic() - started < 60
    assert _slots(tenants) == dict.fromkeys(tenants)


def _tiny_pool(slots: int) -> Settings:
    """Settings whose pool holds `slots` (a power of two) subnets of 8 addresses."""
    prefix = 29 - (slots - 1).bit_length()
    return Settings(tenant_subnet_pool=f"10.250.0.0/{prefix}", tenant_subnet_prefix=29)


def test_runs_take_the_smallest_free_slots_at_once_and_past_capacity_none(
    http: TestClient,
) -> None:
    tenants = [_new_tenant(http) for _ in range(8)]
    expected = _free(len(tenants))
    slots = 2 ** expected[-1].bit_length()
    settings = _tiny_pool(slots)
    taken: dict[str, int] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(tenants))

    def run(tenant_id: str) -> None:
        try:
            barrier.wait(timeout=30)
            taken[tenant_id] = take_slot_now(tenant_id, settings, utcnow())
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(t,)) for t in tenants]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(taken.values()) == expected
    assert _slots(tenants) == taken
    # A second run keeps its slot.
    assert take_slot_now(tenants[0], settings, utcnow()) == taken[tenants[0]]
    # Once every slot of the pool is held, a run is refused with a message a client reads.
    while _smallest_free() < slots:
        take_slot_now(_new_tenant(http), settings, utcnow())
    late = _new_tenant(http)
    with pytest.raises(AtCapacity) as refused:
        take_slot_now(late, settings, utcnow())
    assert str(refused.value) == AT_CAPACITY
    assert "at capacity" in AT_CAPACITY
    assert _slots([late]) == {late: None}


# --- through the worker, the socket proxy and the engine ------------------------------------


@pytest.fixture
def engine() -> Iterator[docker.DockerClient]:
    client = local_docker()
    yield client
    client.close()


@pytest.fixture
def client(http: TestClient, sandbox: Sandbox) -> Client:
    client = sign_up(http, "Slots")
    sandbox.forget_tenant(client.tenant_id)
    return client


def _run_job(http: TestClient, client: Client, engine: docker.DockerClient) -> dict[str, Any]:
    """Submits a backtest whose strategy fails on import: the worker still makes the
    tenant's network for it. Returns the job once it ended and the worker is done with it (it
    starts a warm container for the tenant's next job on the network after the job's end)."""
    name = "BrokenImport"
    strategy = http.post(
        "/api/v1/strategies", json={"name": name, "source": source(name)}, headers=client.auth
    )
    if strategy.status_code == 201:
        strategy_id = strategy.json()["id"]
    else:  # uploaded for this client's earlier job
        listed = http.get("/api/v1/strategies", headers=client.auth).json()
        strategy_id = next(item["id"] for item in listed if item["name"] == name)
    body = {"kind": "backtest", "strategy_id": strategy_id, "config": BACKTEST}
    submitted = http.post("/api/v1/jobs", json=body, headers=client.auth)
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        job: dict[str, Any] = http.get(f"/api/v1/jobs/{job_id}", headers=client.auth).json()
        if job["status"] in {"failed", "succeeded", "timed_out", "oom_killed", "cancelled"}:
            warm_container(engine, client.tenant_id)
            return job
        time.sleep(0.5)
    pytest.fail(f"job {job_id} did not end within 240 s: {job}")


def _network(engine: docker.DockerClient, tenant_id: str) -> dict[str, Any] | None:
    try:
        inspect: dict[str, Any] = engine.api.inspect_network(tenant_network_name(tenant_id))
    except NotFound:
        return None
    return inspect


def _gateway_networks(engine: docker.DockerClient, sandbox: Sandbox) -> set[str]:
    inspect = engine.api.inspect_container(sandbox.gateway_name)
    return set(inspect["NetworkSettings"]["Networks"])


@contextmanager
def _sandbox_worker(sandbox: Sandbox, tenant_id: str) -> Iterator[ScopedWorker]:
    """A worker like the sandbox's (through the same socket proxy), kept to this tenant: the
    test runs its periodic network round at once."""
    settings = get_settings()
    runner = DockerJobRunner(settings, extra_labels=sandbox.labels)
    worker = ScopedWorker(runner, settings, max_parallel=1, tenants={tenant_id})
    try:
        yield worker
    finally:
        worker.pool.shutdown()
        runner.close()


def _age(tenant_id: str, days: int) -> None:
    """Moves the tenant's whole history `days` into the past."""
    past = utcnow() - timedelta(days=days)
    with session_scope() as session:
        session.execute(
            update(Tenant)
            .where(Tenant.id == tenant_id)
            .values(created_at=past, network_used_at=past)
        )
        session.execute(update(Job).where(Job.tenant_id == tenant_id).values(finished_at=past))


@pytest.mark.docker
@pytest.mark.timeout(900)
def test_an_idle_tenants_network_is_removed_and_its_slot_freed_until_its_next_run(
    http: TestClient, client: Client, sandbox: Sandbox, engine: docker.DockerClient
) -> None:
    tenant_id = client.tenant_id
    assert _slots([tenant_id]) == {tenant_id: None}
    expected = _smallest_free()
    job = _run_job(http, client, engine)
    assert job["status"] == "failed", job
    assert _slots([tenant_id]) == {tenant_id: expected}
    network = _network(engine, tenant_id)
    assert network is not None
    assert tenant_network_name(tenant_id) in _gateway_networks(engine, sandbox)

    with _sandbox_worker(sandbox, tenant_id) as worker:
        # Used recently: kept.
        assert worker.release_networks() == []
        assert _network(engine, tenant_id) is not None
        idle_days = get_settings().network_idle_days
        _age(tenant_id, idle_days + 1)
        assert worker.release_networks() == [tenant_id]
    assert _network(engine, tenant_id) is None
    assert tenant_network_name(tenant_id) not in _gateway_networks(engine, sandbox)
    assert _slots([tenant_id]) == {tenant_id: None}

    # The next run takes a slot again and makes the network anew.
    expected = _smallest_free()
    job = _run_job(http, client, engine)
    assert job["status"] == "failed", job
    assert _slots([tenant_id]) == {tenant_id: expected}
    assert _network(engine, tenant_id) is not None
    assert tenant_network_name(tenant_id) in _gateway_networks(engine, sandbox)


@pytest.mark.docker
@pytest.mark.timeout(600)
def test_a_suspended_tenant_gives_its_slot_back_but_not_while_a_job_waits(
    http: TestClient, client: Client, sandbox: Sandbox, engine: docker.DockerClient
) -> None:
    tenant_id = client.tenant_id
    assert _run_job(http, client, engine)["status"] == "failed"
    index = _slots([tenant_id])[tenant_id]
    assert index is not None
    with _sandbox_worker(sandbox, tenant_id) as worker:
        with session_scope() as session:
            session.execute(
                update(Tenant).where(Tenant.id == tenant_id).values(status=TenantStatus.SUSPENDED)
            )
            # A job that is still to run keeps the slot, suspended or not.
            session.execute(
                text(
                    "UPDATE jobs SET status = 'queued', finished_at = NULL "
                    "WHERE id = (SELECT id FROM jobs WHERE tenant_id = :t LIMIT 1)"
                ),
                {"t": tenant_id},
            )
        assert worker.release_networks() == []
        assert _slots([tenant_id]) == {tenant_id: index}
        with session_scope() as session:
            session.execute(
                update(Job).where(Job.tenant_id == tenant_id).values(status="cancelled")
            )
        assert worker.release_networks() == [tenant_id]
    assert _slots([tenant_id]) == {tenant_id: None}
    assert _network(engine, tenant_id) is None
