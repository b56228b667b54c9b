"""Collecting billed overage through PayPal: a PayPal invoice carrying our number, sent to the
client, then followed until the client pays it.

Run by the worker's billing round after `fta.billing.usage_bills` issued our invoices. The
PayPal side (Invoicing v2: a draft, then sent) is retried at later rounds until it succeeds;
its request ids make a retry create nothing twice.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from fta.accounts.models import User
from fta.billing.invoices.models import Invoice
from fta.billing.models import UsageBill
from fta.billing.paypal import PayPal
from fta.billing.paypal.client import (
    InvoiceLine,
    PayPalError,
    PayPalUnavailable,
    draft_invoice_body,
)

log = logging.getLogger(__name__)


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
