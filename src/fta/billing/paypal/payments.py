"""Subscription payments as PayPal reported them (sales, refunds, reversals), and the list of
those still to invoice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, aliased

from fta.billing.paypal.models import Payment, PaymentKind, Subscription

MAX_AMOUNT_CENTS = 10**11


class MalformedResource(ValueError):
    """An authentic event whose resource lacks what we need; its raw body is kept."""


@dataclass(frozen=True)
class PaymentToInvoice:
    """One payment without its invoice yet: a sale to invoice, or a refund or reversal to
    credit. `sale_payment_id` is the sale's own row (a credit note refers to its invoice)."""

    payment_id: int
    kind: PaymentKind
    tenant_id: str
    plan_code: str
    paypal_subscription_id: str
    sale_id: str
    sale_payment_id: int
    amount_cents: int
    currency: str
    occurred_at: datetime


def _text(resource: dict[str, Any], key: str) -> str:
    value = resource.get(key)
    if not isinstance(value, str) or not 0 < len(value) <= 64:
        raise MalformedResource(f"resource.{key} is missing or too long")
    return value


def _cents(resource: dict[str, Any]) -> tuple[int, str]:
    amount = resource.get("amount")
    if not isinstance(amount, dict):
        raise MalformedResource("resource.amount is missing")
    try:
        value = abs(Decimal(str(amount.get("total"))))
    except InvalidOperation as exc:
        raise MalformedResource("resource.amount.total is not a number") from exc
    cents = value * 100
    if not value.is_finite() or cents != cents.to_integral_value() or cents >= MAX_AMOUNT_CENTS:
        raise MalformedResource("resource.amount.total is not an amount in cents")
    currency = amount.get("currency")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
        raise MalformedResource("resource.amount.currency is not a currency code")
    return int(cents), currency.upper()


def _occurred_at(resource: dict[str, Any]) -> datetime:
    for key in ("update_time", "create_time"):
        value = resource.get(key)
        if isinstance(value, str):
            try:
                when = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            if when.tzinfo is not None:
                return when
    raise MalformedResource("resource has no valid create_time")


def sale_subscription_id(resource: dict[str, Any]) -> str:
    """The subscription a sale paid (PayPal calls it the billing agreement)."""
    return _text(resource, "billing_agreement_id")


def record_payment(session: Session, kind: PaymentKind, resource: dict[str, Any]) -> None:
    """Stores a sale, refund or reversal once, whatever the order or number of deliveries."""
    paypal_id = _text(resource, "id")
    if kind is PaymentKind.SALE:
        sale_id, subscription_id = paypal_id, sale_subscription_id(resource)
    else:
        # A reversal may come as the sale itself (no sale_id) or as a refund-like resource.
        sale_id = _text(resource, "sale_id") if "sale_id" in resource else paypal_id
        subscription_id = None
    amount_cents, currency = _cents(resource)
    state = resource.get("state")
    session.execute(
        insert(Payment)
        .values(
            kind=kind,
            paypal_id=paypal_id,
            sale_id=sale_id,
            paypal_subscription_id=subscription_id,
            amount_cents=amount_cents,
            currency=currency,
            state=state[:32] if isinstance(state, str) else kind.value,
            occurred_at=_occurred_at(resource),
        )
        .on_conflict_do_nothing(index_elements=["kind", "paypal_id"])
    )


def payments_to_invoice(session: Session, only: int | None = None) -> list[PaymentToInvoice]:
    """Payments of our subscriptions not invoiced yet (or just payment `only`), oldest first,
    sales before the refunds of the same moment. Rows are locked (others skip them) until the
    caller's transaction ends: call `mark_invoiced` for each one invoiced in that transaction."""
    sale = aliased(Payment)
    query = (
        select(Payment, sale.id, Subscription)
        .join(sale, (sale.sale_id == Payment.sale_id) & (sale.kind == PaymentKind.SALE))
        .join(Subscription, Subscription.paypal_subscription_id == sale.paypal_subscription_id)
        .where(Payment.invoiced_at.is_(None))
        .order_by(Payment.occurred_at, Payment.kind.desc(), Payment.id)
        .with_for_update(of=Payment, skip_locked=True)
    )
    if only is not None:
        query = query.where(Payment.id == only)
    rows = session.execute(query).all()
    return [
        PaymentToInvoice(
            payment_id=payment.id,
            kind=PaymentKind(payment.kind),
            tenant_id=subscription.tenant_id,
            plan_code=subscription.plan_code,
            paypal_subscription_id=subscription.paypal_subscription_id,
            sale_id=payment.sale_id,
            sale_payment_id=sale_payment_id,
            amount_cents=payment.amount_cents,
            currency=payment.currency,
            occurred_at=payment.occurred_at,
        )
        for payment, sale_payment_id, subscription in rows
    ]


def mark_invoiced(session: Session, payment_id: int, invoice_ref: str, now: datetime) -> None:
    payment = session.get(Payment, payment_id)
    if payment is None or payment.invoiced_at is not None:
        raise ValueError(f"payment {payment_id} is unknown or already invoiced")
    payment.invoiced_at, payment.invoice_ref = now, invoice_ref[:64]
