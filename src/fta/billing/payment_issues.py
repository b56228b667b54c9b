"""Payments that did not simply go through, as PayPal's webhooks describe them: a subscription
sale PayPal holds (pending) or denied, and disputes a buyer opens about a sale.

Each is recorded once per sale or dispute (its latest state kept), the client is told by
e-mail, and a dispute raises an operator alert. What a denied sale does to access is decided
in `fta.billing.subscriptions` (past due, like a failed payment); a pending sale and a
dispute change no access (docs/billing.md, payment problems).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fta.accounts.models import User
from fta.billing.alerts.service import raise_alert
from fta.billing.paypal.models import (
    Payment,
    PaymentIssue,
    PaymentIssueKind,
    PaymentKind,
    Subscription,
)
from fta.billing.paypal.payments import MalformedResource
from fta.mail import service as mail

PAY_AT = "/api/v1/billing/subscription"
MAX_CENTS = 10**11


def _text(value: object, size: int) -> str | None:
    return value[:size] if isinstance(value, str) and value else None


def _time(resource: dict[str, Any], *keys: str) -> datetime | None:
    for key in keys:
        value = resource.get(key)
        if isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            if moment.tzinfo is not None:
                return moment
    return None


def _money(value: object, currency: object) -> tuple[int | None, str | None]:
    """Cents and currency, or (None, None) when PayPal's amount is missing or odd: an
    issue is still worth recording without it."""
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None, None
    cents = abs(amount) * 100
    if not cents.is_finite() or cents != cents.to_integral_value() or cents >= MAX_CENTS:
        return None, None
    code = currency if isinstance(currency, str) and len(currency) == 3 else None
    return int(cents), code.upper() if code else None


def _shown(cents: int | None, currency: str | None) -> str:
    if cents is None:
        return "a payment"
    return f"a payment of {Decimal(cents) / 100:.2f} {currency or ''}".rstrip()


def client_email(session: Session, tenant_id: str) -> str | None:
    """Where the account's billing mail goes: its first user."""
    return session.scalars(
        select(User.email).where(User.tenant_id == tenant_id).order_by(User.created_at)
    ).first()


def _tell(session: Session, tenant_id: str | None, subject: str, body: str) -> None:
    address = client_email(session, tenant_id) if tenant_id else None
    if address is not None:
        mail.queue(session, to=address, subject=subject, body=body)


def _issue(session: Session, kind: PaymentIssueKind, paypal_id: str) -> PaymentIssue | None:
    return session.scalars(
        select(PaymentIssue)
        .where(PaymentIssue.kind == kind, PaymentIssue.paypal_id == paypal_id)
        .with_for_update()
    ).first()


def record_sale_issue(
    session: Session, subscription: Subscription, state: str, resource: dict[str, Any]
) -> PaymentIssue | None:
    """A subscription sale PayPal reports pending or denied. Returns the issue when it is
    news (recorded now, the client mailed); None when already known, or when the sale
    completed meanwhile (webhooks come in any order)."""
    sale_id = _text(resource.get("id"), 64)
    if sale_id is None:
        raise MalformedResource("resource.id is missing")
    occurred = _time(resource, "create_time", "update_time")
    if occurred is None:
        raise MalformedResource("resource has no valid create_time")
    completed = session.scalar(
        select(Payment.id).where(Payment.kind == PaymentKind.SALE, Payment.paypal_id == sale_id)
    )
    issue = _issue(session, PaymentIssueKind.SALE, sale_id)
    if completed is not None or (issue is not None and issue.status in ("denied", "completed")):
        return None  # denied and completed are final; pending never overrides them
    amount = resource.get("amount")
    cents, currency = (
        _money(amount.get("total"), amount.get("currency"))
        if isinstance(amount, dict)
        else (None, None)
    )
    reason = _text(resource.get("reason_code"), 255)
    if issue is None:
        issue = PaymentIssue(
            kind=PaymentIssueKind.SALE,
            paypal_id=sale_id,
            paypal_subscription_id=subscription.paypal_subscription_id,
            tenant_id=subscription.tenant_id,
            occurred_at=occurred,
        )
        session.add(issue)
    issue.status, issue.detail = state, reason
    issue.updated_at = _time(resource, "update_time", "create_time") or occurred
    issue.amount_cents, issue.currency = cents, currency
    session.flush()
    what = _shown(cents, currency)
    if state == "denied":
        _tell(
            session,
            subscription.tenant_id,
            "fta: your subscription payment was denied",
            f"PayPal denied {what} for your fta subscription (transaction {sale_id}). "
            "Jobs and bots keep running during a grace period; please update your payment "
            f"method on PayPal, or subscribe again at {PAY_AT}, before it ends.",
        )
    else:
        _tell(
            session,
            subscription.tenant_id,
            "fta: your subscription payment is pending at PayPal",
            f"PayPal holds {what} for your fta subscription as pending (transaction "
            f"{sale_id}{', reason ' + reason if reason else ''}). Nothing changes for your "
            "account meanwhile; if PayPal denies it, you will be told.",
        )
    return issue


