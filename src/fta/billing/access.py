"""Access follows payment: who may start jobs and bots, and the billing state machine.

trialing ──(trial over, CPU-hours or job hours used)──▶ no start; suspended at its end
active ──(payment failed or denied, usage invoice overdue)──▶ past_due (grace)
past_due ──(grace over)──▶ suspended
active ──(subscription cancelled)──▶ active until the period paid ends ──▶ cancelled
any ──(payment or reactivation)──▶ active;  cancelled: no start, bots stopped, data kept

A suspended or cancelled account has `Tenant.status` suspended too: the worker claims none of
its queued jobs and stops its bots. Its users can still log in, to pay.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from fta import audit
from fta.accounts.models import Tenant, TenantStatus
from fta.billing.invoices.models import Invoice
from fta.billing.models import UsageBill, UsageEvent
from fta.billing.paypal.models import Subscription, SubscriptionStatus
from fta.errors import DomainError
from fta.settings import get_settings

PAY_AT = "/api/v1/billing/subscription"


class BillingStatus(StrEnum):
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    SUSPENDED = "suspended"
    CANCELLED = "cancelled"


# Billing states in which the account itself is suspended (bots stopped, no job claimed).
BLOCKED = frozenset({BillingStatus.SUSPENDED, BillingStatus.CANCELLED})


class PaymentRequired(DomainError):
    status = 402
    title = "Payment required"


def trial_end(now: datetime) -> datetime:
    return now + timedelta(days=get_settings().trial_days)


def _hours_used(session: Session, tenant_id: str, seconds_column: Any, *where: Any) -> Decimal:
    seconds = session.scalar(
        select(func.coalesce(func.sum(seconds_column), 0)).where(
            UsageEvent.tenant_id == tenant_id, *where
        )
    )
    return Decimal(seconds or 0) / 3600


def trial_cpu_hours_used(session: Session, tenant_id: str) -> Decimal:
    return _hours_used(session, tenant_id, UsageEvent.cpu_seconds)


def trial_job_hours_used(session: Session, tenant_id: str) -> Decimal:
    """Wall-time hours the account's jobs ran: a job that sleeps holds a slot all the same."""
    return _hours_used(
        session, tenant_id, UsageEvent.running_seconds, UsageEvent.subject_kind == "job"
    )


@dataclass(frozen=True)
class JobBounds:
    """How much of the job pool an account may take: jobs at once, jobs waiting, and one
    job's wall-time limit in seconds."""

    concurrent: int
    queued: int
    max_seconds: int
    trial: bool

    @property
    def whose(self) -> str:
        """Whose limit these are, as an error message names them."""
        return "your free trial's" if self.trial else "your plan's"


def job_bounds(tenant: Tenant) -> JobBounds:
    """The plan's bounds; tighter during a free trial, since anyone can open one."""
    plan = tenant.plan
    if tenant.billing_status != BillingStatus.TRIALING:
        return JobBounds(
            plan.max_concurrent_jobs, plan.max_queued_jobs, plan.max_job_seconds, trial=False
        )
    settings = get_settings()
    return JobBounds(
        min(plan.max_concurrent_jobs, settings.trial_max_concurrent_jobs),
        min(plan.max_queued_jobs, settings.trial_max_queued_jobs),
        min(plan.max_job_seconds, settings.trial_max_job_seconds),
        trial=True,
    )


def _day(moment: datetime | None) -> str:
    return moment.date().isoformat() if moment else "an earlier date"


def can_start(session: Session, tenant: Tenant, now: datetime) -> PaymentRequired | None:
    """None when the account may start a job or a bot now; otherwise the refusal, which
    says why and where to pay."""
    status = BillingStatus(tenant.billing_status)
    pay = f"subscribe to a plan at {PAY_AT}"
    if status is BillingStatus.ACTIVE:
        return None
    if status is BillingStatus.TRIALING:
        if tenant.trial_ends_at is not None and tenant.trial_ends_at <= now:
            return PaymentRequired(
                f"your free trial ended on {_day(tenant.trial_ends_at)}: {pay} to start jobs "
                "and bots again (your strategies and results are kept)"
            )
        allowance = get_settings().trial_cpu_hours
        if trial_cpu_hours_used(session, tenant.id) >= allowance:
            return PaymentRequired(
                f"your free trial's {allowance} CPU-hours are used up: {pay} to start jobs "
                "and bots again"
            )
        job_hours = get_settings().trial_job_hours
        if trial_job_hours_used(session, tenant.id) >= job_hours:
            return PaymentRequired(
                f"your free trial's {job_hours} hours of job time are used up: {pay} to start "
                "jobs and bots again"
            )
        return None
    if status is BillingStatus.PAST_DUE:
        if tenant.grace_until is not None and tenant.grace_until > now:
            return None
        return PaymentRequired(
            "a payment is overdue (a failed subscription payment or an unpaid usage invoice)"
            f" and the grace period ended on {_day(tenant.grace_until)}: pay at {PAY_AT}"
            " or /api/v1/invoices"
        )
    if status is BillingStatus.CANCELLED:
        return PaymentRequired(f"your subscription is cancelled: {pay} to start jobs and bots")
    cause = (
        f"the payment grace period ended on {_day(tenant.grace_until)}"
        if tenant.grace_until is not None
        else f"the free trial ended on {_day(tenant.trial_ends_at)}"
    )
    return PaymentRequired(
        f"this account is suspended for lack of payment ({cause}): {pay} to restore access; "
        "your data is kept"
    )


def require_start(session: Session, tenant: Tenant, now: datetime) -> None:
    refusal = can_start(session, tenant, now)
    if refusal is not None:
        raise refusal


def apply_billing_state(
    session: Session, tenant: Tenant, status: BillingStatus, now: datetime
) -> bool:
    """Moves the account to `status` (from a payment event or the periodic check); returns
    whether anything changed. Idempotent: a repeated failure does not extend the grace."""
    if status is BillingStatus.TRIALING:
        raise ValueError("a trial starts at sign-up only")
    session.execute(select(Tenant.id).where(Tenant.id == tenant.id).with_for_update())
    session.refresh(tenant)
    before = (tenant.billing_status, tenant.status, tenant.grace_until)
    current = BillingStatus(tenant.billing_status)
    if status is BillingStatus.ACTIVE:
        tenant.grace_until = None
        if current in BLOCKED and tenant.status == TenantStatus.SUSPENDED:
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
