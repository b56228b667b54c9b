"""/api/v1/usage: a month's metered consumption, allowance and overage, the usage alerts
mailed, and the client's monthly spending cap."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from fta.access import usage as usage_costs
from fta.access.periods import parse_period, period_of
from fta.accounts import service as accounts
from fta.accounts.deps import TenantDep
from fta.accounts.models import Tenant
from fta.billing import metering
from fta.db import utcnow
from fta.errors import Invalid
from fta.web.deps import SessionDep

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


class QuantityOut(BaseModel):
    used: Decimal
    included: Decimal = Field(description="the part the plan covers")
    billable: Decimal = Field(description="the part billed beyond the plan")
    unit_price_eur_ht: Decimal


class QuantitiesOut(BaseModel):
    cpu_hours: QuantityOut
    ram_gb_hours: QuantityOut
    job_minutes: QuantityOut


class AlertOut(BaseModel):
    allowance: str = Field(description="cpu_hours: the plan's CPU-hours of the month")
    threshold_percent: int
    sent_at: datetime


class SpendingCapIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cap_eur_ht: Decimal | None = Field(
        description="the most to pay beyond the plan in one month, before VAT; null removes it"
    )


class SpendingCapOut(BaseModel):
    cap_eur_ht: Decimal | None
    reached: bool = Field(description="new jobs are refused until next month or a higher cap")


class UsageOut(BaseModel):
    period: str
    status: Literal["open", "closed"]
    plan: str = Field(description="the plan the month is billed with: the one it opened with")
    plan_name: str
    billing_status: str
    consumption: ConsumptionOut
    allowance: AllowanceOut
    overage: OverageOut = Field(description="what the events recorded so far cost")
    projected_overage: OverageOut = Field(
        description="for the running month, if it goes on at the pace so far"
    )
    quantities: QuantitiesOut
    alerts: list[AlertOut] = Field(description="allowance thresholds reached, mailed once")
    spending_cap: SpendingCapOut


def _quantity(value: usage_costs.MeteredQuantity) -> QuantityOut:
    return QuantityOut(
        used=value.used.quantize(SHOWN),
        included=value.included.quantize(SHOWN),
        billable=value.billable.quantize(SHOWN),
        unit_price_eur_ht=value.unit_price_ht_eur,
    )


def _spending_cap(session: Session, tenant: Tenant, now: datetime) -> SpendingCapOut:
    cap = usage_costs.spending_cap(session, tenant.id)
    return SpendingCapOut(
        cap_eur_ht=cap.cap_eur_ht if cap is not None else None,
        reached=usage_costs.cap_reached(session, tenant, now) is not None,
    )


def _overage(value: usage_costs.Overage) -> OverageOut:
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
    tenant = accounts.get_tenant(session, tenant_id)
    summary = usage_costs.usage_summary(session, tenant, month, now)
    used = summary.consumption
    quantities = summary.quantities
    return UsageOut(
        period=month,
        status="closed" if summary.closed else "open",
        plan=summary.plan.code,
        plan_name=summary.plan.name,
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
        quantities=QuantitiesOut(
            cpu_hours=_quantity(quantities.cpu_hours),
            ram_gb_hours=_quantity(quantities.ram_gb_hours),
            job_minutes=_quantity(quantities.job_minutes),
        ),
        alerts=[
            AlertOut(
                allowance=alert.allowance,
                threshold_percent=alert.threshold_percent,
                sent_at=alert.sent_at,
            )
            for alert in metering.usage_alerts(session, tenant.id, month)
        ],
        spending_cap=_spending_cap(session, tenant, now),
    )


@router.put("/usage/spending-cap")
def put_spending_cap(
    body: SpendingCapIn, tenant_id: TenantDep, session: SessionDep
) -> SpendingCapOut:
    """Caps what the month's usage beyond the plan may cost (euros before VAT); once reached,
    new jobs are refused until the next month, the cap is raised or removed."""
    tenant = accounts.get_tenant(session, tenant_id)
    now = utcnow()
    usage_costs.set_spending_cap(session, tenant_id, body.cap_eur_ht, now)
    return _spending_cap(session, tenant, now)
