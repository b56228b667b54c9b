"""Billing a closed month's overage: our invoice, then a PayPal invoice that collects it.

Run by the worker's billing round, after months close. Each (tenant, month) gets one
`usage_bills` row, in the transaction that issues its invoice (its primary key makes a
second worker's attempt fail): a month without overage is recorded at zero and never looked
at again. The PayPal side (Invoicing v2: a draft carrying our number, then sent to the
client) follows and is retried at later rounds until it succeeds; its request ids make a
retry create nothing twice. Later rounds then ask PayPal whether the client paid it.
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from fta.accounts.models import Tenant, User
from fta.billing.access import BillingStatus
from fta.billing.invoices.identity import client_from_tenant
from fta.billing.invoices.models import Invoice
from fta.billing.invoices.money import Line
from fta.billing.invoices.service import issue_invoice
from fta.billing.metering import usage_summary
from fta.billing.models import UsageBill, UsagePeriod
from fta.billing.paypal import PayPal
from fta.billing.paypal.client import (
    InvoiceLine,
    PayPalError,
    PayPalUnavailable,
    draft_invoice_body,
)
from fta.billing.periods import period_end, period_start
from fta.errors import Invalid

log = logging.getLogger(__name__)

HUNDRED = Decimal(100)


def bill_closed_months(session: Session, now: datetime) -> list[str]:
    """Issues an invoice for every closed month with overage not billed yet (trial months
    excepted: the trial's allowance is all it gets); returns the numbers issued."""
    due = session.execute(
        select(UsagePeriod.tenant_id, UsagePeriod.period)
        .outerjoin(
            UsageBill,
            (UsageBill.tenant_id == UsagePeriod.tenant_id)
            & (UsageBill.period == UsagePeriod.period),
        )
        .where(UsagePeriod.closed_at.is_not(None), UsageBill.tenant_id.is_(None))
        .order_by(UsagePeriod.period, UsagePeriod.tenant_id)
    ).all()
    issued = []
    for tenant_id, period in due:
        try:
            with session.begin_nested():
                number = _bill(session, session.get_one(Tenant, tenant_id), period, now)
        except Invalid as error:
            log.warning("usage of %s for %s not billed yet: %s", tenant_id, period, error)
            continue
        if number:
            issued.append(number)
    return issued


def _bill(session: Session, tenant: Tenant, period: str, now: datetime) -> str | None:
    summary = usage_summary(session, tenant, period, now)
    amount = summary.overage.amount_eur
    if amount <= 0 or tenant.billing_status == BillingStatus.TRIALING:
        session.add(UsageBill(tenant_id=tenant.id, period=period, amount_ht_cents=0))
        return None
    over = summary.overage
    line = Line(
        description=(
            f"Consommation au-delà du forfait {summary.plan.name}, {period} : "
            f"{over.cpu_hours:.2f} h CPU, {over.ram_gb_hours:.2f} Go·h de RAM, "
            f"{over.job_minutes:.0f} min de tâches"
        ),
        quantity=Decimal(1),
        unit_price_ht=amount,
    )
    invoice = issue_invoice(
        session,
        tenant_id=tenant.id,
        lines=[line],
        period=(period_start(period).date(), period_end(period).date()),
        client=client_from_tenant(tenant),
    )
    session.add(
        UsageBill(
            tenant_id=tenant.id,
            period=period,
            amount_ht_cents=int(amount * HUNDRED),
            invoice_id=invoice.id,
        )
    )
    return invoice.number


def send_usage_bills(session: Session, paypal: PayPal, now: datetime) -> int:
    """Puts every billed month not yet sent on PayPal (draft, then send); returns how many
    were sent. A PayPal failure leaves the rest for the next round."""
    unsent = session.scalars(
        select(UsageBill)
        .where(UsageBill.invoice_id.is_not(None), UsageBill.sent_at.is_(None))
        .with_for_update(skip_locked=True)
    ).all()
    sent = 0
    for bill in unsent:
        invoice = session.get_one(Invoice, bill.invoice_id)
        email = session.scalars(
            select(User.email).where(User.tenant_id == bill.tenant_id).order_by(User.created_at)
        ).first()
        if email is None:
            continue
        body = draft_invoice_body(
            number=invoice.number,
            recipient_email=email,
            lines=[
                InvoiceLine(
                    name=line.description,
                    quantity=line.quantity,
                    unit_amount=line.unit_price_ht,
                    tax_percent=line.vat_rate,
                )
                for line in invoice.lines
            ],
            note=f"Facture {invoice.number} : consommation de {bill.period}",
        )
        try:
            if bill.paypal_invoice_id is None:
                bill.paypal_invoice_id = paypal.client.create_draft_invoice(
                    body, request_id=f"fta-usage-{invoice.number}"
                )
            paypal.client.send_invoice(
                bill.paypal_invoice_id, request_id=f"fta-usage-send-{invoice.number}"
            )
        except (PayPalUnavailable, PayPalError) as error:
            log.warning("usage invoice %s not sent to PayPal yet: %s", invoice.number, error)
            break
        bill.sent_at = now
        sent += 1
    return sent


PAID_STATUSES = frozenset({"PAID", "MARKED_AS_PAID"})
TRACKED_PER_ROUND = 50


def track_usage_bills(session: Session, paypal: PayPal, now: datetime) -> int:
    """Asks PayPal about sent bills not paid yet (the oldest first, a bounded number per
    round); records those it says are paid. Returns how many became paid."""
    unpaid = session.scalars(
        select(UsageBill)
        .where(UsageBill.sent_at.is_not(None), UsageBill.paid_at.is_(None))
        .order_by(UsageBill.sent_at)
        .limit(TRACKED_PER_ROUND)
        .with_for_update(skip_locked=True)
    ).all()
    paid = 0
    for bill in unpaid:
        try:
            status = paypal.client.get_invoice(str(bill.paypal_invoice_id)).get("status")
        except (PayPalUnavailable, PayPalError) as error:
            log.warning("PayPal invoice %s not checked: %s", bill.paypal_invoice_id, error)
            break
        if status in PAID_STATUSES:
            bill.paid_at = now
            paid += 1
    return paid
