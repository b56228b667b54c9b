"""An operator overrides some of an account's quotas for a while, with a reason: the queue's
bounds, the job form's limits and the containers the worker starts follow it at once, the
client reads the reason, and the plan's quotas are back when it ends."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from fta.access.models import QuotaOverride
from fta.audit.models import AuditEvent
from fta.db import session_scope, utcnow
from fta.jobs import service as jobs
from fta.settings import get_settings
from fta.worker.handlers import JobHandler
from tests.support.admins import admin_headers, create_admin
from tests.support.api import Client, leave_nothing_waiting, sign_up, subscribe
from tests.support.fake_runtime import FakeRuntime, Outcome

API = "/api/v1"
DATA_CONFIG = {
    "exchange": "binance",
    "pairs": ["BTC/USDT"],
    "timeframe": "1h",
    "timerange": "20240101-20240103",
}
REASON = "Campagne d'hyperopt validée avec le support"


@pytest.fixture(scope="module")
def admin(http: TestClient) -> dict[str, str]:
    return admin_headers(http, create_admin())


@pytest.fixture
def client(http: TestClient) -> Iterator[Client]:
    client = subscribe(sign_up(http, "Granted"))
    yield client
    leave_nothing_waiting(client)


def _override(http: TestClient, admin: dict[str, str], client: Client, **body: object):
    return http.put(
        f"{API}/admin/tenants/{client.tenant_id}/quotas/override",
        json={"reason": REASON, "ends_at": (utcnow() + timedelta(days=7)).isoformat(), **body},
        headers=admin,
    )


def _quotas(http: TestClient, admin: dict[str, str], client: Client) -> dict[str, object]:
    response = http.get(f"{API}/admin/tenants/{client.tenant_id}/quotas", headers=admin)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def _job_limits(client: Client) -> tuple[int, int]:
    """The memory and CPU of the container the worker starts for the client's next job."""
    response = client.http.post(
        f"{API}/jobs", json={"kind": "download-data", "config": DATA_CONFIG}, headers=client.auth
    )
    assert response.status_code == 202, response.text
    with session_scope() as session:
        job = jobs.claim_next_job(session, slots=4, tenants=[client.tenant_id])
        assert job is not None and job.id == uuid.UUID(response.json()["id"])
        job_id = job.id
    runtime = FakeRuntime()
    runtime.script(Outcome(lines=("filled",)), owner_kind="cache-fill")
    runtime.script(Outcome(lines=("fetching",), seconds=0.1), owner_kind="job")
    JobHandler(runtime, get_settings()).run(job_id)
    [spec] = [spec for spec in runtime.created.values() if spec.owner_kind == "job"]
    return spec.limits.memory_bytes >> 20, spec.limits.nano_cpus


def test_the_next_job_runs_with_the_override_then_with_the_plan_again(
    http: TestClient, admin: dict[str, str], client: Client
) -> None:
    plan = _quotas(http, admin, client)
    assert plan["override_reason"] is None
    granted = _override(http, admin, client, memory_mb=1536, cpu="0.5", max_job_seconds=7200)
    assert granted.status_code == 200, granted.text
    body = granted.json()
    assert body["memory_mb"] == 1536 and body["cpu"] == "0.50" and body["max_job_seconds"] == 7200
    assert body["max_bots"] == plan["max_bots"]  # left out: the plan's
    assert body["override_reason"] == REASON

    assert _job_limits(client) == (1536, 500_000_000)
    # The queue's bounds follow too: a job may now run two hours.
    longer = client.http.post(
        f"{API}/jobs",
        json={"kind": "download-data", "config": DATA_CONFIG, "max_seconds": 7200},
        headers=client.auth,
    )
    assert longer.status_code == 202, longer.text
    client.http.post(f"{API}/jobs/{longer.json()['id']}/cancel", headers=client.auth)
    # The client reads why on the dashboard.
    page = client.http.get("/app", cookies={"fta_session": client.token})
    assert REASON.replace("'", "&#39;") in page.text

    ended = http.delete(f"{API}/admin/tenants/{client.tenant_id}/quotas/override", headers=admin)
    assert ended.status_code == 204
    assert _job_limits(client) == (plan["memory_mb"], int(float(str(plan["cpu"])) * 1e9))
    assert (
        http.delete(
            f"{API}/admin/tenants/{client.tenant_id}/quotas/override", headers=admin
        ).status_code
        == 409
    )
    with session_scope() as session:
        actions = session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.tenant_id == client.tenant_id, AuditEvent.action.like("quota.%"))
            .order_by(AuditEvent.seq)
        ).all()
    assert actions == ["quota.override", "quota.override_ended"]


def test_an_override_ends_by_itself_and_a_new_one_replaces_the_old(
    http: TestClient, admin: dict[str, str], client: Client
) -> None:
    assert _override(http, admin, client, max_bots=5).status_code == 200
    assert _override(http, admin, client, max_bots=7).status_code == 200  # replaces
    assert _quotas(http, admin, client)["max_bots"] == 7
    with session_scope() as session:
        rows = session.scalars(
            select(QuotaOverride).where(QuotaOverride.tenant_id == client.tenant_id)
        ).all()
        assert sorted(row.ended_at is None for row in rows) == [False, True]
        # The one in force runs out.
        past = utcnow() - timedelta(minutes=1)
        session.execute(
            update(QuotaOverride)
            .where(QuotaOverride.tenant_id == client.tenant_id, QuotaOverride.ended_at.is_(None))
            .values(created_at=past - timedelta(days=1), ends_at=past)
        )
    quotas = _quotas(http, admin, client)
    assert quotas["override_reason"] is None and quotas["max_bots"] != 7
    # A new one still goes in, past the one that ran out.
    assert _override(http, admin, client, max_bots=2).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"memory_mb": 64},
        {"pids": 100_000},
        {"cpu": "0"},
        {"max_job_seconds": 59},
        {"disk_mb": 100_000},
        {},
        {"max_bots": 2, "ends_at": "2020-01-01T00:00:00+00:00"},
        {"max_bots": 2, "ends_at": "2099-01-01T00:00:00+00:00"},
        {"max_bots": 2, "ends_at": "2027-01-01T00:00:00"},
        {"max_bots": 2, "reason": "no"},
    ],
    ids=[
        "memory too low",
        "pids too high",
        "no cpu",
        "too short a job",
        "the disk",
        "nothing to override",
        "ended already",
        "beyond a year",
        "no time zone",
        "too short a reason",
    ],
)
def test_an_override_out_of_bounds_is_refused_and_changes_nothing(
    http: TestClient, admin: dict[str, str], client: Client, body: dict[str, object]
) -> None:
    refused = _override(http, admin, client, **body)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert _quotas(http, admin, client)["override_reason"] is None
