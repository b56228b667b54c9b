"""/api/v1/jobs."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Response, status
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from fta.accounts.deps import PrincipalDep, TenantDep
from fta.jobs import retention, service
from fta.jobs.models import Job, JobKind
from fta.markets import label
from fta.web.deps import ClientIpDep, SessionDep

router = APIRouter(prefix="/jobs", tags=["jobs"])
PARAMETER_FILE_KEYS = ("strategy_name", "params", "ft_stratparam_v", "export_time")


class JobIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: JobKind
    strategy_id: uuid.UUID | None = None
    config: dict[str, Any] = Field(
        description="freqtrade options from the documented allow-list (see docs/api.md)"
    )
    max_seconds: int | None = Field(
        default=None,
        strict=True,
        description="stop the job after this many seconds (at most the plan's)",
    )


class JobAccepted(BaseModel):
    id: uuid.UUID
    status: str


class Usage(BaseModel):
    cpu_seconds: Decimal | None
    memory_max_bytes: int | None
    run_seconds: int | None


class MarketData(BaseModel):
    source: str = Field(description="synthetic, recorded or exchange")
    note: str


def _market_data(job: Job) -> MarketData | None:
    if job.market_data_source is None:
        return None
    return MarketData.model_validate(label(job.market_data_source))


class JobOut(BaseModel):
    id: uuid.UUID
    kind: str
    status: str
    strategy_version_id: uuid.UUID | None
    config: dict[str, Any]
    max_seconds: int
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    exit_code: int | None
    error: str | None
    usage: Usage
    output_pruned_at: datetime | None = Field(
        description="when its logs and result file were deleted (past the plan's retention "
        "or quota); from then on they answer 410"
    )
    market_data: MarketData | None = Field(
        description="where the candles it ran on came from; null until it starts"
    )


def _out(job: Job) -> JobOut:
    run_seconds = None
    if job.started_at is not None and job.finished_at is not None:
        run_seconds = int((job.finished_at - job.started_at).total_seconds())
    return JobOut(
        id=job.id,
        kind=job.kind,
        status=job.status,
        strategy_version_id=job.strategy_version_id,
        config=job.config,
        max_seconds=job.max_seconds,
        cancel_requested=job.cancel_requested,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        exit_code=job.exit_code,
        error=job.error,
        output_pruned_at=job.output_pruned_at,
        market_data=_market_data(job),
        usage=Usage(
            cpu_seconds=job.cpu_seconds,
            memory_max_bytes=job.memory_max_bytes,
            run_seconds=run_seconds,
        ),
    )


@router.post("", status_code=status.HTTP_202_ACCEPTED)
def submit_job(
    body: JobIn, principal: PrincipalDep, tenant: TenantDep, session: SessionDep, ip: ClientIpDep
) -> JobAccepted:
    job = service.submit_job(
        session,
        principal,
        tenant,
        kind=body.kind,
        strategy_id=body.strategy_id,
        config=body.config,
        max_seconds=body.max_seconds,
        ip=ip,
    )
    return JobAccepted(id=job.id, status=job.status)


@router.get("")
def list_jobs(tenant: TenantDep, session: SessionDep) -> list[JobOut]:
    return [_out(job) for job in service.list_jobs(session, tenant)]


@router.get("/{job_id}")
def get_job(job_id: uuid.UUID, tenant: TenantDep, session: SessionDep) -> JobOut:
    return _out(service.get_job(session, tenant, job_id))


@router.get("/{job_id}/logs", response_class=PlainTextResponse)
def get_logs(job_id: uuid.UUID, tenant: TenantDep, session: SessionDep) -> PlainTextResponse:
    retention.require_output_kept(session, service.get_job(session, tenant, job_id))
    return PlainTextResponse(service.job_logs(session, tenant, job_id))


@router.get("/{job_id}/result")
def get_result(job_id: uuid.UUID, tenant: TenantDep, session: SessionDep) -> dict[str, Any]:
    """The job's summary, with where its candles came from (`market_data`)."""
    summary = service.job_result(session, tenant, job_id)
    market_data = _market_data(service.get_job(session, tenant, job_id))
    if market_data is None:
        return summary
    return {**summary, "market_data": market_data.model_dump()}


@router.get(
    "/{job_id}/archive",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def get_archive(job_id: uuid.UUID, tenant: TenantDep, session: SessionDep) -> Response:
    """freqtrade's raw result file, as an attachment (never rendered by a browser)."""
    retention.require_output_kept(session, service.get_job(session, tenant, job_id))
    archive = service.job_archive(session, tenant, job_id)
    return Response(
        archive.content,
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="{archive.filename}"',
            "X-Content-Type-Options": "nosniff",
            "Digest": f"sha-256={archive.sha256}",
        },
    )


@router.get(
    "/{job_id}/params",
    response_class=Response,
    responses={200: {"content": {"application/json": {}}}},
)
def get_parameter_file(job_id: uuid.UUID, tenant: TenantDep, session: SessionDep) -> Response:
    """A hyperopt's best parameters as freqtrade's `<Strategy>.json`, as an attachment: placed
    next to the strategy, freqtrade loads them."""
    filename, content = service.job_parameter_file(session, tenant, job_id)
    # In freqtrade's own key order.
    ordered = {key: content[key] for key in PARAMETER_FILE_KEYS}
    return Response(
        json.dumps(ordered, indent=2),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.post("/{job_id}/cancel", status_code=status.HTTP_202_ACCEPTED)
def cancel_job(
    job_id: uuid.UUID,
    principal: PrincipalDep,
    tenant: TenantDep,
    session: SessionDep,
    ip: ClientIpDep,
) -> JobOut:
    return _out(service.cancel_job(session, principal, tenant, job_id, ip))
