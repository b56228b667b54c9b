"""PayPal subscriptions against the stand-in: catalog sync, subscribing and the buyer's return,
webhooks (verified, recorded once, processed in any order), payments, Invoicing v2."""

from __future__ import annotations

import json
import random
import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from fta.access.service import can_start
from fta.accounts.models import Tenant
from fta.audit.models import AuditEvent
from fta.billing.account_states import advance_billing_states
from fta.billing.alerts.service import open_alerts
from fta.billing.api import get_paypal
from fta.billing.invoices.models import Invoice
from fta.billing.payment_invoices import invoice_payments
from fta.billing.paypal import PayPal
from fta.billing.paypal.client import InvoiceLine, PayPalClient, draft_invoice_body
from fta.billing.paypal.models import (
    Payment,
    PaymentIssue,
    PayPalCatalogEntry,
    PayPalEvent,
    Subscription,
)
from fta.billing.paypal.payments import payments_to_invoice
from fta.billing.subscriptions import one_cycle_after, sync_catalog
from fta.db import session_scope, utcnow
from fta.mail.models import OutboxMail
from fta.plans.models import Plan
from tests.support.api import Client, sign_up
from tests.support.paypal_standin import PayPalStandin

PROBLEM = "application/problem+json"
RETURN_URL = "https://fta.example.test/api/v1/billing/return"


@pytest.fixture(scope="module")
def standin() -> Iterator[PayPalStandin]:
    with PayPalStandin() as standin:
        yield standin


@pytest.fixture(scope="module")
def paypal(app_settings: None, standin: PayPalStandin) -> PayPal:
    return standin.facade(RETURN_URL)


@pytest.fixture(scope="module")
def api(app_settings: None, paypal: PayPal) -> Iterator[TestClient]:
    from fta.portal.app import create_app

    app = create_app()
    app.dependency_overrides[get_paypal] = lambda: paypal
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def subscribe(api: TestClient, standin: PayPalStandin, plan: str = "pro") -> tuple[Client, str]:
    """A new tenant (a private client in France) with a pending subscription; returns it and
    the approval URL."""
    client = sign_up(api, "Payer")
    saved = api.put("/api/v1/billing/identity", json=IDENTITY, headers=client.auth)
    assert saved.status_code == 200, saved.text
    answer = api.post("/api/v1/billing/subscription", json={"plan": plan}, headers=client.auth)
    assert answer.status_code == 201, answer.text
    approval_url = answer.json()["approval_url"]
    assert approval_url.startswith(f"{standin.url}/webapps/billing/subscriptions?ba_token=")
    return client, approval_url


def subscription_of(api: TestClient, client: Client) -> dict[str, Any]:
    answer = api.get("/api/v1/billing/subscription", headers=client.auth)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    assert len(body["subscriptions"]) == 1
    return body


def fetches_of(standin: PayPalStandin, subscription_id: str) -> int:
    path = f"/v1/billing/subscriptions/{subscription_id}"
    return sum(1 for seen in standin.seen(path) if seen.method == "GET")


