"""/api/v1/plans: the public catalog (administrators edit it at /api/v1/admin/plans,
fta.operators.api)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, Field

from fta.plans import service
from fta.plans.models import Plan
from fta.web.deps import SessionDep

router = APIRouter(tags=["plans"])

MIB = 1024 * 1024
Rate = Annotated[Decimal, Field(ge=0, le=1000, max_digits=12, decimal_places=6)]


class Quotas(BaseModel):
    cpu: Decimal = Field(description="CPUs per container")
    memory_mb: int
    pids: int
    disk_mb: int
    max_concurrent_jobs: int
    max_queued_jobs: int = Field(description="jobs waiting for a slot; more are refused (429)")
    max_bots: int
    max_job_seconds: int
    included_cpu_hours: Decimal = Field(description="CPU-hours included each month")
    max_strategy_versions: int = Field(
        description="strategy versions stored per account, hidden strategies' included; "
        "past it a new version is refused (409)"
    )
    max_strategy_bytes: int = Field(
        description="bytes of strategy code stored per account; past it a new version is "
        "refused (409)"
    )
    job_output_retention_days: int = Field(
        description="days a finished job's logs and result file are kept; then they are "
        "deleted (410 Gone) and its result summary stays"
    )
    max_job_output_bytes: int = Field(
        description="bytes of finished jobs' logs and result files kept per account; past "
        "it the oldest jobs' are deleted first"
    )


class PriceOut(BaseModel):
    currency: str = "EUR"
    ht: Decimal = Field(description="monthly price before VAT")
    vat_rate: Decimal
    vat: Decimal
    ttc: Decimal = Field(description="monthly price with French VAT, as private clients pay")


class OverageRates(BaseModel):
    cpu_hour_eur: Decimal
    ram_gb_hour_eur: Decimal
    job_minute_eur: Decimal


class PlanOut(BaseModel):
    code: str
    name: str
    is_default: bool
    active: bool
    price: PriceOut
    quotas: Quotas
    overage_rates_ht: OverageRates


def plan_out(plan: Plan) -> PlanOut:
    price = service.monthly_price(plan)
    return PlanOut(
        code=plan.code,
        name=plan.name,
        is_default=plan.is_default,
        active=plan.active,
        price=PriceOut(ht=price.ht, vat_rate=service.VAT_RATE, vat=price.vat, ttc=price.ttc),
        quotas=Quotas(
            cpu=plan.cpu,
            memory_mb=plan.memory_mb,
            pids=plan.pids,
            disk_mb=plan.disk_mb,
            max_concurrent_jobs=plan.max_concurrent_jobs,
            max_queued_jobs=plan.max_queued_jobs,
            max_bots=plan.max_bots,
            max_job_seconds=plan.max_job_seconds,
            included_cpu_hours=plan.included_cpu_hours,
            max_strategy_versions=plan.max_strategy_versions,
            max_strategy_bytes=plan.max_strategy_bytes,
            job_output_retention_days=plan.job_output_retention_days,
            max_job_output_bytes=plan.max_job_output_bytes,
        ),
        overage_rates_ht=OverageRates(
            cpu_hour_eur=plan.overage_cpu_hour_eur,
            ram_gb_hour_eur=plan.overage_ram_gb_hour_eur,
            job_minute_eur=plan.overage_job_minute_eur,
        ),
    )


@router.get("/plans")
def list_plans(session: SessionDep) -> list[PlanOut]:
    """The plans on offer; no authentication needed."""
    return [plan_out(plan) for plan in service.list_plans(session)]
