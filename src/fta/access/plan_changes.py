"""An account's change of plan: at once, or from the next period when the current one is paid
for."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from fta import audit
from fta.access.periods import next_period, period_of
from fta.accounts.models import BillingStatus, Tenant
from fta.errors import Invalid
from fta.plans.models import Plan

# A plan change of these accounts waits for the next period: one is paid for now.
PAYING = frozenset({BillingStatus.ACTIVE, BillingStatus.PAST_DUE})


def change_plan(session: Session, tenant: Tenant, plan: Plan, now: datetime) -> str:
    """Puts the account on `plan`; returns the period from which it applies.

    An account that pays for the current period keeps its plan (quotas, allowance, rates)
    until the period ends: the change is deferred to the next one. Any other account (on
    trial, suspended, cancelled) changes at once.
    """
    if not plan.active:
        raise Invalid(f"the plan {plan.code!r} is no longer offered")
    current = period_of(now)
    if BillingStatus(tenant.billing_status) not in PAYING or plan.id == tenant.plan_id:
        tenant.plan_id, tenant.pending_plan_id, tenant.pending_plan_period = plan.id, None, None
        session.flush()
        session.refresh(tenant)
        applies = current
    else:
        applies = next_period(current)
        tenant.pending_plan_id, tenant.pending_plan_period = plan.id, applies
    audit.service.record(
        session,
        actor="billing",
        tenant_id=tenant.id,
        action="plan.change",
        target=f"{plan.code} from {applies}",
    )
    return applies


def pending_plan(session: Session, tenant: Tenant) -> Plan | None:
    """The plan a deferred change puts the account on at `tenant.pending_plan_period`."""
    if tenant.pending_plan_id is None:
        return None
    return session.get(Plan, tenant.pending_plan_id)


def change_applies_from(tenant: Tenant, now: datetime) -> str:
    """The period from which a change of plan made now would apply (see `change_plan`)."""
    current = period_of(now)
    return next_period(current) if BillingStatus(tenant.billing_status) in PAYING else current


def apply_pending_plans(session: Session, now: datetime) -> list[str]:
    """Switches the accounts whose deferred plan change is due; returns their ids."""
    due = session.scalars(
        select(Tenant)
        .where(Tenant.pending_plan_period <= period_of(now))
        .order_by(Tenant.id)
        .with_for_update(of=Tenant)
    ).all()
    for tenant in due:
        assert tenant.pending_plan_id is not None  # noqa: S101 - set with the period
        tenant.plan_id, tenant.pending_plan_id, tenant.pending_plan_period = (
            tenant.pending_plan_id,
            None,
            None,
        )
    session.flush()
    for tenant in due:
        session.refresh(tenant)
    return [tenant.id for tenant in due]
