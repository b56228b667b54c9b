"""The operator's plans editor: a new plan, a plan changed or retired, each price synced to
PayPal in the same step (a PayPal billing plan per price: new subscribers pay the new price,
existing subscriptions keep theirs, as PayPal does not raise a price without the buyer's
consent). Quotas apply to the next container an account starts; a month already opened keeps
the allowance and overage rates it opened with (fta.access.usage). A retired plan is offered
no more, and the accounts on it keep it."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fta.accounts.models import CLOSED, Tenant
from fta.accounts.service import Principal
from fta.billing.paypal import PayPal
from fta.billing.subscriptions import sync_catalog
from fta.errors import Invalid
from fta.plans import service as plans
from fta.plans.models import Plan

MIB = 1024 * 1024
Rate = Annotated[Decimal, Field(ge=0, le=1000, max_digits=12, decimal_places=6)]


class PlanFields(BaseModel):
    """A plan's fields as an administrator sets them, each within what the platform can run
    (a container's hardened spec, a sane price); those left out are unchanged, or for a new
    plan the default plan's. Counts are strict integers: JSON's `true` is no 1."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=100)
    price_ht_cents: int | None = Field(default=None, strict=True, ge=0, le=10_000_000)
    cpu: Decimal | None = Field(default=None, gt=0, le=64, max_digits=4, decimal_places=2)
    memory_mb: int | None = Field(default=None, strict=True, ge=128, le=262_144)
    pids: int | None = Field(default=None, strict=True, ge=32, le=65_536)
    disk_mb: int | None = Field(default=None, strict=True, ge=256, le=4_194_304)
    max_concurrent_jobs: int | None = Field(default=None, strict=True, ge=1, le=100)
    max_queued_jobs: int | None = Field(default=None, strict=True, ge=1, le=1000)
    max_bots: int | None = Field(default=None, strict=True, ge=0, le=100)
    max_job_seconds: int | None = Field(default=None, strict=True, ge=60, le=7 * 86_400)
    included_cpu_hours: Decimal | None = Field(
        default=None, ge=0, le=100_000, max_digits=10, decimal_places=2
    )
    max_strategy_versions: int | None = Field(default=None, strict=True, ge=1, le=100_000)
    max_strategy_bytes: int | None = Field(default=None, strict=True, ge=MIB, le=16 * 1024 * MIB)
    job_output_retention_days: int | None = Field(default=None, strict=True, ge=1, le=3650)
    max_job_output_bytes: int | None = Field(
        default=None, strict=True, ge=16 * MIB, le=1024 * 1024 * MIB
    )
    overage_cpu_hour_eur: Rate | None = None
    overage_ram_gb_hour_eur: Rate | None = None
    overage_job_minute_eur: Rate | None = None
    active: bool | None = None

    def changes(self) -> dict[str, Any]:
        """The fields given (None is refused: every field has a value)."""
        given = self.model_dump(exclude_unset=True)
        if any(value is None for value in given.values()):
            raise Invalid("send no null value: every field of a plan has one")
        return given


# What PayPal's catalog holds of a plan.
PAYPAL_FIELDS = frozenset({"name", "price_ht_cents", "active"})


def subscribers(session: Session) -> dict[int, int]:
    """How many accounts (not deleted) are on each plan, by plan id."""
    rows = session.execute(
        select(Tenant.plan_id, func.count())
        .where(Tenant.status.not_in(list(CLOSED)))
        .group_by(Tenant.plan_id)
    ).all()
    return {plan_id: count for plan_id, count in rows}


def create_plan(
    session: Session,
    code: str,
    fields: dict[str, Any],
    *,
    operator: Principal,
    ip: str | None,
    paypal: PayPal | None,
) -> Plan:
    plan = plans.create_plan(session, code, fields, actor=f"admin:{operator.user_id}", ip=ip)
    _sync(session, paypal)
    return plan


def edit_plan(
    session: Session,
    code: str,
    changes: dict[str, Any],
    *,
    operator: Principal,
    ip: str | None,
    paypal: PayPal | None,
) -> Plan:
    plan = plans.update_plan(
        session, plans.get_plan(session, code), changes, actor=f"admin:{operator.user_id}", ip=ip
    )
    if PAYPAL_FIELDS & set(changes):
        _sync(session, paypal)
    return plan


def _sync(session: Session, paypal: PayPal | None) -> None:
    """PayPal's catalog at the catalog's prices, in the caller's transaction: a PayPal
    failure leaves the plans as they were."""
    if paypal is not None and paypal.client.configured:
        sync_catalog(session, paypal.client)
