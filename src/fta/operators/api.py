"""/api/v1/admin/tenants, /operations, /jobs, /bots and /audit: clients' accounts for the
operator (their suspension, their quotas), what runs on the platform and its kill switches,
and the audit chains."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from fta.access import disks
from fta.access.api import PlanOut, plan_out
from fta.access.quotas import Quotas
from fta.accounts.deps import AdminDep
from fta.billing.api import PayPalDep
from fta.billing.invoices.journal import journal, journal_csv
from fta.db import utcnow
from fta.errors import Invalid, NotFound
from fta.operators import audit_view, operations, plans, revenue, service
from fta.operators.service import TenantRow
from fta.plans import service as catalog
from fta.web.deps import ClientIpDep, SessionDep
from fta.web.downloads import csv_attachment
from fta.web.request_model import RequestModel

router = APIRouter(prefix="/admin", tags=["operators"])

TenantId = Annotated[str, Path(min_length=1, max_length=8, pattern="^[a-z2-7]+$")]


class TenantOut(BaseModel):
    id: str
    display_name: str
    emails: list[str]
    plan: str
    status: str = Field(description="active, suspended, erasing or erased")
    billing_status: str
    suspension_reason: str | None = Field(
        description="an operator's suspension: the reason the client is shown"
    )
    suspended_at: datetime | None
    created_at: datetime


class SuspensionIn(RequestModel):
    reason: str = Field(
        min_length=3, max_length=service.REASON_MAX, description="shown to the client"
    )


class QuotasOut(BaseModel):
    """The account's quotas now: its plan's, or an operator's override of some of them."""

    cpu: Decimal
    memory_mb: int
    pids: int
    disk_mb: int
    max_concurrent_jobs: int
    max_queued_jobs: int
    max_bots: int
    max_job_seconds: int
    override_reason: str | None = Field(description="why an operator overrides them")
    override_ends_at: datetime | None = Field(description="when the plan's apply again")


class QuotaOverrideIn(BaseModel):
    """Quotas left out stay the plan's."""

    model_config = ConfigDict(extra="forbid")
    cpu: Decimal | None = Field(default=None, max_digits=4, decimal_places=2)
    memory_mb: int | None = Field(default=None, strict=True)
    pids: int | None = Field(default=None, strict=True)
    max_concurrent_jobs: int | None = Field(default=None, strict=True)
    max_queued_jobs: int | None = Field(default=None, strict=True)
    max_bots: int | None = Field(default=None, strict=True)
    max_job_seconds: int | None = Field(default=None, strict=True)
    reason: str = Field(min_length=3, max_length=service.REASON_MAX)
    ends_at: AwareDatetime = Field(description="within a year")


def quotas_out(granted: Quotas) -> QuotasOut:
    override = granted.override
    return QuotasOut(
        cpu=granted.cpu,
        memory_mb=granted.memory_mb,
        pids=granted.pids,
        disk_mb=granted.disk_mb,
        max_concurrent_jobs=granted.max_concurrent_jobs,
        max_queued_jobs=granted.max_queued_jobs,
        max_bots=granted.max_bots,
        max_job_seconds=granted.max_job_seconds,
        override_reason=override.reason if override is not None else None,
        override_ends_at=override.ends_at if override is not None else None,
    )


def tenant_out(row: TenantRow) -> TenantOut:
    tenant = row.tenant
    return TenantOut(
        id=tenant.id,
        display_name=tenant.display_name,
        emails=row.emails,
        plan=row.plan_name,
        status=tenant.status,
        billing_status=tenant.billing_status,
        suspension_reason=tenant.suspension_reason,
        suspended_at=tenant.suspended_at,
        created_at=tenant.created_at,
    )


def _one(session: SessionDep, tenant_id: str) -> TenantOut:
    return tenant_out(service.tenant_row(session, tenant_id))


@router.get("/tenants")
def find_tenants(
    admin: AdminDep,
    session: SessionDep,
    q: Annotated[str, Query(max_length=200, description="part of an id, name or e-mail")] = "",
) -> list[TenantOut]:
    return [tenant_out(row) for row in service.find_tenants(session, q)]


@router.get("/tenants/{tenant_id}")
def get_tenant(tenant_id: TenantId, admin: AdminDep, session: SessionDep) -> TenantOut:
    return _one(session, tenant_id)