def test_catalog_sync_is_idempotent(standin: PayPalStandin, paypal: PayPal) -> None:
    with session_scope() as session:
        entries = sync_catalog(session, paypal.client)
        first = {e.plan_code: (e.product_id, e.paypal_plan_id) for e in entries if e.tax_percent}
        untaxed = {e.plan_code: e.paypal_plan_id for e in entries if not e.tax_percent}
    assert {"starter", "pro"} <= set(first)
    # The same product, sold without VAT to clients who account for it themselves.
    assert set(untaxed) == set(first)
    assert standin.plans[untaxed["pro"]]["product_id"] == first["pro"][0]
    assert standin.plans[untaxed["pro"]]["taxes"] == {"percentage": "0.00", "inclusive": False}
    products, plans = len(standin.products), len(standin.plans)
    posts = [s for s in standin.seen("/v1/") if s.method == "POST"]
    with session_scope() as session:
        again = {
            e.plan_code: (e.product_id, e.paypal_plan_id)
            for e in sync_catalog(session, paypal.client)
            if e.tax_percent
        }
    assert again == first
    assert (len(standin.products), len(standin.plans)) == (products, plans)
    assert [s for s in standin.seen("/v1/") if s.method == "POST"] == posts
    pro = standin.plans[first["pro"][1]]
    assert pro["billing_cycles"][0]["pricing_scheme"]["fixed_price"]["currency_code"] == "EUR"
    assert pro["taxes"] == {"percentage": "20.00", "inclusive": False}

    # A new price: set on the same PayPal plan, for current subscribers too (rolled back
    # afterwards, at PayPal as here).
    price = pro["billing_cycles"][0]["pricing_scheme"]
    repriced = (first["pro"][1], untaxed["pro"])
    before = {
        plan_id: dict(standin.plans[plan_id]["billing_cycles"][0]["pricing_scheme"]["fixed_price"])
        for plan_id in repriced
    }
    try:
        with session_scope() as session:
            session.execute(update(Plan).where(Plan.code == "pro").values(price_ht_cents=12345))
            entry = {e.plan_code: e for e in sync_catalog(session, paypal.client) if e.tax_percent}[
                "pro"
            ]
            assert (entry.product_id, entry.paypal_plan_id) == first["pro"]
            assert entry.price_cents == 12345 and len(standin.plans) == plans
            assert price["fixed_price"] == {"value": "123.45", "currency_code": "EUR"}
            session.rollback()
    finally:
        for plan_id in repriced:
            standin.plans[plan_id]["billing_cycles"][0]["pricing_scheme"]["fixed_price"] = before[
                plan_id
            ]
            standin.price_changes.pop(plan_id, None)
    with session_scope() as session:
        entry = session.get_one(PayPalCatalogEntry, ("pro", Decimal("20.00")))
        assert (entry.paypal_plan_id, entry.price_cents) == (first["pro"][1], 7900)


