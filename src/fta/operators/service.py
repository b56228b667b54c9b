"""An operator's view of clients' accounts and actions on them: find an account, look it over
(usage, subscription, bots, jobs, invoices), suspend it with a reason its client is shown,
lift the suspension. Each change goes in the account's audit chain with the operator's id."""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from fta import audit
from fta.access.disks import disk_usage
from fta.access.models import QuotaOverride, TenantDiskUsage
from fta.access.periods import period_of
from fta.access.quotas import OVERRIDABLE, Quotas, override_in_force, quotas
from fta.access.usage import UsageSummary, usage_summary
from fta.accounts.models import BLOCKED, CLOSED, Tenant, TenantStatus, User
from fta.accounts.service import Principal
from fta.billing.invoices.models import Invoice
from fta.billing.invoices.service import list_invoices
from fta.billing.paypal.models import Subscription
from fta.billing.subscriptions import list_subscriptions
from fta.bots import service as bots
from fta.bots.models import Bot
from fta.bots.service import list_bots
from fta.errors import Conflict, Invalid, NotFound
from fta.jobs import service as jobs
from fta.jobs.models import Job
from fta.plans.models import Plan

REASON_MAX = 500
# An override is temporary: a lasting change is a plan of its own.
OVERRIDE_LONGEST = timedelta(days=366)
# What an override may grant, as a plan's edit may (fta.access.api.PlanPatch), each within
# what a container's hardened spec accepts.
OVERRIDE_BOUNDS: dict[str, tuple[Decimal, Decimal]] = {
    "cpu": (Decimal("0.1"), Decimal(64)),
    "memory_mb": (Decimal(128), Decimal(262_144)),
    "pids": (Decimal(32), Decimal(4096)),
    "max_concurrent_jobs": (Decimal(1), Decimal(100)),
    "max_queued_jobs": (Decimal(1), Decimal(1000)),
    "max_bots": (Decimal(0), Decimal(100)),
    "max_job_seconds": (Decimal(60), Decimal(7 * 86_400)),
}
FOUND_MAX = 50
RECENT_JOBS = 20
_LIKE_SPECIALS = str.maketrans({"\\": "\\\\", "%": "\\%", "_": "\\_"})


@dataclass(frozen=True)
class TenantRow:
    """An account as the search lists it."""

    tenant: Tenant
    plan_name: str
    emails: list[str]


@dataclass(frozen=True)
class TenantOverview:
    tenant: Tenant
    plan: Plan
    users: list[User]
    quotas: Quotas
    usage: UsageSummary
    bots: list[Bot]
    jobs: list[Job]
    invoices: list[Invoice]
    subscriptions: list[Subscription]
    disk: TenantDiskUsage | None  # as last measured; None before its first job made it


def find_tenants(session: Session, query: str) -> list[TenantRow]:
    """Accounts whose id, name, legal name or a user's e-mail contains `query` (all of them,
    newest first, for an empty query); at most FOUND_MAX."""
    statement = (
        select(Tenant, Plan.name)
        .join(Plan, Plan.id == Tenant.plan_id)
        .order_by(Tenant.created_at.desc())
        .limit(FOUND_MAX)
    )
    text = query.strip()
    if text:
        pattern = f"%{text.translate(_LIKE_SPECIALS)}%"
        by_email = select(User.tenant_id).where(User.email.ilike(pattern, escape="\\"))
        statement = statement.where(
            or_(
                Tenant.id.ilike(pattern, escape="\\"),
                Tenant.display_name.ilike(pattern, escape="\\"),
                Tenant.legal_name.ilike(pattern, escape="\\"),
                Tenant.id.in_(by_email),
            )
        )
    found = session.execute(statement).all()
    emails: dict[str, list[str]] = {}
    ids = [tenant.id for tenant, _ in found]
    for tenant_id, email in session.execute(
        select(User.tenant_id, User.email).where(User.tenant_id.in_(ids)).order_by(User.email)
    ):
        emails.setdefault(str(tenant_id), []).append(email)
    return [TenantRow(tenant, name, emails.get(tenant.id, [])) for tenant, name in found]