@router.put("/tenants/{tenant_id}/suspension")
def suspend_tenant(
    tenant_id: TenantId, body: SuspensionIn, admin: AdminDep, session: SessionDep, ip: ClientIpDep
) -> TenantOut:
    service.suspend_tenant(session, tenant_id, body.reason, operator=admin, ip=ip, now=utcnow())
    return _one(session, tenant_id)


@router.delete("/tenants/{tenant_id}/suspension")
def reactivate_tenant(
    tenant_id: TenantId, admin: AdminDep, session: SessionDep, ip: ClientIpDep
) -> TenantOut:
    service.reactivate_tenant(session, tenant_id, operator=admin, ip=ip, now=utcnow())
    return _one(session, tenant_id)


@router.get("/tenants/{tenant_id}/quotas")
def get_quotas(tenant_id: TenantId, admin: AdminDep, session: SessionDep) -> QuotasOut:
    return quotas_out(service.tenant_quotas(session, tenant_id, utcnow()))


@router.put("/tenants/{tenant_id}/quotas/override")
def override_quotas(
    tenant_id: TenantId,
    body: QuotaOverrideIn,
    admin: AdminDep,
    session: SessionDep,
    ip: ClientIpDep,
) -> QuotasOut:
    values = body.model_dump(exclude={"reason", "ends_at"}, exclude_none=True)
    service.set_quota_override(
        session,
        tenant_id,
        values,
        reason=body.reason,
        ends_at=body.ends_at,
        operator=admin,
        ip=ip,
        now=utcnow(),
    )
    return get_quotas(tenant_id, admin, session)


@router.delete("/tenants/{tenant_id}/quotas/override", status_code=status.HTTP_204_NO_CONTENT)
def end_quota_override(
    tenant_id: TenantId, admin: AdminDep, session: SessionDep, ip: ClientIpDep
) -> Response:
    service.end_quota_override(session, tenant_id, operator=admin, ip=ip, now=utcnow())
    return Response(status_code=status.HTTP_204_NO_CONTENT)


class AuditEventOut(BaseModel):
    seq: int
    created_at: datetime
    actor: str
    action: str
    target: str | None
    ip: str | None
    breaks_here: bool = Field(description="the chain's first broken link is here")


class AuditChainOut(BaseModel):
    chain: str = Field(description="`platform`, or an account's id")
    length: int
    intact: bool
    broken_at: int | None = Field(description="sequence number of the first broken link")
    events: list[AuditEventOut] = Field(description="the latest 200, newest first")


class BrokenChainOut(BaseModel):
    chain: str
    broken_at: int


@router.get("/audit")
def broken_audit_chains(admin: AdminDep, session: SessionDep) -> list[BrokenChainOut]:
    """Every chain verified: those that do not hold (none when all do)."""
    return [
        BrokenChainOut(chain=name, broken_at=at) for name, at in audit_view.broken_chains(session)
    ]


@router.get("/audit/{chain}")
def audit_chain(
    chain: Annotated[str, Path(min_length=1, max_length=16, pattern="^[a-z2-7]+$")],
    admin: AdminDep,
    session: SessionDep,
) -> AuditChainOut:
    view = audit_view.chain_view(session, chain)
    if view is None:
        raise NotFound(f"no audit chain {chain}")
    return AuditChainOut(
        chain=view.name,
        length=view.length,
        intact=view.intact,
        broken_at=view.broken_at,
        events=[
            AuditEventOut(
                seq=shown.event.seq,
                created_at=shown.event.created_at,
                actor=shown.event.actor,
                action=shown.event.action,
                target=shown.event.target,
                ip=shown.event.ip,
                breaks_here=shown.breaks_here,
            )
            for shown in view.events
        ],
    )


class WorkerOut(BaseModel):
    name: str
    started_at: datetime
    beat_at: datetime
    silent: bool = Field(description="no heartbeat for two minutes")
    docker_ok: bool
    docker_error: str | None
    containers: int | None
    jobs_in_flight: int
    gateway_ok: bool = Field(description="the market-data gateway answered its health check")
    gateway_error: str | None
    disks_measured_at: datetime | None = Field(
        description="when the tenant disk helper last told how full the disks are"
    )
    disks_error: str | None = Field(description="why the last measure failed")