def test_subscribe_approve_and_return_activates(api: TestClient, standin: PayPalStandin) -> None:
    client, approval_url = subscribe(api, standin)
    pending = subscription_of(api, client)
    assert pending["status"] == "pending"
    subscription_id = pending["subscriptions"][0]["subscription_id"]
    assert standin.subscriptions[subscription_id]["custom_id"] == client.tenant_id

    # The buyer approves on PayPal, which sends the browser back to our return path.
    with standin.http_client() as browser:
        approved = browser.get(approval_url, follow_redirects=False)
    assert approved.status_code == 302
    location = urlsplit(approved.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == RETURN_URL
    query = parse_qs(location.query)
    assert query["subscription_id"] == [subscription_id]

    back = api.get("/api/v1/billing/return", params={k: v[0] for k, v in query.items()})
    assert back.status_code == 200, back.text
    assert back.json()["status"] == "active" and back.json()["plan"] == "pro"
    assert subscription_of(api, client)["status"] == "active"
    assert tenant_state(client) == ("active", "active", "pro")
    # Subscribing again to the same plan is refused.
    again = api.post("/api/v1/billing/subscription", json={"plan": "pro"}, headers=client.auth)
    assert again.status_code == 409 and again.headers["content-type"] == PROBLEM


def test_return_and_subscription_refusals(api: TestClient, standin: PayPalStandin) -> None:
    before = len(standin.seen("/v1/billing/subscriptions/"))
    unknown = api.get("/api/v1/billing/return", params={"subscription_id": "I-NOTOURS"})
    assert unknown.status_code == 404 and unknown.headers["content-type"] == PROBLEM
    assert len(standin.seen("/v1/billing/subscriptions/")) == before
    client = sign_up(api, "Chooser")
    for plan, status in (("no-such-plan", 404), ("Not A Code!", 422)):
        answer = api.post("/api/v1/billing/subscription", json={"plan": plan}, headers=client.auth)
        assert answer.status_code == status and answer.headers["content-type"] == PROBLEM


def test_an_unconfigured_paypal_is_a_clear_503(http: TestClient) -> None:
    client = sign_up(http, "Early")
    assert http.put("/api/v1/billing/identity", json=IDENTITY, headers=client.auth).is_success
    answer = http.post("/api/v1/billing/subscription", json={"plan": "pro"}, headers=client.auth)
    assert answer.status_code == 503 and answer.headers["content-type"] == PROBLEM
    assert "FTA_PAYPAL_CLIENT_ID" in answer.json()["detail"]


# --- webhooks ---


def _sale(sale_id: str, subscription_id: str, total: str) -> dict[str, Any]:
    return {
        "id": sale_id,
        "state": "completed",
        "amount": {"total": total, "currency": "EUR"},
        "billing_agreement_id": subscription_id,
        "create_time": "2026-11-01T10:00:00Z",
    }


def _refund(refund_id: str, sale_id: str, total: str) -> dict[str, Any]:
    return {
        "id": refund_id,
        "state": "completed",
        "amount": {"total": total, "currency": "EUR"},
        "sale_id": sale_id,
        "create_time": "2026-11-02T10:00:00Z",
    }


def lifecycle(
    standin: PayPalStandin, subscription_id: str
) -> list[tuple[str, int, dict[str, Any]]]:
    """A subscription's life as PayPal sends it: (status PayPal then shows, failed payments,
    event). It is paid, fails, is suspended, recovers, is paid, refunded and cancelled."""
    ref = {"id": subscription_id}
    sale1, sale2 = f"S1-{subscription_id}", f"S2-{subscription_id}"
    steps = [
        ("ACTIVE", 0, "BILLING.SUBSCRIPTION.ACTIVATED", ref),
        ("ACTIVE", 0, "PAYMENT.SALE.COMPLETED", _sale(sale1, subscription_id, "94.80")),
        ("ACTIVE", 1, "BILLING.SUBSCRIPTION.PAYMENT.FAILED", ref),
        ("SUSPENDED", 3, "BILLING.SUBSCRIPTION.SUSPENDED", ref),
        ("ACTIVE", 0, "BILLING.SUBSCRIPTION.RE-ACTIVATED", ref),
        ("ACTIVE", 0, "PAYMENT.SALE.COMPLETED", _sale(sale2, subscription_id, "94.80")),
        ("ACTIVE", 0, "PAYMENT.SALE.REFUNDED", _refund(f"R2-{subscription_id}", sale2, "40.00")),
        ("CANCELLED", 0, "BILLING.SUBSCRIPTION.CANCELLED", ref),
    ]
    return [(status, failed, standin.event(kind, res)) for status, failed, kind, res in steps]


def state_of(subscription_id: str) -> tuple[str, list[tuple[str, int, str]]]:
    """The subscription's status and its payments (kind, cents, currency)."""
    with session_scope() as session:
        status = session.scalars(
            select(Subscription.status).where(
                Subscription.paypal_subscription_id == subscription_id
            )
        ).one()
        sales = select(Payment.sale_id).where(Payment.paypal_subscription_id == subscription_id)
        payments = session.execute(
            select(Payment.kind, Payment.amount_cents, Payment.currency).where(
                Payment.sale_id.in_(sales)
            )
        ).all()
    return status, sorted((k, a, c) for k, a, c in payments)


def tenant_state(client: Client) -> tuple[str, str, str]:
    """The account's billing status, its status, and its plan."""
    with session_scope() as session:
        tenant = session.get_one(Tenant, client.tenant_id)
        return tenant.billing_status, tenant.status, tenant.plan.code


def new_active_subscription(api: TestClient, standin: PayPalStandin) -> tuple[Client, str]:
    client, _ = subscribe(api, standin)
    return client, subscription_of(api, client)["subscriptions"][0]["subscription_id"]


def test_the_stream_twice_and_shuffled_ends_in_the_same_state(
    api: TestClient, standin: PayPalStandin
) -> None:
    # A: delivered in order, PayPal's state moving along with each event.
    a_client, a_id = new_active_subscription(api, standin)
    seen_statuses, billing = [], []
    for paypal_status, failed, event in lifecycle(standin, a_id):
        standin.set_subscription(a_id, paypal_status, failed=failed)
        answer = standin.send_webhook(api, event)
        assert answer.status_code == 200, answer.text
        assert answer.json()["outcome"] == "applied"
        seen_statuses.append(state_of(a_id)[0])
        billing.append(tenant_state(a_client)[0])
    assert seen_statuses == [
        "active",
        "active",
        "past_due",
        "past_due",
        "active",
        "active",
        "active",
        "cancelled",
    ]
    assert billing == seen_statuses

    # B: the same life, its events arriving afterwards, twice, in random order.
    b_client, b_id = new_active_subscription(api, standin)
    stream = lifecycle(standin, b_id)
    standin.set_subscription(b_id, "CANCELLED")
    deliveries = [event for _, _, event in stream] * 2
    random.Random(secrets.randbits(32)).shuffle(deliveries)
    outcomes = [standin.send_webhook(api, event) for event in deliveries]
    assert all(answer.status_code == 200 for answer in outcomes)
    assert sorted(answer.json()["outcome"] for answer in outcomes).count("duplicate") == 8

    a_status, a_payments = state_of(a_id)
    b_status, b_payments = state_of(b_id)
    assert a_status == b_status == "cancelled"
    # B was never seen active, so its plan never changed: only access is compared.
    assert tenant_state(a_client)[:2] == tenant_state(b_client)[:2] == ("cancelled", "suspended")
    assert (
        a_payments
        == b_payments
        == [("refund", 4000, "EUR"), ("sale", 9480, "EUR"), ("sale", 9480, "EUR")]
    )
    with session_scope() as session:
        stored = session.scalars(
            select(PayPalEvent.event_id).where(
                PayPalEvent.event_id.in_([event["id"] for _, _, event in stream])
            )
        ).all()
    assert len(stored) == len(stream)

    # What the invoices are made from: both tenants' sales and refunds, each once.
    tenants = {a_client.tenant_id, b_client.tenant_id}
    with session_scope() as session:
        due = [p for p in payments_to_invoice(session) if p.tenant_id in tenants]
        assert sorted((p.tenant_id, p.kind.value, p.amount_cents) for p in due) == sorted(
            (tenant, kind, cents)
            for tenant in tenants
            for kind, cents in (("sale", 9480), ("sale", 9480), ("refund", 4000))
        )
        refund = next(p for p in due if p.kind.value == "refund")
        sale = session.get_one(Payment, refund.sale_payment_id)
        assert sale.kind == "sale" and sale.paypal_id == refund.sale_id

    # And the invoices themselves: the same for both, whatever the order of delivery.
    for client in (a_client, b_client):
        saved = api.put("/api/v1/billing/identity", json=IDENTITY, headers=client.auth)
        assert saved.status_code == 200, saved.text
    invoice_payments(session_scope, utcnow())
    assert (
        documents(a_client)
        == documents(b_client)
        == [
            ("credit_note", 3333, 667, 4000, True),
            ("invoice", 7900, 1580, 9480, False),
            ("invoice", 7900, 1580, 9480, False),
        ]
    )
    with session_scope() as session:
        assert not [p for p in payments_to_invoice(session) if p.tenant_id in tenants]
    # Another round issues nothing more for them.
    invoice_payments(session_scope, utcnow())
    assert len(documents(a_client)) == 3


IDENTITY = {
    "customer_type": "private",
    "legal_name": "Camille Martin",
    "address_line1": "1 rue de la Paix",
    "postcode": "75002",
    "city": "Paris",
    "country": "FR",
}


def documents(client: Client) -> list[tuple[str, int, int, int, bool]]:
    """The tenant's invoices and credit notes: kind, HT, TVA, TTC, and whether it credits
    one of the tenant's own invoices."""
    with session_scope() as session:
        rows = session.scalars(select(Invoice).where(Invoice.tenant_id == client.tenant_id))
        own = {row.id: row for row in rows}
        return sorted(
            (
                row.kind,
                row.total_ht_cents,
                row.total_vat_cents,
                row.total_ttc_cents,
                row.credits_invoice_id in own,
            )
            for row in own.values()
        )


def test_a_forged_or_altered_webhook_changes_nothing(
    api: TestClient, standin: PayPalStandin
) -> None:
    _, subscription_id = new_active_subscription(api, standin)
    standin.set_subscription(subscription_id, "ACTIVE")
    assert (
        standin.send_webhook(
            api, standin.event("BILLING.SUBSCRIPTION.ACTIVATED", {"id": subscription_id})
        ).status_code
        == 200
    )
    standin.set_subscription(subscription_id, "CANCELLED")
    event = standin.event("BILLING.SUBSCRIPTION.CANCELLED", {"id": subscription_id})
    fetches = fetches_of(standin, subscription_id)
    with session_scope() as session:
        audits = session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "billing.webhook_refused")
        )

    body = json.dumps(event).encode()
    headers = standin.signed_headers(body)
    altered = api.post("/webhooks/paypal", content=json.dumps(event, indent=1), headers=headers)
    forged = standin.send_webhook(api, event, signer="expired")
    foreign = standin.send_webhook(api, event, cert_url=standin.cert_url(host="localhost"))
    for answer in (altered, forged, foreign):
        assert answer.status_code == 400, answer.text
        assert answer.headers["content-type"] == PROBLEM
        assert "not verifiably PayPal's" in answer.json()["detail"]

    assert state_of(subscription_id)[0] == "active"
    assert fetches_of(standin, subscription_id) == fetches
    with session_scope() as session:
        assert (
            session.scalar(select(PayPalEvent.id).where(PayPalEvent.event_id == event["id"]))
            is None
        )
        after = session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "billing.webhook_refused")
        )
    assert after == (audits or 0) + 3

    # The genuine delivery of that same event id still counts.
    genuine = standin.send_webhook(api, event)
    assert genuine.status_code == 200 and genuine.json()["outcome"] == "applied"
    assert state_of(subscription_id)[0] == "cancelled"