def tenant_row(session: Session, tenant_id: str) -> TenantRow:
    """One account as the search lists it."""
    tenant = _tenant(session, tenant_id)
    emails = session.scalars(
        select(User.email).where(User.tenant_id == tenant_id).order_by(User.email)
    ).all()
    return TenantRow(tenant, tenant.plan.name, list(emails))


def tenant_quotas(session: Session, tenant_id: str, now: datetime) -> Quotas:
    return quotas(session, _tenant(session, tenant_id), now)


def tenant_overview(session: Session, tenant_id: str, now: datetime) -> TenantOverview:
    tenant = _tenant(session, tenant_id)
    users = list(session.scalars(select(User).where(User.tenant_id == tenant_id)))
    return TenantOverview(
        tenant=tenant,
        plan=tenant.plan,
        users=users,
        quotas=quotas(session, tenant, now),
        usage=usage_summary(session, tenant, period_of(now), now),
        bots=list_bots(session, tenant_id),
        jobs=jobs.list_jobs(session, tenant_id, limit=RECENT_JOBS),
        invoices=list_invoices(session, tenant_id),
        subscriptions=list_subscriptions(session, tenant_id),
        disk=disk_usage(session, tenant_id),
    )


def suspend_tenant(
    session: Session,
    tenant_id: str,
    reason: str,
    *,
    operator: Principal,
    ip: str | None,
    now: datetime,
) -> Tenant:
    """Suspends the account: its bots stop (the worker converges), its jobs are cancelled,
    nothing of it starts again, and its client is shown `reason` until an operator lifts the
    suspension. A payment does not lift it."""
    text = _checked_reason(reason)
    tenant = _locked(session, tenant_id)
    if tenant.status in CLOSED:
        raise Conflict("this account was deleted by its client: there is nothing to suspend")
    if tenant.suspension_reason is not None:
        raise Conflict("this account is already suspended by an operator")
    tenant.status = TenantStatus.SUSPENDED
    tenant.suspension_reason = text
    tenant.suspended_at = now
    jobs.cancel_tenant_jobs(session, tenant_id, f"cancelled: the account was suspended ({text})")
    audit.service.record(
        session,
        actor=f"admin:{operator.user_id}",
        tenant_id=tenant_id,
        action="account.suspended",
        target=text[:200],
        ip=ip,
    )
    return tenant


def reactivate_tenant(
    session: Session, tenant_id: str, *, operator: Principal, ip: str | None, now: datetime
) -> Tenant:
    """Lifts an operator's suspension. An account billing cut off for lack of payment stays
    suspended until it pays."""
    tenant = _locked(session, tenant_id)
    if tenant.suspension_reason is None:
        raise Conflict("this account is not suspended by an operator")
    tenant.suspension_reason = None
    tenant.suspended_at = None
    tenant.status = (
        TenantStatus.SUSPENDED if tenant.billing_status in BLOCKED else TenantStatus.ACTIVE
    )
    audit.service.record(
        session,
        actor=f"admin:{operator.user_id}",
        tenant_id=tenant_id,
        action="account.reactivated",
        ip=ip,
    )
    return tenant


def set_quota_override(
    session: Session,
    tenant_id: str,
    values: Mapping[str, Decimal | int | None],
    *,
    reason: str,
    ends_at: datetime,
    operator: Principal,
    ip: str | None,
    now: datetime,
) -> QuotaOverride:
    """Grants the account `values` (quotas left out or None stay the plan's) until `ends_at`,
    in place of any override in force: its next job, bot and queue use them."""
    text = _checked_reason(reason)
    granted = _checked_values(values)
    if not now < ends_at <= now + OVERRIDE_LONGEST:
        raise Invalid("the override ends in the future, within a year")
    tenant = _locked(session, tenant_id)
    if tenant.status in CLOSED:
        raise Conflict("this account was deleted by its client")
    _end_override(session, tenant_id, now)
    override = QuotaOverride(
        tenant_id=tenant_id,
        reason=text,
        ends_at=ends_at,
        created_at=now,
        created_by=f"admin:{operator.user_id}",
        **granted,
    )
    session.add(override)
    session.flush()
    changes = ", ".join(f"{name}={value}" for name, value in granted.items())
    audit.service.record(
        session,
        actor=f"admin:{operator.user_id}",
        tenant_id=tenant_id,
        action="quota.override",
        target=f"{changes} until {ends_at:%Y-%m-%d %H:%M} UTC: {text}"[:200],
        ip=ip,
    )
    return override


