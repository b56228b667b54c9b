"""The plan catalog: public at GET /api/v1/plans, edited by administrators only (audited),
and a paying account's plan change waiting for the next period."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from fta.access import plan_changes
from fta.accounts.models import BillingStatus, Tenant
from fta.audit.models import AuditEvent
from fta.billing.account_states import apply_billing_state
from fta.db import session_scope
from fta.plans import service as plans
from fta.plans.models import Plan
from tests.support.admins import admin_headers, create_admin
from tests.support.api import sign_up

API = "/api/v1"
PROBLEM_JSON = "application/problem+json"


@pytest.fixture(scope="module")
def admin_auth(http: TestClient) -> dict[str, str]:
    return admin_headers(http, create_admin())


@pytest.fixture
def spare_plan() -> Iterator[str]:
    """A plan of this test's own, out of the catalog again afterwards."""
    code = f"t{secrets.token_hex(4)}"
    with session_scope() as session:
        session.add(
            Plan(
                code=code,
                name="Spare",
                cpu=Decimal("1.5"),
                memory_mb=2048,
                pids=256,
                disk_mb=4096,
                max_concurrent_jobs=2,
                max_bots=2,
                max_job_seconds=3600,
                price_ht_cents=2900,
                included_cpu_hours=Decimal(40),
            )
        )
    yield code
    with session_scope() as session:
        session.execute(update(Plan).where(Plan.code == code).values(active=False))


def test_the_catalog_is_public_with_prices_quotas_and_rates(http: TestClient) -> None:
    response = http.get(f"{API}/plans")
    assert response.status_code == 200, response.text
    catalog = {plan["code"]: plan for plan in response.json()}
    starter, pro = catalog["starter"], catalog["pro"]
    assert starter["is_default"] is True
    quotas = starter["quotas"]
    assert (Decimal(quotas["cpu"]), quotas["memory_mb"], quotas["pids"]) == (1, 1024, 256)
    assert starter["price"] == {
        "currency": "EUR",
        "ht": "19.00",
        "vat_rate": "0.20",
        "vat": "3.80",
        "ttc": "22.80",
    }
    assert Decimal(starter["overage_rates_ht"]["cpu_hour_eur"]) == Decimal("0.05")
    # Bigger plans get bigger containers and allowances.
    assert Decimal(pro["quotas"]["cpu"]) > 1 and pro["quotas"]["memory_mb"] > 1024
    assert Decimal(pro["quotas"]["included_cpu_hours"]) > Decimal(
        starter["quotas"]["included_cpu_hours"]
    )


def test_an_administrator_edits_a_plan_and_it_is_audited(
    http: TestClient, admin_auth: dict[str, str], spare_plan: str
) -> None:
    response = http.patch(
        f"{API}/admin/plans/{spare_plan}",
        json={"price_ht_cents": 4999, "overage_cpu_hour_eur": "0.045", "max_bots": 3},
        headers=admin_auth,
    )
    assert response.status_code == 200, response.text
    plan = response.json()
    assert plan["price"]["ht"] == "49.99" and plan["price"]["ttc"] == "59.99"
    assert Decimal(plan["overage_rates_ht"]["cpu_hour_eur"]) == Decimal("0.045")
    assert plan["quotas"]["max_bots"] == 3
    listed = {p["code"]: p for p in http.get(f"{API}/plans").json()}
    assert listed[spare_plan]["price"]["ht"] == "49.99"
    with session_scope() as session:
        targets = session.scalars(
            select(AuditEvent.target).where(AuditEvent.action == "plan.update")
        ).all()
    assert f"{spare_plan}: max_bots, overage_cpu_hour_eur, price_ht_cents" in targets

    # Withdrawn from the catalog: no longer listed.
    response = http.patch(
        f"{API}/admin/plans/{spare_plan}", json={"active": False}, headers=admin_auth
    )
    assert response.status_code == 200
    assert spare_plan not in {p["code"] for p in http.get(f"{API}/plans").json()}


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        ({"price_ht_cents": -1}, 422, "price_ht_cents"),
        ({"overage_cpu_hour_eur": "-0.01"}, 422, "overage_cpu_hour_eur"),
        ({"cpu": "0"}, 422, "cpu"),
        ({"code": "other"}, 422, "unknown field 'code'"),
        ({}, 422, "at least one field"),
        ({"name": None}, 422, "no null value"),
    ],
)
def test_bad_edits_are_refused_with_the_cause(
    http: TestClient,
    admin_auth: dict[str, str],
    spare_plan: str,
    body: dict[str, object],
    status: int,
    expected: str,
) -> None:
    response = http.patch(f"{API}/admin/plans/{spare_plan}", json=body, headers=admin_auth)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert expected in response.json()["detail"]


def test_the_default_plan_stays_active(http: TestClient, admin_auth: dict[str, str]) -> None:
    response = http.patch(f"{API}/admin/plans/starter", json={"active": False}, headers=admin_auth)
    assert response.status_code == 409
    assert "default plan" in response.json()["detail"]
    missing = http.patch(f"{API}/admin/plans/nope", json={"max_bots": 1}, headers=admin_auth)
    assert missing.status_code == 404


def test_clients_cannot_edit_the_catalog(http: TestClient, spare_plan: str) -> None:
    client = sign_up(http)
    response = http.patch(
        f"{API}/admin/plans/{spare_plan}", json={"price_ht_cents": 0}, headers=client.auth
    )
    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM_JSON
    assert "administrators" in response.json()["detail"]
    anonymous = http.patch(f"{API}/admin/plans/{spare_plan}", json={"price_ht_cents": 0})
    assert anonymous.status_code == 401
    with session_scope() as session:
        assert plans.get_plan(session, spare_plan).price_ht_cents == 2900


def test_a_paying_account_changes_plan_at_the_next_period(http: TestClient) -> None:
    trial, paying = sign_up(http), sign_up(http)
    now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    with session_scope() as session:
        pro = plans.get_plan(session, "pro")
        # On trial: at once.
        tenant = session.get(Tenant, trial.tenant_id)
        assert tenant is not None
        assert plan_changes.change_plan(session, tenant, pro, now) == "2026-11"
        assert tenant.plan.code == "pro" and tenant.pending_plan_id is None
        # Paying for this month: from the next one; quotas and allowance stay meanwhile.
        tenant = session.get(Tenant, paying.tenant_id)
        assert tenant is not None
        apply_billing_state(session, tenant, BillingStatus.ACTIVE, now)
        assert plan_changes.change_plan(session, tenant, pro, now) == "2026-12"
        assert tenant.plan.code == "starter" and tenant.pending_plan_period == "2026-12"
        assert paying.tenant_id not in plan_changes.apply_pending_plans(session, now)
        assert paying.tenant_id in plan_changes.apply_pending_plans(
            session, datetime(2026, 12, 1, tzinfo=UTC)
        )
        assert tenant.plan.code == "pro" and tenant.pending_plan_id is None