def test_bad_webhook_bodies(api: TestClient, standin: PayPalStandin) -> None:
    not_json = standin.send_webhook(api, b"<xml>not json</xml>")
    assert not_json.status_code == 400 and not_json.headers["content-type"] == PROBLEM
    assert "not JSON" in not_json.json()["detail"]
    huge = standin.send_webhook(api, b"{" + b" " * 100_000 + b"}")
    assert huge.status_code == 400 and huge.headers["content-type"] == PROBLEM
    assert "limited to" in huge.json()["detail"]
    no_resource = standin.send_webhook(api, {"id": "WH-NORES", "event_type": "X.Y"})
    assert no_resource.status_code == 400 and no_resource.headers["content-type"] == PROBLEM

    unknown = standin.event("BILLING.SUBSCRIPTION.CANCELLED", {"id": "I-SOMEONEELSES"})
    answer = standin.send_webhook(api, unknown)
    assert answer.status_code == 200 and answer.json()["outcome"] == "unknown_subscription"
    assert fetches_of(standin, "I-SOMEONEELSES") == 0
    again = standin.send_webhook(api, unknown)
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
    other = standin.send_webhook(api, standin.event("CHECKOUT.ORDER.APPROVED", {"id": "O-1"}))
    assert other.status_code == 200 and other.json()["outcome"] == "ignored"
    absurd = _sale("S-ABSURD", "I-SOMEONEELSES", "12.345")
    malformed = standin.send_webhook(api, standin.event("PAYMENT.SALE.COMPLETED", absurd))
    assert malformed.status_code == 200 and malformed.json()["outcome"] == "malformed"
    with session_scope() as session:
        stored = session.scalars(
            select(PayPalEvent).where(PayPalEvent.event_id == unknown["id"])
        ).one()
        assert stored.outcome == "unknown_subscription" and stored.processed_at is not None
        assert b"I-SOMEONEELSES" in stored.body
        assert session.scalar(select(Payment.id).where(Payment.paypal_id == "S-ABSURD")) is None


