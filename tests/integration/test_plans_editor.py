"""The operator's plans editor through the admin API, against the PayPal stand-in: a new plan
is offered with its price made a PayPal billing plan in the same step; a new price is set on
that PayPal plan, and current subscribers, told ahead, pay it from a cycle ten days on (each
sale invoiced at what PayPal collected); a retired plan is offered no more and its accounts
keep it; a PayPal refusal changes nothing."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from fta.accounts.models import Tenant
from fta.billing.api import get_paypal
from fta.billing.invoices.models import Invoice
from fta.billing.payment_invoices import invoice_payments
from fta.billing.paypal import PayPal
from fta.billing.paypal.models import PaymentKind, PayPalCatalogEntry, Subscription
from fta.billing.paypal.payments import record_payment
from fta.db import session_scope, utcnow
from fta.plans.models import Plan
from tests.support.admins import admin_headers, create_admin
from tests.support.api import sign_up
from tests.support.paypal_standin import PayPalStandin

API = "/api/v1"
FR_CONSUMER = {
    "country": "FR",
    "customer_type": "private",
    "legal_name": "Camille Martin",
    "address_line1": "1 rue de la Paix",
    "postcode": "75002",
    "city": "Paris",
}


@pytest.fixture(scope="module")
def standin() -> Iterator[PayPalStandin]:
    with PayPalStandin() as standin:
        yield standin


@pytest.fixture(scope="module")
def api(app_settings: None, standin: PayPalStandin) -> Iterator[TestClient]:
    from fta.portal.app import create_app

    paypal: PayPal = standin.facade("https://fta.example.test/api/v1/billing/return")
    app = create_app()
    app.dependency_overrides[get_paypal] = lambda: paypal
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def admin(api: TestClient) -> dict[str, str]:
    return admin_headers(api, create_admin())


def _entries(code: str) -> dict[Decimal, tuple[str, int]]:
    with session_scope() as session:
        rows = session.scalars(
            select(PayPalCatalogEntry).where(PayPalCatalogEntry.plan_code == code)
        ).all()
        return {row.tax_percent: (row.paypal_plan_id, row.price_cents) for row in rows}


def test_a_new_plan_is_offered_and_priced_at_paypal_then_repriced_then_retired(
    api: TestClient, admin: dict[str, str], standin: PayPalStandin
) -> None:
    code = f"desk-{secrets.token_hex(3)}"
    made = api.post(
        f"{API}/admin/plans",
        json={"code": code, "name": "Desk", "price_ht_cents": 4990, "max_bots": 4},
        headers=admin,
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["price"]["ht"] == "49.90" and body["price"]["ttc"] == "59.88"
    assert body["quotas"]["max_bots"] == 4 and body["active"]
    assert code in {plan["code"] for plan in api.get(f"{API}/plans").json()}
    priced = _entries(code)
    assert {tax for tax in priced} == {Decimal("20.00"), Decimal("0.00")}
    assert all(cents == 4990 for _, cents in priced.values())
    first = priced[Decimal("20.00")][0]
    assert (
        standin.plans[first]["billing_cycles"][0]["pricing_scheme"]["fixed_price"]["value"]
        == "49.90"
    )

    # A subscriber to the plan, then a new price: set on the same PayPal plans, which e-mail
    # their current subscribers and charge it from a cycle ten days on at least.
    client = sign_up(api, "Desker")
    tenant_id = client.tenant_id
    subscription_id = _subscribed(standin, tenant_id, code, first, price_cents=4990)
    repriced = api.patch(f"{API}/admin/plans/{code}", json={"price_ht_cents": 5990}, headers=admin)
    assert repriced.status_code == 200, repriced.text
    assert _entries(code) == {tax: (plan_id, 5990) for tax, (plan_id, _) in priced.items()}
    for plan_id, _ in priced.values():
        scheme = standin.plans[plan_id]["billing_cycles"][0]["pricing_scheme"]
        assert scheme["fixed_price"] == {"value": "59.90", "currency_code": "EUR"}
    shown = api.get(f"{API}/billing/subscription", headers=client.auth).json()["subscriptions"]
    assert (shown[0]["price_ht_cents"], shown[0]["next_price_ht_cents"]) == (4990, 5990)
    notice = datetime.fromisoformat(shown[0]["next_price_from"]) - utcnow()
    assert timedelta(days=9) < notice <= timedelta(days=10)

    # PayPal charges the old price within those ten days, the new one after: each sale is
    # invoiced at what it collected, and the new price becomes the subscription's.
    for days, price in ((3, 4990), (33, 5990)):
        event = standin.cycle_paid(subscription_id, utcnow() + timedelta(days=days))
        with session_scope() as session:
            record_payment(session, PaymentKind.SALE, event["resource"])
        invoice_payments(session_scope, utcnow())
        with session_scope() as session:
            invoice = session.scalars(
                select(Invoice).where(Invoice.payment_ref == event["resource"]["id"])
            ).one()
            assert (invoice.total_ht_cents, invoice.total_ttc_cents) == (price, price * 12 // 10)
    shown = api.get(f"{API}/billing/subscription", headers=client.auth).json()["subscriptions"]
    assert (shown[0]["price_ht_cents"], shown[0]["next_price_ht_cents"]) == (5990, None)

    listed = {p["code"]: p for p in api.get(f"{API}/admin/plans", headers=admin).json()}
    assert listed[code]["subscribers"] == 1
    retired = api.patch(f"{API}/admin/plans/{code}", json={"active": False}, headers=admin)
    assert retired.status_code == 200 and not retired.json()["active"]
    assert code not in {plan["code"] for plan in api.get(f"{API}/plans").json()}
    with session_scope() as session:
        tenant = session.get(Tenant, tenant_id)
        assert tenant is not None and tenant.plan.code == code  # it keeps its plan


def _subscribed(
    standin: PayPalStandin, tenant_id: str, code: str, paypal_plan_id: str, *, price_cents: int
) -> str:
    """The account on the plan, with an active subscription to its PayPal plan (French VAT),
    as a French consumer whose invoices can be issued."""
    subscription_id = f"I-{secrets.token_hex(6).upper()}"
    standin.subscriptions[subscription_id] = {
        "id": subscription_id,
        "plan_id": paypal_plan_id,
        "status": "ACTIVE",
        "billing_info": {"failed_payments_count": 0},
    }
    with session_scope() as session:
        plan_id = session.scalars(select(Plan.id).where(Plan.code == code)).one()
        session.execute(
            update(Tenant).where(Tenant.id == tenant_id).values(plan_id=plan_id, **FR_CONSUMER)
        )
        session.add(
            Subscription(
                tenant_id=tenant_id,
                paypal_subscription_id=subscription_id,
                plan_code=code,
                status="active",
                paypal_status="ACTIVE",
                last_state={},
                price_ht_cents=price_cents,
                tax_percent=Decimal("20.00"),
            )
        )
    return subscription_id


def test_a_paypal_refusal_leaves_the_catalog_as_it_was(
    api: TestClient, admin: dict[str, str], standin: PayPalStandin
) -> None:
    code = f"fail-{secrets.token_hex(3)}"
    standin.outage.add("/v1/catalogs/products")
    try:
        refused = api.post(
            f"{API}/admin/plans",
            json={"code": code, "name": "Fail", "price_ht_cents": 990},
            headers=admin,
        )
    finally:
        standin.outage.discard("/v1/catalogs/products")
    assert refused.status_code == 502, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert code not in {p["code"] for p in api.get(f"{API}/admin/plans", headers=admin).json()}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"code": "Bad Code", "name": "x"}, 422),
        ({"code": "starter", "name": "Again"}, 409),
        ({"code": "okcode", "name": "x", "cpu": "0"}, 422),
        ({"code": "okcode", "name": "x", "is_default": True}, 422),
        ({"code": "okcode"}, 422),
    ],
    ids=["bad code", "taken code", "no cpu", "default flag", "no name"],
)
def test_a_plan_out_of_bounds_is_refused(
    api: TestClient, admin: dict[str, str], body: dict[str, object], status: int
) -> None:
    refused = api.post(f"{API}/admin/plans", json=body, headers=admin)
    assert refused.status_code == status, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
