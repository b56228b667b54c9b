"""Tenants and objects for the web and API attack corpus (tests/security/test_api_*.py).

Tenants created here are parked on a plan that allows no running job: a worker started by
another test of the session skips their queued jobs, so these tests never start a container.
"""

from __future__ import annotations

import secrets
import uuid

from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert

from fta.accounts.models import Tenant
from fta.bots import service as bots
from fta.db import session_scope
from fta.jobs import service as jobs
from fta.jobs.models import Job, JobResult, JobStatus
from fta.plans.models import Plan
from fta.plans.service import default_plan
from tests.support.api import Client, sign_up, subscribe

API = "/api/v1"
PROBLEM_JSON = "application/problem+json"
PARKED_PLAN = "test-no-jobs"
STRATEGY_TEMPLATE = """
from freqtrade.strategy import IStrategy


class {name}(IStrategy):
    # {comment}
    timeframe = "5m"
    minimal_roi = {{"0": 0.01}}
    stoploss = -0.1
"""
BACKTEST_CONFIG = {
    "exchange": "binance",
    "pairs": ["BTC/USDT"],
    "timeframe": "5m",
    "timerange": "20240101-20240201",
    "stake_amount": 100,
    "max_open_trades": 1,
}


BOT_CONFIG = {"exchange": "binance", "pairs": ["BTC/USDT"], "timeframe": "5m"}


def strategy_source(name: str, comment: str = "a strategy") -> str:
    return STRATEGY_TEMPLATE.format(name=name, comment=comment)


def unique_ip() -> str:
    """A documentation address (RFC 3849) per caller, as nginx would pass in X-Real-IP, so
    that the log-in throttle's per-address count of one test never spills into another."""
    return f"2001:db8::{secrets.token_hex(2)}:{secrets.token_hex(2)}"


def move_to_test_plan(tenant_id: str, code: str, name: str, **changes: int) -> None:
    """Moves the tenant onto a plan like the default one, with `changes` (created once)."""
    with session_scope() as session:
        base = default_plan(session)
        values = {
            "cpu": base.cpu,
            "memory_mb": base.memory_mb,
            "pids": base.pids,
            "disk_mb": base.disk_mb,
            "max_concurrent_jobs": base.max_concurrent_jobs,
            "max_bots": base.max_bots,
            "max_job_seconds": base.max_job_seconds,
        }
        session.execute(
            insert(Plan)
            .values(code=code, name=name, is_default=False, **{**values, **changes})
            .on_conflict_do_nothing(index_elements=["code"])
        )
        plan_id = session.scalars(select(Plan.id).where(Plan.code == code)).one()
        session.execute(update(Tenant).where(Tenant.id == tenant_id).values(plan_id=plan_id))


def park(tenant_id: str) -> None:
    """Moves the tenant onto a plan with no concurrent job allowed: its jobs stay queued (as
    many as the tests submit)."""
    move_to_test_plan(
        tenant_id,
        PARKED_PLAN,
        "Test plan that runs no job",
        max_concurrent_jobs=0,
        max_bots=0,
        max_queued_jobs=1000,
    )


def parked_client(http: TestClient, name: str = "Client") -> Client:
    """A paying client (a trial's tighter job bounds would refuse the tests' submissions)
    whose jobs never run."""
    client = subscribe(sign_up(http, name))
    park(client.tenant_id)
    return client


def log_in(http: TestClient, email: str, password: str) -> dict[str, str]:
    response = http.post(f"{API}/auth/token", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def create_strategy(
    http: TestClient, headers: dict[str, str], comment: str = "a strategy"
) -> tuple[str, str]:
    """Uploads a valid strategy; returns its id and name."""
    name = f"S{secrets.token_hex(6)}"
    response = http.post(
        f"{API}/strategies",
        json={"name": name, "source": strategy_source(name, comment)},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"]), name


def submit_backtest(http: TestClient, headers: dict[str, str], strategy_id: str) -> str:
    response = http.post(
        f"{API}/jobs",
        json={"kind": "backtest", "strategy_id": strategy_id, "config": BACKTEST_CONFIG},
        headers=headers,
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def create_bot(
    http: TestClient, headers: dict[str, str], strategy_id: str, log: str | None = None
) -> str:
    """A stopped bot; `log` is written to its log as the worker would."""
    response = http.post(
        f"{API}/bots",
        json={"name": f"b{secrets.token_hex(6)}", "strategy_id": strategy_id, "config": BOT_CONFIG},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    bot_id = str(response.json()["id"])
    if log is not None:
        with session_scope() as session:
            bots.append_log(session, uuid.UUID(bot_id), log)
    return bot_id


def finish_job(job_id: str, *, log: str, summary: dict[str, object], archive: bytes) -> None:
    """Does what the worker does when a job succeeds, without running it."""
    with session_scope() as session:
        job = session.get(Job, uuid.UUID(job_id))
        assert job is not None and job.status == JobStatus.QUEUED
        for status in (JobStatus.STARTING, JobStatus.RUNNING):
            jobs.advance(job, status)
        jobs.append_log(session, job.id, 0, log)
        session.add(JobResult(job_id=job.id, summary=summary))
        jobs.store_archive(session, job.id, "backtest-result.zip", archive)
        jobs.advance(job, JobStatus.SUCCEEDED, exit_code=0)


def cancel_queued_jobs(tenant_id: str) -> None:
    """Leaves nothing queued behind (the parked plan already keeps workers away)."""
    with session_scope() as session:
        queued = session.scalars(
            select(Job)
            .where(Job.tenant_id == tenant_id, Job.status == JobStatus.QUEUED)
            .with_for_update()
        )
        for job in queued:
            jobs.advance(job, JobStatus.CANCELLED, error="cancelled by the test that queued it")