# --- the REST client ---


def test_invoicing_v2_draft_send_and_track(standin: PayPalStandin, paypal: PayPal) -> None:
    number = f"F-TEST-{secrets.token_hex(3)}"
    body = draft_invoice_body(
        number=number,
        recipient_email="payer@example.com",
        lines=[
            InvoiceLine(
                "CPU-hours beyond the plan", Decimal("12.5"), Decimal("0.04"), Decimal("20")
            )
        ],
        note="Usage of 2026-10",
    )
    invoice_id = paypal.client.create_draft_invoice(body, request_id=f"fta-inv-{number}")
    assert paypal.client.create_draft_invoice(body, request_id=f"fta-inv-{number}") == invoice_id
    draft = paypal.client.get_invoice(invoice_id)
    assert draft["status"] == "DRAFT"
    assert draft["detail"]["invoice_number"] == number
    assert draft["items"][0]["unit_amount"] == {"currency_code": "EUR", "value": "0.04"}
    paypal.client.send_invoice(invoice_id, request_id=f"fta-send-{number}")
    assert paypal.client.get_invoice(invoice_id)["status"] == "SENT"
    standin.mark_invoice_paid(invoice_id)
    assert paypal.client.get_invoice(invoice_id)["status"] == "PAID"


def test_the_token_is_cached_and_renewed_when_refused(standin: PayPalStandin) -> None:
    client = PayPalClient(
        standin.url, standin.client_id, standin.client_secret, http=standin.http_client()
    )
    before = len(standin.seen("/v1/oauth2/token"))

    def product() -> str:
        name = secrets.token_hex(4)
        return str(client.create_product(name=name, description=name, request_id=name)["id"])

    for _ in range(3):
        product()
    assert len(standin.seen("/v1/oauth2/token")) == before + 1
    standin.revoke_tokens()
    assert product() in standin.products
    assert len(standin.seen("/v1/oauth2/token")) == before + 2


