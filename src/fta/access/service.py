"""May this account start a job or a bot now: its billing state, its free trial's allowance,
its plan's bounds on the job pool. Every domain that starts work asks here; the billing state
itself moves in fta.billing.account_states."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fta.access.models import UsageEvent
from fta.access.quotas import quotas
from fta.accounts.models import BillingStatus, Tenant
from fta.errors import DomainError
from fta.settings import get_settings

PAY_AT = "/api/v1/billing/subscription"


class PaymentRequired(DomainError):
    status = 402
    title = "Payment required"


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


def job_bounds(session: Session, tenant: Tenant, now: datetime) -> JobBounds:
    """The plan's bounds (or an operator's override of them); tighter during a free trial,
    since anyone can open one."""
    plan = quotas(session, tenant, now)
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
