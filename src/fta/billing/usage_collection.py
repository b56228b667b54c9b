"""Collecting billed overage through PayPal: a PayPal invoice carrying our number, sent to the
client, then followed until the client pays it.

Run by the worker's billing round after `fta.billing.usage_bills` issued our invoices, each
step in its own transaction. Bills are sent oldest first, each on its own: one PayPal
refuses (a bad recipient, say) gets a blocking billing alert, which keeps it out of later
rounds until an operator resolves it, and the others still go; a PayPal outage ends the step
for this round. Request ids make a retried bill create nothing twice. Unpaid bills are asked
about the least recently asked first, a bounded number per round, so every one is looked at
in turn however many stay unpaid.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from fta.billing.alerts.service import quarantined_keys, raise_alert
from fta.billing.invoices.models import Invoice
from fta.billing.models import UsageBill
from fta.billing.payment_issues import client_email
from fta.billing.paypal import PayPal
from fta.billing.paypal.client import (
    InvoiceLine,
    PayPalError,
    PayPalUnavailable,
    draft_invoice_body,
)
from fta.billing.subscriptions import settle_account

log = logging.getLogger(__name__)

ALERT_PREFIX = "usage-bill:"


def alert_key(bill: UsageBill) -> str:
    return f"{ALERT_PREFIX}{bill.tenant_id}:{bill.period}"


class _Outage(Exception):
    """PayPal is down or failing on its side: stop for this round."""


def _refused(error: PayPalError) -> bool:
    """PayPal refused this request itself (4xx): retrying it unchanged cannot help."""
    return 400 <= error.http_status < 500


def send_usage_bills(session: Session, paypal: PayPal, now: datetime) -> int:
    """Puts every billed month not yet sent on PayPal (draft, then send), the oldest first;
    returns how many were sent."""
    unsent = session.scalars(
        select(UsageBill)
        .where(UsageBill.invoice_id.is_not(None), UsageBill.sent_at.is_(None))
        .order_by(UsageBill.period, UsageBill.created_at, UsageBill.tenant_id)
        .with_for_update(skip_locked=True)
    ).all()
    quarantined = quarantined_keys(session, ALERT_PREFIX)
    sent = 0
    for bill in unsent:
        if alert_key(bill) in quarantined:
            continue
        try:
            _send(session, paypal, bill)
        except _Outage as outage:
            log.warning("usage bills not sent to PayPal this round: %s", outage)
            break
        except PayPalError as error:
            raise_alert(
                session,
                key=alert_key(bill),
                kind="usage_bill_refused",
                message=(
                    f"PayPal refused the usage invoice of {bill.period}: {error.detail}. Fix "
                    "the cause (the client's e-mail address, say), then resolve this alert: "
                    "the next round sends it again."
                ),
                now=now,
                tenant_id=bill.tenant_id,
                blocking=True,
            )
            continue
        bill.sent_at = now
        sent += 1
    return sent


def _send(session: Session, paypal: PayPal, bill: UsageBill) -> None:
    invoice = session.get_one(Invoice, bill.invoice_id)
    email = client_email(session, bill.tenant_id)
    if email is None:
        raise PayPalError("the account has no user, so no e-mail address to send it to", 400)
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
        try:
            paypal.client.send_invoice(
                bill.paypal_invoice_id, request_id=f"fta-usage-send-{invoice.number}"
            )
        except PayPalError as error:
            # Sent by an earlier round whose transaction did not commit: not a refusal.
            if error.http_status != 422 or _status(paypal, bill) == "DRAFT":
                raise
    except PayPalUnavailable as error:
        raise _Outage(str(error)) from error
    except PayPalError as error:
        if not _refused(error):
            raise _Outage(str(error)) from error
        raise


def _status(paypal: PayPal, bill: UsageBill) -> object:
    return paypal.client.get_invoice(str(bill.paypal_invoice_id)).get("status")


PAID_STATUSES = frozenset({"PAID", "MARKED_AS_PAID"})
TRACKED_PER_ROUND = 50


def track_usage_bills(session: Session, paypal: PayPal, now: datetime) -> int:
    """Asks PayPal about sent bills not paid yet, the least recently asked first (a bounded
    number per round); records those it says are paid, on the day it says they were.
    Returns how many became paid."""
    # Quarantined bills are left out of the query, not skipped after it: never checked, they
    # would otherwise stay first in line and take the round's places forever.
    held = [
        tuple(key.removeprefix(ALERT_PREFIX).rsplit(":", 1))
        for key in quarantined_keys(session, ALERT_PREFIX)
    ]
    query = select(UsageBill).where(UsageBill.sent_at.is_not(None), UsageBill.paid_at.is_(None))
    if held:
        query = query.where(tuple_(UsageBill.tenant_id, UsageBill.period).not_in(held))
    unpaid = session.scalars(
        query.order_by(
            UsageBill.last_checked_at.asc().nulls_first(), UsageBill.sent_at, UsageBill.tenant_id
        )
        .limit(TRACKED_PER_ROUND)
        .with_for_update(skip_locked=True)
    ).all()
    paid = 0
    for bill in unpaid:
        try:
            answer = paypal.client.get_invoice(str(bill.paypal_invoice_id))
        except PayPalUnavailable as error:
            log.warning("PayPal invoices not checked this round: %s", error)
            break
        except PayPalError as error:
            if not _refused(error):
                log.warning("PayPal invoices not checked this round: %s", error)
                break
            raise_alert(
                session,
                key=alert_key(bill),
                kind="usage_bill_unknown",
                message=f"PayPal cannot show the usage invoice of {bill.period}: {error.detail}",
                now=now,
                tenant_id=bill.tenant_id,
            )
            bill.last_checked_at = now
            continue
        bill.last_checked_at = now
        if answer.get("status") in PAID_STATUSES:
            bill.paid_at = paid_on(answer) or now
            paid += 1
            # A bill paid may end a grace (or a suspension) it caused.
            settle_account(session, bill.tenant_id, now)
    return paid


def paid_on(invoice: dict[str, Any]) -> datetime | None:
    """When the client paid, from the invoice's payments (the latest one): PayPal gives a
    date and time, or a date only (taken at midnight UTC)."""
    payments = invoice.get("payments")
    transactions = payments.get("transactions") if isinstance(payments, dict) else None
    moments = []
    for transaction in transactions if isinstance(transactions, list) else []:
        if not isinstance(transaction, dict):
            continue
        moment = _moment(transaction.get("payment_date_time"), transaction.get("payment_date"))
        if moment is not None:
            moments.append(moment)
    return max(moments, default=None)


def _moment(date_time: object, day: object) -> datetime | None:
    if isinstance(date_time, str):
        try:
            moment = datetime.fromisoformat(date_time.replace("Z", "+00:00"))
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is not None:
            return moment.astimezone(UTC)
    if isinstance(day, str):
        try:
            return datetime.combine(date.fromisoformat(day[:10]), time(), tzinfo=UTC)
        except ValueError:
            return None
    return None