class CandleCacheOut(BaseModel):
    series: int = Field(description="(source, exchange, pair, timeframe) held")
    candle_days: int
    last_fill: datetime | None


class RunningJobOut(BaseModel):
    id: uuid.UUID
    tenant_id: str
    tenant: str
    kind: str
    status: str
    started_at: datetime | None
    max_seconds: int


class RunningBotOut(BaseModel):
    id: uuid.UUID
    tenant_id: str
    tenant: str
    name: str
    actual_state: str
    started_at: datetime | None


class QueueOut(BaseModel):
    tenant_id: str
    tenant: str
    queued: int
    running: int


class TenantDiskOut(BaseModel):
    tenant_id: str
    tenant: str
    size_bytes: int
    used_bytes: int
    used_percent: int
    nearly_full: bool = Field(description=f"{disks.NEARLY_FULL_PERCENT} % used or more")
    measured_at: datetime


class OperationsOut(BaseModel):
    workers: list[WorkerOut]
    jobs: list[RunningJobOut] = Field(description="starting or running, across accounts")
    bots: list[RunningBotOut] = Field(description="wanted running, across accounts")
    queues: list[QueueOut]
    open_billing_alerts: int
    candle_cache: CandleCacheOut
    disks: list[TenantDiskOut] = Field(description="accounts' data disks, the fullest first")
    nearly_full_disks: int


@router.get("/operations")
def get_operations(admin: AdminDep, session: SessionDep) -> OperationsOut:
    now = utcnow()
    found = operations.operations(session, now)
    return OperationsOut(
        workers=[
            WorkerOut(
                name=w.name,
                started_at=w.started_at,
                beat_at=w.beat_at,
                silent=w.name in found.silent,
                docker_ok=w.docker_ok,
                docker_error=w.docker_error,
                containers=w.containers,
                jobs_in_flight=w.jobs_in_flight,
                gateway_ok=w.gateway_ok,
                gateway_error=w.gateway_error,
                disks_measured_at=w.disks_measured_at,
                disks_error=w.disks_error,
            )
            for w in found.workers
        ],
        jobs=[
            RunningJobOut(
                id=job.id,
                tenant_id=job.tenant_id,
                tenant=name,
                kind=job.kind,
                status=job.status,
                started_at=job.started_at,
                max_seconds=job.max_seconds,
            )
            for job, name in found.jobs
        ],
        bots=[
            RunningBotOut(
                id=bot.id,
                tenant_id=bot.tenant_id,
                tenant=name,
                name=bot.name,
                actual_state=bot.actual_state,
                started_at=bot.started_at,
            )
            for bot, name in found.bots
        ],
        queues=[
            QueueOut(
                tenant_id=q.tenant_id, tenant=q.display_name, queued=q.queued, running=q.running
            )
            for q in found.queues
        ],
        open_billing_alerts=len(found.alerts),
        candle_cache=CandleCacheOut(
            series=found.cache.series,
            candle_days=found.cache.candle_days,
            last_fill=found.cache.last_fill,
        ),
        disks=[
            TenantDiskOut(
                tenant_id=disk.tenant_id,
                tenant=name,
                size_bytes=disk.size_bytes,
                used_bytes=disk.used_bytes,
                used_percent=disks.used_percent(disk),
                nearly_full=disks.nearly_full(disk),
                measured_at=disk.measured_at,
            )
            for disk, name in found.disks
        ],
        nearly_full_disks=found.nearly_full_disks,
    )


@router.post("/jobs/{job_id}/cancel", status_code=status.HTTP_202_ACCEPTED)
def kill_job(job_id: uuid.UUID, admin: AdminDep, session: SessionDep, ip: ClientIpDep) -> Response:
    """Any account's job, cancelled: a queued one at once, a running one by its worker."""
    service.kill_job(session, job_id, operator=admin, ip=ip)
    return Response(status_code=status.HTTP_202_ACCEPTED)


@router.post("/bots/{bot_id}/stop", status_code=status.HTTP_202_ACCEPTED)
def stop_bot(bot_id: uuid.UUID, admin: AdminDep, session: SessionDep, ip: ClientIpDep) -> Response:
    service.stop_bot(session, bot_id, operator=admin, ip=ip)
    return Response(status_code=status.HTTP_202_ACCEPTED)


Month = Annotated[str, Path(pattern=r"^[0-9]{4}-[0-9]{2}$", description="YYYY-MM")]


