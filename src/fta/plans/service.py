"""The plan catalog: look-ups, prices with VAT, an administrator's edits, plan changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fta import audit
from fta.accounts.models import Tenant
from fta.billing.access import BillingStatus
from fta.billing.periods import next_period, period_of
from fta.errors import Conflict, Invalid, NotFound
from fta.plans.models import Plan

# French VAT (TVA) at the standard rate: prices are stored before it (HT).
VAT_RATE = Decimal("0.20")
CENT = Decimal("0.01")
# A plan change of these accounts waits for the next period: one is paid for now.
PAYING = frozenset({BillingStatus.ACTIVE, BillingStatus.PAST_DUE})


def default_plan(session: Session) -> Plan:
    plan = session.scalars(select(Plan).where(Plan.is_default.is_(True))).first()
    if plan is None:
        raise LookupError("no default plan: run `fta migrate`, which seeds the catalog")
    return plan


@dataclass(frozen=True)
class Price:
    ht: Decimal
    vat: Decimal
    ttc: Decimal


def monthly_price(plan: Plan) -> Price:
    """HT from the catalog; TTC = HT + 20 %, rounded half up to the cent."""
    ht = (Decimal(plan.price_ht_cents) / 100).quantize(CENT)
    ttc = (ht * (1 + VAT_RATE)).quantize(CENT, ROUND_HALF_UP)
    return Price(ht, ttc - ht, ttc)


def list_plans(session: Session, *, include_inactive: bool = False) -> list[Plan]:
    query = select(Plan).order_by(Plan.price_ht_cents, Plan.code)
    if not include_inactive:
        query = query.where(Plan.active.is_(True))
    return list(session.scalars(query))


def get_plan(session: Session, code: str) -> Plan:
    plan = session.scalars(select(Plan).where(Plan.code == code)).first()
    if plan is None:
        raise NotFound(f"no plan {code!r}: GET /api/v1/plans lists them")
    return plan


def update_plan(
    session: Session, plan: Plan, changes: dict[str, Any], *, actor: str, ip: str | None
) -> Plan:
    """Applies an administrator's edit; running containers keep their limits until they
    start again, and a period's allowance and rates are read when it is billed."""
    if changes.get("active") is False and plan.is_default:
        raise Conflict(f"{plan.code!r} is the default plan of new accounts: it stays active")
    for name, value in changes.items():
        if not hasattr(Plan, name) or name in ("id", "code", "is_default"):
            raise Invalid(f"unknown plan field {name!r}")
        setattr(plan, name, value)
    session.flush()
    audit.service.record(
        session,
        actor=actor,
        action="plan.update",
        target=f"{plan.code}: {', '.join(sorted(changes))}"[:200],
        ip=ip,
    )
    return plan


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