# --- what follows a payment: cancellation, pending and denied sales, disputes ---


def active_subscription(api: TestClient, standin: PayPalStandin) -> tuple[Client, str]:
    """A new client whose subscription was approved and confirmed: active."""
    client, approval_url = subscribe(api, standin)
    with standin.http_client() as browser:
        location = browser.get(approval_url, follow_redirects=False).headers["location"]
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert api.get("/api/v1/billing/return", params=query).status_code == 200
    assert tenant_state(client)[:2] == ("active", "active")
    return client, query["subscription_id"]


def deliver(api: TestClient, standin: PayPalStandin, kind: str, resource: dict[str, Any]) -> str:
    answer = standin.send_webhook(api, standin.event(kind, resource))
    assert answer.status_code == 200, answer.text
    return str(answer.json()["outcome"])


def paid_through_of(subscription_id: str) -> datetime | None:
    with session_scope() as session:
        return session.scalars(
            select(Subscription.paid_through).where(
                Subscription.paypal_subscription_id == subscription_id
            )
        ).one()


def advance(now: datetime) -> None:
    with session_scope() as session:
        advance_billing_states(session, now)


def refusal(client: Client, now: datetime) -> str | None:
    with session_scope() as session:
        refused = can_start(session, session.get_one(Tenant, client.tenant_id), now)
        return None if refused is None else refused.detail


def mails_to(client: Client) -> list[str]:
    with session_scope() as session:
        return list(
            session.scalars(
                select(OutboxMail.subject)
                .where(OutboxMail.to_address == client.email)
                .order_by(OutboxMail.created_at)
            )
        )