class VatRowOut(BaseModel):
    regime: str = Field(description="fr, reverse_charge or outside_eu; empty for the total")
    rate: str
    documents: int
    ht_cents: int
    vat_cents: int
    ttc_cents: int


class RevenueOut(BaseModel):
    month: str
    mrr_cents: int = Field(description="active subscriptions' monthly price before VAT, now")
    active_subscriptions: int
    started: int
    cancelled: int
    cancelled_mrr_cents: int
    overage_billed_cents: int
    overage_bills: int
    payment_issues: int = Field(description="sales PayPal holds or denied, and disputes")
    vat: list[VatRowOut] = Field(description="invoices less credit notes, per regime and rate")
    invoiced: VatRowOut


def _vat_out(row: revenue.VatRow) -> VatRowOut:
    return VatRowOut(
        regime=row.regime,
        rate=row.rate,
        documents=row.documents,
        ht_cents=row.ht_cents,
        vat_cents=row.vat_cents,
        ttc_cents=row.ttc_cents,
    )


@router.get("/revenue/{month}")
def get_revenue(month: Month, admin: AdminDep, session: SessionDep) -> RevenueOut:
    figures = revenue.revenue(session, month)
    return RevenueOut(
        month=figures.month,
        mrr_cents=figures.mrr_cents,
        active_subscriptions=figures.active_subscriptions,
        started=figures.started,
        cancelled=figures.cancelled,
        cancelled_mrr_cents=figures.cancelled_mrr_cents,
        overage_billed_cents=figures.overage_billed_cents,
        overage_bills=figures.overage_bills,
        payment_issues=len(figures.payment_issues),
        vat=[_vat_out(row) for row in figures.vat],
        invoiced=_vat_out(figures.invoiced),
    )


@router.get("/revenue/{month}/accounting.csv", response_class=Response)
def accounting_export(month: Month, admin: AdminDep, session: SessionDep) -> Response:
    """The month's invoices and credit notes booked in the FEC's columns."""
    return csv_attachment(revenue.accounting_csv(session, month), f"fta-ecritures-{month}.csv")


@router.get("/revenue/{month}/sales-journal.csv", response_class=Response)
def sales_journal(month: Month, admin: AdminDep, session: SessionDep) -> Response:
    """The month's invoices and credit notes, one line each, with their VAT regime."""
    first_day, last_day = revenue.month_days(month)
    text = journal_csv(journal(session, first_day, last_day))
    return csv_attachment(text, f"fta-journal-des-ventes-{month}.csv")


class AdminPlanOut(PlanOut):
    subscribers: int = Field(description="accounts on the plan (deleted ones not counted)")


class NewPlanIn(plans.PlanFields):
    code: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    name: str = Field(min_length=1, max_length=100)


@router.get("/plans")
def list_all_plans(admin: AdminDep, session: SessionDep) -> list[AdminPlanOut]:
    """Every plan, retired ones too, with how many accounts are on each."""
    counts = plans.subscribers(session)
    return [
        AdminPlanOut(**plan_out(plan).model_dump(), subscribers=counts.get(plan.id, 0))
        for plan in catalog.list_plans(session, include_inactive=True)
    ]


@router.post("/plans", status_code=status.HTTP_201_CREATED)
def create_plan(
    body: NewPlanIn, admin: AdminDep, session: SessionDep, ip: ClientIpDep, paypal: PayPalDep
) -> PlanOut:
    """A new plan, offered at once: the default plan's quotas and rates with the fields
    given; its price is made a PayPal billing plan in the same step."""
    fields = body.changes()
    code = fields.pop("code")
    plan = plans.create_plan(session, code, fields, operator=admin, ip=ip, paypal=paypal)
    return plan_out(plan)


@router.patch("/plans/{code}")
def update_plan(
    code: str,
    body: plans.PlanFields,
    admin: AdminDep,
    session: SessionDep,
    ip: ClientIpDep,
    paypal: PayPalDep,
) -> PlanOut:
    """Changes a plan (`active: false` retires it: offered no more, its accounts keep it)."""
    changes = body.changes()
    if not changes:
        raise Invalid("send at least one field to change")
    plan = plans.edit_plan(session, code, changes, operator=admin, ip=ip, paypal=paypal)
    return plan_out(plan)
