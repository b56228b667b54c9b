"""Plan look-ups."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from fta.plans.models import Plan


def default_plan(session: Session) -> Plan:
    plan = session.scalars(select(Plan).where(Plan.is_default.is_(True))).first()
    if plan is None:
        raise LookupError("no default plan: run `fta migrate`, which seeds the catalog")
    return plan
