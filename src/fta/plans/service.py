"""The plan catalog: look-ups, prices with VAT, an administrator's edits."""

from __future__ import annotations

import re
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


# Fields an administrator sets; the others (id, code, is_default) are the catalog's.
EDITABLE = frozenset(
    {
        "name", "price_ht_cents", "cpu", "memory_mb", "pids", "disk_mb", "max_concurrent_jobs",
        "max_queued_jobs", "max_bots", "max_job_seconds", "included_cpu_hours",
        "max_strategy_versions", "max_strategy_bytes", "job_output_retention_days",
        "max_job_output_bytes", "overage_cpu_hour_eur", "overage_ram_gb_hour_eur",
        "overage_job_minute_eur", "active",
    }
)  # fmt: skip
PLAN_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


def create_plan(
    session: Session, code: str, fields: dict[str, Any], *, actor: str, ip: str | None
) -> Plan:
    """A new plan: a copy of the default plan's quotas and rates, with `fields` set; offered
    at once (`active`) unless `fields` says otherwise."""
    if not PLAN_CODE.match(code):
        raise Invalid("a plan's code is 1 to 32 lowercase letters, digits, - or _")
    if session.scalars(select(Plan.id).where(Plan.code == code)).first() is not None:
        raise Conflict(f"a plan {code!r} exists already: change it instead")
    unknown = set(fields) - EDITABLE
    if unknown:
        raise Invalid(f"unknown plan field(s): {', '.join(sorted(unknown))}")
    model = default_plan(session)
    copied = {name: getattr(model, name) for name in EDITABLE}
    plan = Plan(code=code, is_default=False, **{**copied, "active": True, **fields})
    session.add(plan)
    session.flush()
    audit.service.record(
        session, actor=actor, action="plan.create", target=f"{code}: {plan.name}"[:200], ip=ip
    )
    return plan


def update_plan(
    session: Session, plan: Plan, changes: dict[str, Any], *, actor: str, ip: str | None
) -> Plan:
    """Applies an administrator's edit; running containers keep their limits until they
    start again, and a period's allowance and rates are read when it is billed."""
    if changes.get("active") is False and plan.is_default:
        raise Conflict(f"{plan.code!r} is the default plan of new accounts: it stays active")
    for name, value in changes.items():
        if name not in EDITABLE:
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
