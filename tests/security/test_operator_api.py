"""An operator suspends a client's account through the admin API: the client still signs in
and reads why, nothing of it runs or starts, a payment does not lift it, and every step is in
the account's audit chain, which the operator verifies there. Only an administrator with
two-factor log-in may do it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from fta.accounts.models import BillingStatus, Tenant, TenantStatus
from fta.audit.models import AuditEvent
from fta.billing.account_states import apply_billing_state
from fta.db import session_scope, utcnow
from tests.security.api_support import API, PROBLEM_JSON, create_strategy, parked_client
from tests.security.api_support import submit_backtest as submit
from tests.support.admins import Admin, admin_headers, create_admin
from tests.support.api import Client
from tests.support.audit import forge_audit_row

REASON = "Stratégie qui sature l'échange (ticket #42) <b>non</b>"


@pytest.fixture(scope="module")
def admin(http: TestClient) -> dict[str, str]:
    return admin_headers(http, create_admin())


def _tenant(tenant_id: str) -> Tenant:
    with session_scope() as session:
        tenant = session.get(Tenant, tenant_id)
        assert tenant is not None
        return tenant


def _suspend(http: TestClient, admin: dict[str, str], client: Client, reason: str = REASON):
    return http.put(
        f"{API}/admin/tenants/{client.tenant_id}/suspension",
        json={"reason": reason},
        headers=admin,
    )


def test_a_suspended_client_reads_why_and_nothing_of_it_runs(
    http: TestClient, admin: dict[str, str]
) -> None:
    client = parked_client(http, "Suspended")
    strategy_id, _ = create_strategy(http, client.auth)
    queued = submit(http, client.auth, strategy_id)

    suspended = _suspend(http, admin, client)
    assert suspended.status_code == 200, suspended.text
    body = suspended.json()
    assert body["status"] == "suspended" and body["suspension_reason"] == REASON
    assert body["emails"] == [client.email]

    # The queued job was cancelled with the reason; a new one is refused, saying why.
    job = http.get(f"{API}/jobs/{queued}", headers=client.auth).json()
    assert job["status"] == "cancelled" and REASON in job["error"], job
    refused = http.post(
        f"{API}/jobs",
        json={
            "kind": "backtest",
            "strategy_id": strategy_id,
            "config": {
                "exchange": "binance",
                "pairs": ["BTC/USDT"],
                "timeframe": "5m",
                "timerange": "20240101-20240105",
                "stake_amount": 100,
                "max_open_trades": 1,
            },
        },
        headers=client.auth,
    )
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"] == PROBLEM_JSON
    assert REASON in refused.json()["detail"]
    # The client still reads its account.
    assert http.get(f"{API}/usage", headers=client.auth).status_code == 200

    # A payment does not lift an operator's suspension.
    with session_scope() as session:
        tenant = session.get(Tenant, client.tenant_id)
        assert tenant is not None
        apply_billing_state(session, tenant, BillingStatus.ACTIVE, utcnow())
    assert _tenant(client.tenant_id).status == TenantStatus.SUSPENDED
    assert _suspend(http, admin, client, "again").status_code == 409

    lifted = http.delete(f"{API}/admin/tenants/{client.tenant_id}/suspension", headers=admin)
    assert lifted.status_code == 200, lifted.text
    assert lifted.json()["status"] == "active" and lifted.json()["suspension_reason"] is None
    assert submit(http, client.auth, strategy_id)  # starts again
    again = http.delete(f"{API}/admin/tenants/{client.tenant_id}/suspension", headers=admin)
    assert again.status_code == 409

    with session_scope() as session:
        events = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.tenant_id == client.tenant_id)
            .where(AuditEvent.action.in_(["account.suspended", "account.reactivated"]))
            .order_by(AuditEvent.seq)
        ).all()
    assert [event.action for event in events] == ["account.suspended", "account.reactivated"]
    assert all(event.actor.startswith("admin:") for event in events)
    assert events[0].target == REASON


def test_lifting_a_suspension_leaves_an_unpaid_account_cut_off(
    http: TestClient, admin: dict[str, str]
) -> None:
    client = parked_client(http, "Unpaid")
    assert _suspend(http, admin, client).status_code == 200
    with session_scope() as session:
        tenant = session.get(Tenant, client.tenant_id)
        assert tenant is not None
        apply_billing_state(session, tenant, BillingStatus.SUSPENDED, utcnow())
    lifted = http.delete(f"{API}/admin/tenants/{client.tenant_id}/suspension", headers=admin)
    assert lifted.status_code == 200
    assert lifted.json()["status"] == "suspended"  # billing's own suspension holds
    assert lifted.json()["suspension_reason"] is None


@pytest.mark.parametrize(
    ("reason", "status"),
    [("", 422), ("no", 422), ("x" * 501, 422), ("bell\u0007here", 422)],
    ids=["empty", "too short", "too long", "control character"],
)
def test_a_suspension_needs_a_readable_reason(
    http: TestClient, admin: dict[str, str], reason: str, status: int
) -> None:
    client = parked_client(http, "Unreasoned")
    refused = _suspend(http, admin, client, reason)
    assert refused.status_code == status, refused.text
    assert refused.headers["content-type"] == PROBLEM_JSON
    assert _tenant(client.tenant_id).status == TenantStatus.ACTIVE


def test_an_administrator_without_two_factor_log_in_is_refused(http: TestClient) -> None:
    plain: Admin = create_admin(with_two_factor=False)
    headers = admin_headers(http, plain)
    for method, path in (("GET", "/admin/tenants"), ("GET", "/admin/billing/alerts")):
        refused = http.request(method, f"{API}{path}", headers=headers)
        assert refused.status_code == 403, refused.text
        assert "two-factor" in refused.json()["detail"]


def test_the_search_finds_an_account_by_part_of_its_e_mail(
    http: TestClient, admin: dict[str, str]
) -> None:
    client = parked_client(http, "Findable")
    part = client.email.split("@")[0][-6:]
    found = http.get(f"{API}/admin/tenants", params={"q": part}, headers=admin).json()
    assert [row["id"] for row in found] == [client.tenant_id]
    # LIKE's wildcards are searched as text.
    assert http.get(f"{API}/admin/tenants", params={"q": "%_%"}, headers=admin).json() == []


def test_the_audit_api_names_where_a_chain_breaks(
    http: TestClient, admin: dict[str, str], owner_engine: Engine
) -> None:
    client = parked_client(http, "Chained")
    intact = http.get(f"{API}/admin/audit/{client.tenant_id}", headers=admin).json()
    assert intact["intact"] and intact["broken_at"] is None and intact["length"] >= 2
    forge_audit_row(owner_engine, client.tenant_id, 1, "action", "forged")
    broken = http.get(f"{API}/admin/audit/{client.tenant_id}", headers=admin).json()
    assert not broken["intact"] and broken["broken_at"] == 1
    assert [e["seq"] for e in broken["events"] if e["breaks_here"]] == [1]
    listed = http.get(f"{API}/admin/audit", headers=admin).json()
    assert {"chain": client.tenant_id, "broken_at": 1} in listed
    assert http.get(f"{API}/admin/audit/nochain", headers=admin).status_code == 404
