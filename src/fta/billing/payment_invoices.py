"""Our invoices for what PayPal collected: one invoice per subscription payment, one credit
note per refund or reversal of it.

Run by the worker's billing round, each payment in a transaction of its own
(`fta.billing.items`). An invoice states what PayPal collected: the sale's amount, split into
price and VAT by the client's VAT regime, and checked against the subscription's price and
the VAT its PayPal plan adds. A sale that does not agree (a client whose regime changed since
subscribing, an amount PayPal changed) gets no invoice but an operator alert. Issuing is
idempotent by PayPal id (`payment_ref`), so a round that stops half-way never invoices twice.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from fta.accounts.models import Tenant
from fta.billing.invoices.identity import check_client, client_from_tenant
from fta.billing.invoices.models import Invoice
from fta.billing.invoices.money import Line, compute, euros
from fta.billing.invoices.paris import paris_day
from fta.billing.invoices.service import issue_credit_note, issue_invoice
from fta.billing.invoices.vat import treatment
from fta.billing.items import Item, Mismatch, UnitOfWork, process_items, waiting
from fta.billing.payment_issues import client_email
from fta.billing.paypal.models import Payment, PaymentKind, Subscription
from fta.billing.paypal.payments import PaymentToInvoice, mark_invoiced, payments_to_invoice
from fta.errors import Invalid
from fta.plans.models import Plan

KEY_PREFIX = "payment:"


@dataclass(frozen=True)
class DuePayment(Item):
    payment_id: int


def payments_due(session: Session) -> list[DuePayment]:
    """Payments not invoiced yet and not in quarantine, oldest first."""
    due = [
        DuePayment(f"{KEY_PREFIX}{p.payment_id}", p.tenant_id, p.payment_id)
        for p in payments_to_invoice(session)
    ]
    return waiting(due, session, KEY_PREFIX)


def invoice_payments(unit: UnitOfWork, now: datetime) -> list[str]:
    """Issues what is due for every payment not invoiced yet, each in its own transaction;
    returns the numbers issued."""
    with unit() as session:
        due = payments_due(session)
    return process_items(unit, due, lambda session, item: invoice_payment(session, item, now), now)


def invoice_payment(session: Session, item: DuePayment, now: datetime) -> str | None:
    """Issues the document for one payment; None if another worker holds or did it."""
    payment = next(iter(payments_to_invoice(session, only=item.payment_id)), None)
    if payment is None:
        return None
    if payment.currency != "EUR":
        raise Mismatch(f"payment in {payment.currency}: our invoices are in EUR")
    if payment.kind is PaymentKind.SALE:
        number = _invoice_sale(session, payment).number
    else:
        number = _credit_refund(session, payment).number
    mark_invoiced(session, payment.payment_id, number, now)
    return number


def _invoice_sale(session: Session, payment: PaymentToInvoice) -> Invoice:
    """The month of subscription the sale paid for, for the amount PayPal collected."""
    tenant = session.get_one(Tenant, payment.tenant_id)
    client = replace(
        check_client(client_from_tenant(tenant)), email=client_email(session, tenant.id)
    )
    vat = treatment(client)
    subscription = session.scalars(
        select(Subscription).where(
            Subscription.paypal_subscription_id == payment.paypal_subscription_id
        )
    ).one()
    if subscription.price_ht_cents is None or subscription.tax_percent is None:
        raise Mismatch(
            f"subscription {subscription.paypal_subscription_id} has no recorded price: "
            "check the sale against its PayPal plan, then invoice it by hand"
        )
    if subscription.tax_percent != vat.rate:
        raise Mismatch(
            f"subscription {subscription.paypal_subscription_id} adds {subscription.tax_percent} "
            f"% VAT but the client's VAT regime ({vat.regime.value}) is {vat.rate} %: the "
            "client must subscribe again on the right PayPal plan, and this sale be refunded "
            "or invoiced by hand"
        )
    plan = session.scalars(select(Plan).where(Plan.code == payment.plan_code)).one()
    start = paris_day(payment.occurred_at)
    period = (start, _one_month_later(start) - timedelta(days=1))
    description = f"Abonnement fta {plan.name}, du {period[0]:%d/%m/%Y} au {period[1]:%d/%m/%Y}"
    line = _month_line(description, subscription.price_ht_cents)
    expected = compute([line], vat.rate).ttc_cents
    upcoming = subscription.next_price_ht_cents
    if payment.amount_cents != expected and upcoming is not None:
        # The operator's new price, which PayPal now charges: it is the price from here on.
        repriced = _month_line(description, upcoming)
        if payment.amount_cents == compute([repriced], vat.rate).ttc_cents:
            line, expected = repriced, payment.amount_cents
            subscription.price_ht_cents = upcoming
            subscription.next_price_ht_cents = subscription.next_price_from = None
    if payment.amount_cents != expected:
        raise Mismatch(
            f"PayPal collected {euros(payment.amount_cents)} on sale {payment.sale_id}, but the "
            f"subscription's price {euros(subscription.price_ht_cents)} HT with {vat.rate} % "
            f"VAT is {euros(expected)}"
        )
    return issue_invoice(
        session,
        tenant_id=tenant.id,
        lines=[line],
        period=period,
        client=client,
        payment_ref=payment.sale_id,
        paid_on=start,
    )


def _month_line(description: str, price_ht_cents: int) -> Line:
    return Line(
        description=description, quantity=Decimal(1), unit_price_ht=Decimal(price_ht_cents) / 100
    )


def _credit_refund(session: Session, payment: PaymentToInvoice) -> Invoice:
    """A credit note against the sale's invoice for exactly what PayPal gave back: all of
    the invoice for a full refund, else the refunded amount including tax."""
    invoice = session.scalars(
        select(Invoice).where(Invoice.kind == "invoice", Invoice.payment_ref == payment.sale_id)
    ).first()
    if invoice is None:
        raise Invalid(f"the sale {payment.sale_id} has no invoice yet")
    own = session.get_one(Payment, payment.payment_id)
    what = "Remboursement" if payment.kind is PaymentKind.REFUND else "Paiement contesté"
    reason = f"{what} PayPal {own.paypal_id} de la facture {invoice.number}"
    full = payment.amount_cents == invoice.total_ttc_cents
    return issue_credit_note(
        session,
        invoice_id=invoice.id,
        reason=reason,
        refunded_ttc_cents=None if full else payment.amount_cents,
        payment_ref=f"{payment.kind.value}:{own.paypal_id}",
    )


def _one_month_later(day: date) -> date:
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))
