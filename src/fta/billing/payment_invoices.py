"""Our invoices for what PayPal collected: one invoice per subscription payment, one credit
note per refund or reversal of it.

Run by the worker's billing round. Each payment is handled in a savepoint of its own, so one
that cannot be invoiced yet (the client's billing identity is incomplete, the seller's is not
configured) waits for a later round without holding the others back. Issuing is idempotent
by PayPal id (`payment_ref`), so a round that stops half-way never invoices twice.
"""

from __future__ import annotations

import calendar
import logging
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from fta.accounts.models import Tenant
from fta.billing.invoices.identity import client_from_tenant
from fta.billing.invoices.models import Invoice
from fta.billing.invoices.money import Line
from fta.billing.invoices.service import issue_credit_note, issue_invoice
from fta.billing.paypal.models import Payment, PaymentKind
from fta.billing.paypal.payments import PaymentToInvoice, mark_invoiced, payments_to_invoice
from fta.errors import Invalid
from fta.plans.models import Plan

log = logging.getLogger(__name__)

FOUR_PLACES = Decimal("0.0001")


def invoice_payments(session: Session, now: datetime) -> list[str]:
    """Issues what is due for every payment not invoiced yet; returns the numbers issued."""
    issued = []
    for payment in payments_to_invoice(session):
        try:
            with session.begin_nested():
                number = _document_for(session, payment)
                mark_invoiced(session, payment.payment_id, number, now)
        except Invalid as error:
            log.warning("payment %s not invoiced yet: %s", payment.payment_id, error)
            continue
        issued.append(number)
    return issued


def _document_for(session: Session, payment: PaymentToInvoice) -> str:
    if payment.currency != "EUR":
        raise Invalid(f"payment in {payment.currency}: our invoices are in EUR")
    if payment.kind is PaymentKind.SALE:
        return _invoice_sale(session, payment).number
    return _credit_refund(session, payment).number


def _invoice_sale(session: Session, payment: PaymentToInvoice) -> Invoice:
    """The month of subscription the sale paid for, at the plan's price excluding tax: what
    PayPal collected is that price with French VAT, as the catalog sync set it."""
    tenant = session.get_one(Tenant, payment.tenant_id)
    plan = session.scalars(select(Plan).where(Plan.code == payment.plan_code)).one()
    start = payment.occurred_at.date()
    period = (start, _one_month_later(start) - timedelta(days=1))
    line = Line(
        description=f"Abonnement fta {plan.name}, du {period[0]:%d/%m/%Y} au {period[1]:%d/%m/%Y}",
        quantity=Decimal(1),
        unit_price_ht=Decimal(plan.price_ht_cents) / 100,
    )
    return issue_invoice(
        session,
        tenant_id=tenant.id,
        lines=[line],
        period=period,
        client=client_from_tenant(tenant),
        payment_ref=payment.sale_id,
    )


def _credit_refund(session: Session, payment: PaymentToInvoice) -> Invoice:
    """A credit note against the sale's invoice: all of it for a full refund, else one line
    whose amount excluding tax is the refunded amount at the invoice's VAT rate."""
    invoice = session.scalars(
        select(Invoice).where(Invoice.kind == "invoice", Invoice.payment_ref == payment.sale_id)
    ).first()
    if invoice is None:
        raise Invalid(f"the sale {payment.sale_id} has no invoice yet")
    own = session.get_one(Payment, payment.payment_id)
    what = "Remboursement" if payment.kind is PaymentKind.REFUND else "Paiement contesté"
    reason = f"{what} PayPal {own.paypal_id} de la facture {invoice.number}"
    lines = None
    if payment.amount_cents != invoice.total_ttc_cents:
        ht = (Decimal(payment.amount_cents) / 100 / (1 + invoice.vat_rate / 100)).quantize(
            FOUR_PLACES, rounding=ROUND_HALF_UP
        )
        lines = [Line(description=reason, quantity=Decimal(1), unit_price_ht=ht)]
    return issue_credit_note(
        session,
        invoice_id=invoice.id,
        reason=reason,
        lines=lines,
        payment_ref=f"{payment.kind.value}:{own.paypal_id}",
    )


def _one_month_later(day: date) -> date:
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))