def paypal_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_cancelled_subscription_keeps_access_until_the_period_paid_ends(
    api: TestClient, standin: PayPalStandin
) -> None:
    client, subscription_id = active_subscription(api, standin)
    # PayPal took the month's payment 28 days ago; the client cancels today.
    paid_at = utcnow().replace(microsecond=0) - timedelta(days=28)
    standin.record_payment(subscription_id, paid_at)
    standin.set_subscription(subscription_id, "CANCELLED")
    assert deliver(api, standin, "BILLING.SUBSCRIPTION.CANCELLED", {"id": subscription_id}) == (
        "applied"
    )
    assert state_of(subscription_id)[0] == "cancelled"
    assert tenant_state(client)[:2] == ("active", "active")
    assert refusal(client, utcnow()) is None
    ends = paid_through_of(subscription_id)
    assert ends == one_cycle_after(paid_at) and ends > utcnow()
    # The client sees until when, and at what price and VAT it subscribed.
    shown = subscription_of(api, client)["subscriptions"][0]
    assert datetime.fromisoformat(shown["paid_through"]) == ends
    assert (shown["price_ht_cents"], shown["vat_percent"]) == (7900, "20.00")

    # The round leaves it until the paid month is over, then cuts access.
    advance(ends - timedelta(seconds=1))
    assert tenant_state(client)[:2] == ("active", "active")
    advance(ends + timedelta(seconds=1))
    assert tenant_state(client)[:2] == ("cancelled", "suspended")
    assert "subscription is cancelled" in str(refusal(client, ends + timedelta(seconds=1)))


def test_without_paypals_payment_details_our_last_sale_dates_the_period_paid(
    api: TestClient, standin: PayPalStandin
) -> None:
    client, subscription_id = active_subscription(api, standin)
    sold_at = utcnow().replace(microsecond=0) - timedelta(days=3)
    sale = {**_sale(f"S-{subscription_id}", subscription_id, "94.80")}
    sale["create_time"] = paypal_time(sold_at)
    assert deliver(api, standin, "PAYMENT.SALE.COMPLETED", sale) == "applied"
    standin.set_subscription(subscription_id, "CANCELLED")
    assert deliver(api, standin, "BILLING.SUBSCRIPTION.CANCELLED", {"id": subscription_id}) == (
        "applied"
    )
    assert tenant_state(client)[:2] == ("active", "active")
    assert paid_through_of(subscription_id) == one_cycle_after(sold_at)


def test_a_pending_sale_changes_nothing_a_denied_one_opens_a_grace(
    api: TestClient, standin: PayPalStandin
) -> None:
    client, subscription_id = active_subscription(api, standin)
    sale_id = f"SP-{subscription_id}"
    held = {
        **_sale(sale_id, subscription_id, "94.80"),
        "state": "pending",
        "reason_code": "ECHECK",
        "create_time": paypal_time(utcnow() - timedelta(minutes=5)),
    }
    assert deliver(api, standin, "PAYMENT.SALE.PENDING", held) == "applied"
    assert tenant_state(client)[:2] == ("active", "active")
    assert mails_to(client)[-1] == "fta: your subscription payment is pending at PayPal"

    denied = {**held, "state": "denied"}
    assert deliver(api, standin, "PAYMENT.SALE.DENIED", denied) == "applied"
    assert tenant_state(client)[:2] == ("past_due", "active")
    assert mails_to(client)[-1] == "fta: your subscription payment was denied"
    with session_scope() as session:
        issue = session.scalars(select(PaymentIssue).where(PaymentIssue.paypal_id == sale_id)).one()
        assert (issue.kind, issue.status, issue.detail) == ("sale", "denied", "ECHECK")
        assert (issue.tenant_id, issue.amount_cents) == (client.tenant_id, 9480)
        grace_until = session.get_one(Tenant, client.tenant_id).grace_until
    assert grace_until is not None and grace_until > utcnow() + timedelta(days=6)
    # PayPal still shows the subscription active: that does not pay the denied sale.
    assert deliver(api, standin, "BILLING.SUBSCRIPTION.UPDATED", {"id": subscription_id}) == (
        "applied"
    )
    assert tenant_state(client)[:2] == ("past_due", "active")
    # A late copy of the pending state changes nothing.
    before = len(mails_to(client))
    again = {**held, "update_time": held["create_time"]}
    assert deliver(api, standin, "PAYMENT.SALE.PENDING", again) == "applied"
    assert len(mails_to(client)) == before

    # The grace ends in suspension, as for a failed payment; a later payment restores access.
    advance(grace_until + timedelta(seconds=1))
    assert tenant_state(client)[:2] == ("suspended", "suspended")
    paid = {**_sale(f"S2-{subscription_id}", subscription_id, "94.80")}
    paid["create_time"] = paypal_time(utcnow())
    assert deliver(api, standin, "PAYMENT.SALE.COMPLETED", paid) == "applied"
    assert tenant_state(client)[:2] == ("active", "active")


