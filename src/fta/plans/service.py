"""The plan catalog: look-ups, prices with VAT, an administrator's edits."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fta import audit
from fta.errors import Conflict, Invalid, NotFound
from fta.plans.models import Plan

# French VAT (TVA) at the standard rate: prices are stored before it (HT).
VAT_RATE = Decimal("0.20")
CENT = Decimal("0.01")


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
