"""Invoices state what PayPal collected, and the billing round survives a bad item.

Payments are recorded as PayPal's webhooks deliver them (`record_payment`), on subscriptions
whose PayPal plan added French VAT or none; the round's own functions then invoice them, each
in a transaction of its own, against the real database.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from fta.accounts.models import BillingStatus, Tenant
from fta.billing.alerts import service as alerts
from fta.billing.alerts.models import BillingAlert
from fta.billing.invoices.models import Invoice
from fta.billing.payment_invoices import invoice_payments
from fta.billing.paypal.models import Payment, PaymentKind, Subscription
from fta.billing.paypal.payments import record_payment
from fta.billing.periodic import run_round
from fta.db import session_scope, utcnow
from fta.plans.models import Plan
from tests.support.api import sign_up
from tests.support.identities import fictional_siren, french_vat

FRENCH, NO_VAT = Decimal("20.00"), Decimal("0.00")
PAID_AT = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)  # already 1 December in Paris


def belgian_vat(stem: str) -> str:
    return f"BE{stem}{97 - int(stem) % 97:02d}"


ADDRESS = {"address_line1": "1 rue de la Paix", "postcode": "75002", "city": "Paris"}
FR_CONSUMER = {**ADDRESS, "customer_type": "private", "legal_name": "Camille Martin"}
_FR_SIREN = fictional_siren("90000011")
FR_BUSINESS = {
    **ADDRESS,
    "customer_type": "business",
    "legal_name": "Quantique SARL",
    "siren": _FR_SIREN,
    "vat_number": french_vat(_FR_SIREN),
}
EU_BUSINESS = {
    "customer_type": "business",
    "legal_name": "Kwantum BV",
    "address_line1": "Rue Neuve 1",
    "postcode": "1000",
    "city": "Bruxelles",
    "country": "BE",
    "vat_number": belgian_vat("04031707"),
    # Confirmed by VIES: the evidence reverse charge needs.
    "vat_number_status": "verified",
    "vat_number_checked_at": datetime(2026, 11, 2, tzinfo=UTC),
    "vat_number_check_ref": "WAPIAAAAWxyz",
}
NON_EU_PRIVATE = {
    "customer_type": "private",
    "legal_name": "Lena Meier",
    "address_line1": "Bahnhofstrasse 1",
    "postcode": "8001",
    "city": "Zürich",
    "country": "CH",
}


@dataclass
class Subscriber:
    tenant_id: str
    subscription_id: str
    email: str


@pytest.fixture
def subscriber(http: TestClient) -> Iterator[object]:
    def make(identity: dict[str, object], tax: Decimal, price: int = 7900) -> Subscriber:
        account = sign_up(http, "Subscriber")
        tenant_id = account.tenant_id
        subscription_id = f"I-{secrets.token_hex(6).upper()}"
        with session_scope() as session:
            values = {"country": "FR", **identity}
            session.execute(update(Tenant).where(Tenant.id == tenant_id).values(**values))
            session.add(
                Subscription(
                    tenant_id=tenant_id,
                    paypal_subscription_id=subscription_id,
                    plan_code="pro",
                    status="active",
                    paypal_status="ACTIVE",
                    last_state={},
                    price_ht_cents=price,
                    tax_percent=tax,
                )
            )
        return Subscriber(tenant_id, subscription_id, account.email)

    yield make


def sale(who: Subscriber, cents: int, when: datetime = PAID_AT) -> str:
    sale_id = f"S-{secrets.token_hex(6).upper()}"
    with session_scope() as session:
        record_payment(
            session,
            PaymentKind.SALE,
            {
                "id": sale_id,
                "billing_agreement_id": who.subscription_id,
                "amount": {"total": f"{Decimal(cents) / 100:.2f}", "currency": "EUR"},
                "state": "completed",
                "create_time": when.isoformat(),
            },
        )
    return sale_id


def refund(sale_id: str, cents: int) -> str:
    refund_id = f"R-{secrets.token_hex(6).upper()}"
    with session_scope() as session:
        record_payment(
            session,
            PaymentKind.REFUND,
            {
                "id": refund_id,
                "sale_id": sale_id,
                "amount": {"total": f"{Decimal(cents) / 100:.2f}", "currency": "EUR"},
                "state": "completed",
                "create_time": (PAID_AT + timedelta(days=2)).isoformat(),
            },
        )
    return refund_id


def documents(who: Subscriber) -> list[tuple[str, str, int, int, int]]:
    with session_scope() as session:
        rows = session.scalars(
            select(Invoice).where(Invoice.tenant_id == who.tenant_id).order_by(Invoice.number)
        )
        return [
            (r.kind, r.vat_regime, r.total_ht_cents, r.total_vat_cents, r.total_ttc_cents)
            for r in rows
        ]


def open_alert(key: str) -> BillingAlert | None:
    with session_scope() as session:
        found = [a for a in alerts.open_alerts(session) if a.key == key]
        for alert in found:
            session.expunge(alert)
    return found[0] if found else None


def payment_key(paypal_id: str) -> str:
    with session_scope() as session:
        payment_id = session.scalars(select(Payment.id).where(Payment.paypal_id == paypal_id)).one()
    return f"payment:{payment_id}"


@pytest.mark.parametrize(
    ("identity", "tax", "collected", "expected"),
    [
        (FR_CONSUMER, FRENCH, 9480, ("invoice", "fr", 7900, 1580, 9480)),
        (FR_BUSINESS, FRENCH, 9480, ("invoice", "fr", 7900, 1580, 9480)),
        (EU_BUSINESS, NO_VAT, 7900, ("invoice", "reverse_charge", 7900, 0, 7900)),
        (NON_EU_PRIVATE, NO_VAT, 7900, ("invoice", "outside_eu", 7900, 0, 7900)),
    ],
    ids=["fr-consumer", "fr-business", "eu-business-reverse-charge", "non-eu"],
)
def test_the_invoice_totals_what_paypal_collected(
    subscriber: object,
    identity: dict[str, object],
    tax: Decimal,
    collected: int,
    expected: tuple[str, str, int, int, int],
) -> None:
    who = subscriber(identity, tax)  # type: ignore[operator]
    # The catalog's price changed after the client subscribed: the sale is what counts.
    with session_scope() as session:
        pro = session.scalars(select(Plan).where(Plan.code == "pro")).one()
        price = pro.price_ht_cents
        pro.price_ht_cents = price + 1000
    try:
        sale(who, collected)
        invoice_payments(session_scope, utcnow())
    finally:
        with session_scope() as session:
            session.execute(update(Plan).where(Plan.code == "pro").values(price_ht_cents=price))
    assert documents(who) == [expected]
    with session_scope() as session:
        invoice = session.scalars(select(Invoice).where(Invoice.tenant_id == who.tenant_id)).one()
        # The account's address reaches the invoice (Factur-X gives it as the buyer's).
        assert invoice.client["email"] == who.email
        # Paid at 23:30 UTC on 30 November: 1 December in France.
        assert "acquittée le 01/12/2026 par PayPal" in invoice.mentions
        assert (invoice.period_start.isoformat(), invoice.period_end.isoformat()) == (
            "2026-12-01",
            "2026-12-31",
        )


def test_a_sale_that_disagrees_with_the_clients_vat_regime_is_not_invoiced(
    subscriber: object,
) -> None:
    # Subscribed as a French consumer (VAT added), then declared a Belgian business.
    who = subscriber(EU_BUSINESS, FRENCH)  # type: ignore[operator]
    sale_id = sale(who, 9480)
    invoice_payments(session_scope, utcnow())
    assert documents(who) == []
    alert = open_alert(payment_key(sale_id))
    assert alert is not None and alert.blocking and alert.kind == "billing-mismatch"
    assert "reverse_charge" in alert.message

    # An amount PayPal changed: no invoice either.
    other = subscriber(FR_CONSUMER, FRENCH)  # type: ignore[operator]
    odd = sale(other, 9999)
    invoice_payments(session_scope, utcnow())
    assert documents(other) == []
    alert = open_alert(payment_key(odd))
    assert alert is not None and "94,80 €" in alert.message and "99,99 €" in alert.message


def test_a_partial_refund_credits_exactly_the_refunded_amount(subscriber: object) -> None:
    who = subscriber(FR_CONSUMER, FRENCH)  # type: ignore[operator]
    sale_id = sale(who, 9480)
    refund(sale_id, 999)
    invoice_payments(session_scope, utcnow())
    assert documents(who) == [
        ("credit_note", "fr", 833, 166, 999),
        ("invoice", "fr", 7900, 1580, 9480),
    ]


def test_a_poisoned_refund_is_quarantined_and_the_rest_of_the_round_goes_on(
    subscriber: object,
) -> None:
    poisoned = subscriber(FR_CONSUMER, FRENCH)  # type: ignore[operator]
    sale_id = sale(poisoned, 9480)
    invoice_payments(session_scope, utcnow())
    # PayPal reports a refund larger than the invoice: no credit note can be made for it.
    bad_refund = refund(sale_id, 20000)
    healthy = subscriber(FR_BUSINESS, FRENCH)  # type: ignore[operator]
    sale(healthy, 9480)
    trial = subscriber(FR_CONSUMER, FRENCH)  # type: ignore[operator]
    with session_scope() as session:
        session.execute(
            update(Tenant)
            .where(Tenant.id == trial.tenant_id)
            .values(billing_status="trialing", trial_ends_at=utcnow() - timedelta(hours=1))
        )

    run_round(session_scope, utcnow())

    key = payment_key(bad_refund)
    alert = open_alert(key)
    assert alert is not None and alert.blocking and alert.tenant_id == poisoned.tenant_id
    assert "would exceed its total" in alert.message
    assert documents(poisoned) == [("invoice", "fr", 7900, 1580, 9480)]
    assert documents(healthy) == [("invoice", "fr", 7900, 1580, 9480)]
    with session_scope() as session:
        assert session.get_one(Tenant, trial.tenant_id).billing_status == BillingStatus.SUSPENDED

    # Quarantined: later rounds leave it alone...
    run_round(session_scope, utcnow())
    again = open_alert(key)
    assert again is not None and again.occurrences == 1
    # ...until an operator resolves the alert; the item is then tried again.
    with session_scope() as session:
        alerts.resolve(
            session, alert.id, by="operator:test", resolution="asked PayPal", now=utcnow()
        )
    invoice_payments(session_scope, utcnow())
    retried = open_alert(key)
    assert retried is not None and retried.id != alert.id
