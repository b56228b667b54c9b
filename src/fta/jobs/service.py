"""Jobs: the one facade used by the API (submit, read, cancel) and the worker (claim, advance)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import func, select, text, true
from sqlalchemy.orm import Session, aliased

from fta import audit
from fta.accounts.models import Tenant, TenantStatus
from fta.accounts.service import Principal
from fta.billing import access
from fta.db import utcnow
from fta.errors import Conflict, Invalid, NotFound
from fta.jobs.config_errors import describe_config_error
from fta.jobs.freqtrade_config import parse_job_config
from fta.jobs.models import (
    ACTIVE_STATUSES,
    FINAL_STATUSES,
    TRANSITIONS,
    Job,
    JobArchive,
    JobKind,
    JobLogChunk,
    JobResult,
    JobStatus,
)
from fta.plans.models import Plan
from fta.strategies.service import get_strategy, latest_version

NOTIFY_CHANNEL = "fta_jobs"
KINDS_WITH_STRATEGY = frozenset({JobKind.BACKTEST, JobKind.HYPEROPT})


def submit_job(
    session: Session,
    principal: Principal,
    tenant_id: str,
    *,
    kind: JobKind,
    strategy_id: uuid.UUID | None,
    config: dict[str, Any],
    max_seconds: int | None,
    ip: str | None,
) -> Job:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("unknown account")
    access.require_start(session, tenant, utcnow())
    if tenant.status != TenantStatus.ACTIVE:
        raise Conflict("this account is suspended: jobs cannot be started")
    try:
        job_config = parse_job_config(kind.value, config)
    except ValidationError as exc:
        raise Invalid(describe_config_error(exc)) from exc
    version_id = None
    if kind in KINDS_WITH_STRATEGY:
        if strategy_id is None:
            raise Invalid(f"a {kind.value} job needs a strategy_id")
        version_id = latest_version(session, get_strategy(session, tenant_id, strategy_id)).id
    plan_limit = tenant.plan.max_job_seconds
    if max_seconds is not None and not 1 <= max_seconds <= plan_limit:
        raise Invalid(f"max_seconds must be between 1 and {plan_limit} (your plan's limit)")
    job = Job(
        tenant_id=tenant_id,
        kind=kind.value,
        status=JobStatus.QUEUED,
        strategy_version_id=version_id,
        # Only what the client set: the defaults apply again when the worker validates it.
        config=job_config.model_dump(mode="json", exclude_unset=True),
        max_seconds=max_seconds or plan_limit,
    )
    session.add(job)
    session.flush()
    audit.service.record(
        session,
        actor=str(principal.user_id),
        tenant_id=tenant_id,
        action=f"job.submit.{kind.value}",
        target=str(job.id),
        ip=ip,
    )
    # Delivered at commit: wakes a worker at once instead of at its next poll.
    session.execute(
        text("SELECT pg_notify(:channel, :payload)"),
        {"channel": NOTIFY_CHANNEL, "payload": str(job.id)},
    )
    return job


def get_job(session: Session, tenant_id: str, job_id: uuid.UUID) -> Job:
    job = session.get(Job, job_id)
    if job is None or job.tenant_id != tenant_id:
        raise NotFound(f"no job {job_id} in your account")
    return job


def list_jobs(session: Session, tenant_id: str, limit: int = 100) -> list[Job]:
    return list(
        session.scalars(
            select(Job)
            .where(Job.tenant_id == tenant_id)
            .order_by(Job.created_at.desc())
            .limit(limit)
        )
    )


def job_logs(session: Session, tenant_id: str, job_id: uuid.UUID) -> str:
    job = get_job(session, tenant_id, job_id)
    chunks = session.scalars(
        select(JobLogChunk.text).where(JobLogChunk.job_id == job.id).order_by(JobLogChunk.seq)
    )
    return "".join(chunks)


def job_result(session: Session, tenant_id: str, job_id: uuid.UUID) -> dict[str, Any]:
    job = get_job(session, tenant_id, job_id)
    result = session.get(JobResult, job.id)
    if result is None:
        if JobStatus(job.status).is_final:
            raise NotFound(f"job {job_id} ended {job.status} without a result: see its logs")
        raise NotFound(f"job {job_id} is {job.status}; its result appears when it succeeds")
    return result.summary


def cancel_job(
    session: Session, principal: Principal, tenant_id: str, job_id: uuid.UUID, ip: str | None
) -> Job:
    job = session.scalars(select(Job).where(Job.id == job_id).with_for_update()).first()
    if job is None or job.tenant_id != tenant_id:
        raise NotFound(f"no job {job_id} in your account")
    status = JobStatus(job.status)
    if status.is_final:
        raise Conflict(f"job {job_id} already ended ({job.status})")
    if status is JobStatus.QUEUED:
        advance(job, JobStatus.CANCELLED, error="cancelled before it started")
    else:
        job.cancel_requested = True
    audit.service.record(
        session,
        actor=str(principal.user_id),
        tenant_id=tenant_id,
        action="job.cancel",
        target=str(job.id),
        ip=ip,
    )
    return job


# --- worker side -------------------------------------------------------------------------


def advance(job: Job, status: JobStatus, **fields: Any) -> None:
    """Moves a job along its state machine; an illegal transition is a programming error."""
    current = JobStatus(job.status)
    if status not in TRANSITIONS.get(current, frozenset()):
        raise ValueError(f"job {job.id}: illegal transition {current} -> {status}")
    job.status = status
    now = utcnow()
    if status is JobStatus.RUNNING and job.started_at is None:
        job.started_at = now
    if status in FINAL_STATUSES:
        job.finished_at = now
    for name, value in fields.items():
        setattr(job, name, value)


def claim_next_job(session: Session, *, tenants: Collection[str] | None = None) -> Job | None:
    """Claims the oldest queued job whose tenant is under its plan's concurrency limit (of
    one of `tenants`, when given).

    The tenant row is locked while counting, so two workers cannot both start the job
    that would exceed the limit.
    """
    running = aliased(Job)
    active = (
        select(func.count())
        .select_from(running)
        .where(running.tenant_id == Tenant.id, running.status.in_(list(ACTIVE_STATUSES)))
        .correlate(Tenant)
        .scalar_subquery()
    )
    candidates = session.execute(
        select(Job.id, Job.tenant_id)
        .join(Tenant, Tenant.id == Job.tenant_id)
        .join(Plan, Plan.id == Tenant.plan_id)
        .where(
            Job.status == JobStatus.QUEUED,
            Tenant.status == TenantStatus.ACTIVE,
            active < Plan.max_concurrent_jobs,
            true() if tenants is None else Job.tenant_id.in_(list(tenants)),
        )
        .order_by(Job.created_at)
        .limit(20)
    ).all()
    for job_id, tenant_id in candidates:
        tenant = session.scalars(
            select(Tenant).where(Tenant.id == tenant_id).with_for_update(of=Tenant)
        ).one()
        active_now = session.scalar(
            select(func.count())
            .select_from(Job)
            .where(Job.tenant_id == tenant_id, Job.status.in_(list(ACTIVE_STATUSES)))
        )
        if (active_now or 0) >= tenant.plan.max_concurrent_jobs:
            continue
        job = session.scalars(
            select(Job)
            .where(Job.id == job_id, Job.status == JobStatus.QUEUED)
            .with_for_update(skip_locked=True)
        ).first()
        if job is None:
            continue
        advance(job, JobStatus.STARTING)
        return job
    return None


def append_log(session: Session, job_id: uuid.UUID, seq: int, chunk: str) -> None:
    session.add(JobLogChunk(job_id=job_id, seq=seq, text=chunk))


def store_archive(session: Session, job_id: uuid.UUID, filename: str, content: bytes) -> None:
    session.merge(
        JobArchive(
            job_id=job_id,
            filename=filename,
            content=content,
            size=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
        )
    )


def job_archive(session: Session, tenant_id: str, job_id: uuid.UUID) -> JobArchive:
    job = get_job(session, tenant_id, job_id)
    archive = session.get(JobArchive, job.id)
    if archive is None:
        raise NotFound(
            f"job {job_id} has no result file to download (only succeeded backtests and "
            "hyperopts have one)"
        )
    return archive


def store_result(session: Session, job_id: uuid.UUID, summary: BaseModel) -> None:
    session.merge(JobResult(job_id=job_id, summary=_json_numbers(summary.model_dump())))


def _json_numbers(value: Any) -> Any:
    """Result metrics are freqtrade's own floats: stored as JSON numbers, not strings."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _json_numbers(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_numbers(item) for item in value]
    return value


def record_usage(job: Job, cpu_seconds: Decimal | None, memory_max_bytes: int | None) -> None:
    job.cpu_seconds = cpu_seconds
    job.memory_max_bytes = memory_max_bytes


def active_jobs(session: Session) -> list[Job]:
    return list(session.scalars(select(Job).where(Job.status.in_(list(ACTIVE_STATUSES)))))