def sale_completed(session: Session, sale_id: str) -> None:
    """A sale that was pending went through."""
    issue = _issue(session, PaymentIssueKind.SALE, sale_id)
    if issue is not None and issue.status == "pending":
        issue.status = "completed"


def _disputed_sale(resource: dict[str, Any]) -> str | None:
    transactions = resource.get("disputed_transactions")
    if isinstance(transactions, list):
        for transaction in transactions:
            if isinstance(transaction, dict):
                sale_id = _text(transaction.get("seller_transaction_id"), 64)
                if sale_id:
                    return sale_id
    return None


def record_dispute(
    session: Session, event_type: str, resource: dict[str, Any], now: datetime
) -> PaymentIssue:
    """A dispute opened, updated or resolved: its latest state recorded (an older update
    arriving late changes nothing), an operator alert raised, the client mailed when it
    opens and when it is resolved."""
    dispute_id = _text(resource.get("dispute_id"), 64)
    if dispute_id is None:
        raise MalformedResource("resource.dispute_id is missing")
    created = _time(resource, "create_time") or now
    updated = _time(resource, "update_time", "create_time") or now
    sale_id = _disputed_sale(resource)
    owner = (
        session.execute(
            select(Subscription.tenant_id, Subscription.paypal_subscription_id)
            .join(Payment, Payment.paypal_subscription_id == Subscription.paypal_subscription_id)
            .where(Payment.kind == PaymentKind.SALE, Payment.paypal_id == sale_id)
        ).first()
        if sale_id
        else None
    )
    tenant_id, subscription_id = (owner[0], owner[1]) if owner else (None, None)
    status = _text(resource.get("status"), 32) or "OPEN"
    outcome = resource.get("dispute_outcome")
    outcome_code = _text(outcome.get("outcome_code"), 64) if isinstance(outcome, dict) else None
    detail = " ".join(
        part
        for part in (
            _text(resource.get("reason"), 80),
            _text(resource.get("dispute_life_cycle_stage"), 40),
            outcome_code,
        )
        if part
    )
    amount = resource.get("dispute_amount")
    cents, currency = (
        _money(amount.get("value"), amount.get("currency_code"))
        if isinstance(amount, dict)
        else (None, None)
    )
    issue = _issue(session, PaymentIssueKind.DISPUTE, dispute_id)
    if issue is None:
        issue = PaymentIssue(
            kind=PaymentIssueKind.DISPUTE,
            paypal_id=dispute_id,
            occurred_at=created,
            updated_at=updated,
            status=status,
        )
        session.add(issue)
    elif updated < issue.updated_at:
        return issue  # an older state delivered late
    issue.sale_id, issue.paypal_subscription_id = sale_id, subscription_id
    issue.tenant_id, issue.status, issue.detail = tenant_id, status, detail[:255] or None
    issue.amount_cents, issue.currency, issue.updated_at = cents, currency, updated
    session.flush()
    what = _shown(cents, currency)
    raise_alert(
        session,
        key=f"dispute:{dispute_id}",
        kind="dispute",
        message=(
            f"PayPal dispute {dispute_id} about {what} (sale {sale_id or 'unknown'}): "
            f"{status}{', ' + detail if detail else ''}. Answer it in PayPal's resolution "
            "center; a lost dispute comes back as a reversal, which the round credits."
        ),
        now=now,
        tenant_id=tenant_id,
    )
    if event_type == "CUSTOMER.DISPUTE.CREATED":
        _tell(
            session,
            tenant_id,
            "fta: a PayPal dispute was opened about your payment",
            f"A dispute (PayPal case {dispute_id}) was opened about {what} to fta. We will "
            "answer it through PayPal; your account is unchanged meanwhile. Reply to this "
            "mail if it was opened by mistake.",
        )
    elif event_type == "CUSTOMER.DISPUTE.RESOLVED":
        _tell(
            session,
            tenant_id,
            "fta: your PayPal dispute is closed",
            f"The dispute (PayPal case {dispute_id}) about {what} to fta is closed"
            f"{' (' + outcome_code + ')' if outcome_code else ''}. Any refund PayPal makes "
            "is credited on your invoices.",
        )
    return issue
