"""The billing state machine: how payments, invoices and time move an account's billing state
(who may then start jobs and bots is fta.access.service).

trialing ──(trial over, CPU-hours or job hours used)──▶ no start; suspended at its end
active ──(payment failed or denied, usage invoice overdue)──▶ past_due (grace)
past_due ──(grace over)──▶ suspended
active ──(subscription cancelled)──▶ active until the period paid ends ──▶ cancelled
any ──(payment or reactivation)──▶ active;  cancelled: no start, bots stopped, data kept

A suspended or cancelled account has `Tenant.status` suspended too: the worker claims none of
its queued jobs and stops its bots. Its users can still log in, to pay.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from fta import audit
from fta.accounts.models import BLOCKED, CLOSED, BillingStatus, Tenant, TenantStatus
from fta.billing.invoices.models import Invoice
from fta.billing.models import UsageBill
from fta.billing.paypal.models import Subscription, SubscriptionStatus
from fta.settings import get_settings


def apply_billing_state(
    session: Session, tenant: Tenant, status: BillingStatus, now: datetime
) -> bool:
    """Moves the account to `status` (from a payment event or the periodic check); returns
    whether anything changed. Idempotent: a repeated failure does not extend the grace."""
    if status is BillingStatus.TRIALING:
        raise ValueError("a trial starts at sign-up only")
    session.execute(select(Tenant.id).where(Tenant.id == tenant.id).with_for_update())
    session.refresh(tenant)
    if tenant.status in CLOSED:
        return False  # a deleted account: nothing more to allow or cut off
    before = (tenant.billing_status, tenant.status, tenant.grace_until)
    current = BillingStatus(tenant.billing_status)
    if status is BillingStatus.ACTIVE:
        tenant.grace_until = None
        # A payment lifts what billing suspended, never an operator's suspension.
        if (
            current in BLOCKED
            and tenant.status == TenantStatus.SUSPENDED
            and tenant.suspension_reason is None
        ):
            tenant.status = TenantStatus.ACTIVE
    elif status is BillingStatus.PAST_DUE:
        if current in BLOCKED:
            return False  # no fresh grace for an account already cut off
        if current is not BillingStatus.PAST_DUE or tenant.grace_until is None:
            tenant.grace_until = now + timedelta(days=get_settings().grace_days)
    else:
        tenant.status = TenantStatus.SUSPENDED
    tenant.billing_status = status
    changed = before != (tenant.billing_status, tenant.status, tenant.grace_until)
    if changed:
        audit.service.record(
            session, actor="billing", tenant_id=tenant.id, action=f"billing.{status.value}"
        )
    return changed


def overdue_usage_bills(now: datetime) -> Any:
    """Tenants with a usage invoice sent through PayPal, unpaid past its due date (a
    subquery of tenant ids)."""
    return (
        select(UsageBill.tenant_id)
        .join(Invoice, Invoice.id == UsageBill.invoice_id)
        .where(
            UsageBill.sent_at.is_not(None),
            UsageBill.paid_at.is_(None),
            Invoice.due_on < now.date(),
        )
    )


def has_overdue_usage_bill(session: Session, tenant_id: str, now: datetime) -> bool:
    overdue = overdue_usage_bills(now).where(UsageBill.tenant_id == tenant_id).limit(1)
    return session.scalar(overdue) is not None


def _paid_periods_over(now: datetime) -> Any:
    """Accounts whose cancelled subscriptions' paid periods are all over, and which hold no
    live subscription (a query of tenants)."""
    ended = select(Subscription.tenant_id).where(
        Subscription.status == SubscriptionStatus.CANCELLED, Subscription.paid_through <= now
    )
    live = select(Subscription.tenant_id).where(
        or_(
            Subscription.status.in_([SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE]),
            Subscription.paid_through > now,
        )
    )
    return select(Tenant).where(
        Tenant.billing_status.in_([BillingStatus.ACTIVE, BillingStatus.PAST_DUE]),
        Tenant.id.in_(ended),
        Tenant.id.not_in(live),
    )


def advance_billing_states(session: Session, now: datetime) -> list[str]:
    """Moves accounts along with time: a cancelled subscription's paid period over →
    cancelled; a usage invoice unpaid past its due date → past due (a grace, like a failed
    payment); a trial or grace over → suspended. Returns the ids of the accounts cut off."""
    cut_off = []
    for tenant in session.scalars(_paid_periods_over(now).order_by(Tenant.id)).all():
        apply_billing_state(session, tenant, BillingStatus.CANCELLED, now)
        cut_off.append(tenant.id)
    overdue = session.scalars(
        select(Tenant)
        .where(
            Tenant.billing_status == BillingStatus.ACTIVE,
            Tenant.id.in_(overdue_usage_bills(now)),
        )
        .order_by(Tenant.id)
    ).all()
    for tenant in overdue:
        apply_billing_state(session, tenant, BillingStatus.PAST_DUE, now)
    expired = session.scalars(
        select(Tenant)
        .where(
            or_(
                (Tenant.billing_status == BillingStatus.TRIALING) & (Tenant.trial_ends_at <= now),
                (Tenant.billing_status == BillingStatus.PAST_DUE) & (Tenant.grace_until <= now),
            )
        )
        .order_by(Tenant.id)
    ).all()
    for tenant in expired:
        apply_billing_state(session, tenant, BillingStatus.SUSPENDED, now)
    return cut_off + [tenant.id for tenant in expired]