def end_quota_override(
    session: Session, tenant_id: str, *, operator: Principal, ip: str | None, now: datetime
) -> None:
    """Ends the override in force now: the plan's quotas apply again."""
    _locked(session, tenant_id)
    if override_in_force(session, tenant_id, now) is None:
        raise Conflict("no quota override is in force on this account")
    _end_override(session, tenant_id, now)
    audit.service.record(
        session,
        actor=f"admin:{operator.user_id}",
        tenant_id=tenant_id,
        action="quota.override_ended",
        ip=ip,
    )


def _end_override(session: Session, tenant_id: str, now: datetime) -> None:
    """Marks the account's unended override (in force or run out) ended."""
    for override in session.scalars(
        select(QuotaOverride).where(
            QuotaOverride.tenant_id == tenant_id, QuotaOverride.ended_at.is_(None)
        )
    ):
        override.ended_at = min(now, override.ends_at)
    session.flush()


def _checked_values(values: Mapping[str, Decimal | int | None]) -> dict[str, Decimal | int]:
    granted: dict[str, Decimal | int] = {}
    for name, value in values.items():
        if name not in OVERRIDABLE:
            raise Invalid(f"{name!r} cannot be overridden; these can: {', '.join(OVERRIDABLE)}")
        if value is None:
            continue
        low, high = OVERRIDE_BOUNDS[name]
        number = Decimal(value)
        if not number.is_finite() or not low <= number <= high:
            raise Invalid(f"{name} must be between {low} and {high}")
        if name == "cpu":
            if number != number.quantize(Decimal("0.01")):
                raise Invalid("cpu has two decimals at most")
            granted[name] = number
        elif number != number.to_integral_value():
            raise Invalid(f"{name} is a whole number")
        else:
            granted[name] = int(number)
    if not granted:
        raise Invalid("give at least one quota to override")
    return granted


def kill_job(session: Session, job_id: uuid.UUID, *, operator: Principal, ip: str | None) -> Job:
    """Cancels any account's job as its owner could: a queued one at once, a running one by
    the worker that runs it (its container is stopped). Audited in the account's chain."""
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"no job {job_id}")
    return jobs.cancel_job(session, operator, job.tenant_id, job_id, ip)


def stop_bot(session: Session, bot_id: uuid.UUID, *, operator: Principal, ip: str | None) -> Bot:
    """Stops any account's bot as its owner could; audited in the account's chain."""
    bot = session.get(Bot, bot_id)
    if bot is None or bot.deleted_at is not None:
        raise NotFound(f"no bot {bot_id}")
    return bots.stop_bot(session, operator, bot.tenant_id, bot_id, ip)


def _checked_reason(reason: str) -> str:
    text = " ".join(reason.split())
    if len(text) < 3:
        raise Invalid("give the reason the client will read (3 characters at least)")
    if len(text) > REASON_MAX:
        raise Invalid(f"the reason is at most {REASON_MAX} characters")
    if any(unicodedata.category(char).startswith("C") for char in text):
        raise Invalid("the reason holds control characters")
    return text


def _tenant(session: Session, tenant_id: str) -> Tenant:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound(f"no account {tenant_id}")
    return tenant


def _locked(session: Session, tenant_id: str) -> Tenant:
    tenant = session.scalars(select(Tenant).where(Tenant.id == tenant_id).with_for_update()).first()
    if tenant is None:
        raise NotFound(f"no account {tenant_id}")
    session.refresh(tenant)
    return tenant
