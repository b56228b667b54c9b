"""An operator's view of clients' accounts and actions on them: find an account, look it over
(usage, subscription, bots, jobs, invoices), suspend it with a reason its client is shown,
lift the suspension. Each change goes in the account's audit chain with the operator's id."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from fta import audit
from fta.access.periods import period_of
from fta.access.usage import UsageSummary, usage_summary
from fta.accounts.models import BLOCKED, CLOSED, Tenant, TenantStatus, User
from fta.accounts.service import Principal
from fta.billing.invoices.models import Invoice
from fta.billing.invoices.service import list_invoices
from fta.bots.models import Bot
from fta.bots.service import list_bots
from fta.errors import Conflict, Invalid, NotFound
from fta.jobs import service as jobs
from fta.jobs.models import Job
from fta.plans.models import Plan

REASON_MAX = 500
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
    usage: UsageSummary
    bots: list[Bot]
    jobs: list[Job]
    invoices: list[Invoice]


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


def tenant_overview(session: Session, tenant_id: str, now: datetime) -> TenantOverview:
    tenant = _tenant(session, tenant_id)
    users = list(session.scalars(select(User).where(User.tenant_id == tenant_id)))
    return TenantOverview(
        tenant=tenant,
        plan=tenant.plan,
        users=users,
        usage=usage_summary(session, tenant, period_of(now), now),
        bots=list_bots(session, tenant_id),
        jobs=jobs.list_jobs(session, tenant_id, limit=RECENT_JOBS),
        invoices=list_invoices(session, tenant_id),
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