def _dispute(
    dispute_id: str, sale_id: str, status: str, updated: datetime, outcome: str | None = None
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "dispute_id": dispute_id,
        "create_time": "2026-11-20T10:00:00Z",
        "update_time": paypal_time(updated),
        "disputed_transactions": [{"seller_transaction_id": sale_id}],
        "reason": "UNAUTHORISED",
        "status": status,
        "dispute_amount": {"currency_code": "EUR", "value": "94.80"},
        "dispute_life_cycle_stage": "CHARGEBACK",
    }
    if outcome:
        resource["dispute_outcome"] = {"outcome_code": outcome}
    return resource


def test_a_dispute_alerts_the_operator_and_tells_the_client_without_suspending(
    api: TestClient, standin: PayPalStandin
) -> None:
    client, subscription_id = active_subscription(api, standin)
    sale_id = f"SD-{subscription_id}"
    assert deliver(
        api, standin, "PAYMENT.SALE.COMPLETED", _sale(sale_id, subscription_id, "94.80")
    ) == ("applied")
    dispute_id = f"PP-D-{secrets.token_hex(4)}"
    opened = utcnow() - timedelta(hours=3)
    created = _dispute(dispute_id, sale_id, "OPEN", opened)
    assert deliver(api, standin, "CUSTOMER.DISPUTE.CREATED", created) == "applied"
    assert mails_to(client)[-1] == "fta: a PayPal dispute was opened about your payment"
    with session_scope() as session:
        (alert,) = [a for a in open_alerts(session, client.tenant_id) if a.kind == "dispute"]
        assert alert.key == f"dispute:{dispute_id}" and dispute_id in alert.message
        assert not alert.blocking
    assert tenant_state(client)[:2] == ("active", "active")

    resolved = _dispute(
        dispute_id, sale_id, "RESOLVED", opened + timedelta(hours=2), "RESOLVED_BUYER_FAVOUR"
    )
    assert deliver(api, standin, "CUSTOMER.DISPUTE.RESOLVED", resolved) == "applied"
    assert mails_to(client)[-1] == "fta: your PayPal dispute is closed"
    # An update older than the resolution, delivered late, changes nothing.
    late = _dispute(dispute_id, sale_id, "UNDER_REVIEW", opened + timedelta(hours=1))
    assert deliver(api, standin, "CUSTOMER.DISPUTE.UPDATED", late) == "applied"
    with session_scope() as session:
        issue = session.scalars(
            select(PaymentIssue).where(PaymentIssue.paypal_id == dispute_id)
        ).one()
        assert (issue.kind, issue.status, issue.sale_id) == ("dispute", "RESOLVED", sale_id)
        assert issue.detail is not None and "RESOLVED_BUYER_FAVOUR" in issue.detail
        assert (issue.tenant_id, issue.paypal_subscription_id) == (
            client.tenant_id,
            subscription_id,
        )
        (alert,) = [a for a in open_alerts(session, client.tenant_id) if a.kind == "dispute"]
        assert alert.occurrences == 2  # opened, resolved: the late update is not news
    assert tenant_state(client)[:2] == ("active", "active")
