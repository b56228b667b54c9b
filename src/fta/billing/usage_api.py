"""/api/v1/usage: a month's metered consumption, allowance and overage."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from fta.accounts.models import Tenant
from fta.billing import metering
from fta.billing.periods import parse_period, period_of
from fta.db import utcnow
from fta.errors import Invalid, NotFound
from fta.portal.deps import SessionDep, TenantDep

router = APIRouter(tags=["billing"])
SHOWN = Decimal("0.001")


class ConsumptionOut(BaseModel):
    cpu_hours: Decimal
    ram_gb_hours: Decimal
    job_minutes: Decimal
    bot_hours: Decimal
    events: int
    late_events: int = Field(description="events of closed months counted in this one")


class AllowanceOut(BaseModel):
    included_cpu_hours: Decimal
    remaining_cpu_hours: Decimal


class OverageOut(BaseModel):
    cpu_hours: Decimal
    ram_gb_hours: Decimal
    job_minutes: Decimal
    amount_eur_ht: Decimal = Field(description="before VAT, rounded half up to the cent")


class UsageOut(BaseModel):
    period: str
    status: Literal["open", "closed"]
    plan: str
    billing_status: str
    consumption: ConsumptionOut
    allowance: AllowanceOut
    overage: OverageOut = Field(description="what the events recorded so far cost")
    projected_overage: OverageOut = Field(
        description="for the running month, if it goes on at the pace so far"
    )


def _overage(value: metering.Overage) -> OverageOut:
    return OverageOut(
        cpu_hours=value.cpu_hours.quantize(SHOWN),
        ram_gb_hours=value.ram_gb_hours.quantize(SHOWN),
        job_minutes=value.job_minutes.quantize(SHOWN),
        amount_eur_ht=value.amount_eur,
    )


@router.get("/usage")
def usage(
    request: Request,
    tenant_id: TenantDep,
    session: SessionDep,
    period: Annotated[
        str | None, Query(description="YYYY-MM (UTC); the current month if absent")
    ] = None,
) -> UsageOut:
    unknown = sorted(set(request.query_params) - {"period"})
    if unknown:
        raise Invalid(f"unknown query parameter(s) {unknown}: only period=YYYY-MM is read")
    now = utcnow()
    month = parse_period(period) if period is not None else period_of(now)
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("unknown account")
    summary = metering.usage_summary(session, tenant, month, now)
    used = summary.consumption
    return UsageOut(
        period=month,
        status="closed" if summary.closed else "open",
        plan=summary.plan.code,
        billing_status=tenant.billing_status,
        consumption=ConsumptionOut(
            cpu_hours=used.cpu_hours.quantize(SHOWN),
            ram_gb_hours=used.ram_gb_hours.quantize(SHOWN),
            job_minutes=used.job_minutes.quantize(SHOWN),
            bot_hours=used.bot_hours.quantize(SHOWN),
            events=used.events,
            late_events=used.late_events,
        ),
        allowance=AllowanceOut(
            included_cpu_hours=summary.included_cpu_hours,
            remaining_cpu_hours=max(
                Decimal(0), summary.included_cpu_hours - used.cpu_hours
            ).quantize(SHOWN),
        ),
        overage=_overage(summary.overage),
        projected_overage=_overage(summary.projected_overage),
    )
