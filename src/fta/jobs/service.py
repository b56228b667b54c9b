"""Jobs: the one facade used by the API (submit, read, cancel) and the worker (claim, advance)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import func, select, text, true
from sqlalchemy.orm import Session

from fta import audit
from fta.access import service as access
from fta.access import usage
from fta.accounts import verification
from fta.accounts.models import Tenant, TenantStatus
from fta.accounts.service import Principal, require_active
from fta.db import utcnow
from fta.errors import Conflict, Invalid, NotFound, RetryLater
from fta.freqtrade.options import (
    JobConfig,
    first_startup_day,
    parse_job_config,
    parse_timerange,
)
from fta.freqtrade.startup import declared_startup_candles
from fta.jobs import scheduling
from fta.jobs.config_errors import describe_config_error
from fta.jobs.market_pairs import require_usable_pairs
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
from fta.market_data import recorded
from fta.markets import DataSource
from fta.settings import get_settings
from fta.strategies.models import Strategy, StrategyVersion
from fta.strategies.service import get_strategy, latest_version

NOTIFY_CHANNEL = "fta_jobs"
# Transaction-scoped advisory lock key serialising job claims between workers.
CLAIM_LOCK = 0x66746A6F  # "ftjo"
KINDS_WITH_STRATEGY = frozenset({JobKind.BACKTEST, JobKind.HYPEROPT})


class QueueFull(RetryLater):
    title = "Too many queued jobs"


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
    verification.require_verified(session, principal)
    # Locked, so that concurrent submissions count the queue one after the other.
    tenant = session.scalars(select(Tenant).where(Tenant.id == tenant_id).with_for_update()).first()
    if tenant is None:
        raise NotFound("unknown account")
    access.require_start(session, tenant, utcnow())
    usage.require_under_spending_cap(session, tenant, utcnow())
    require_active(tenant, "jobs")
    try:
        job_config = parse_job_config(kind.value, config)
    except ValidationError as exc:
        raise Invalid(describe_config_error(exc)) from exc
    require_usable_pairs(session, job_config.exchange, job_config.pairs, "job")
    version_id = None
    startup_candles = 0
    if kind in KINDS_WITH_STRATEGY:
        if strategy_id is None:
            raise Invalid(f"a {kind.value} job needs a strategy_id")
        strategy = get_strategy(session, tenant_id, strategy_id)
        version = latest_version(session, strategy)
        version_id = version.id
        startup_candles = declared_startup_candles(version.source, strategy.name)
    if get_settings().market_data_source is DataSource.RECORDED:
        _require_recorded(session, job_config, startup_candles)
    bounds = access.job_bounds(session, tenant, utcnow())
    plan_limit = bounds.max_seconds
    if max_seconds is not None and not 1 <= max_seconds <= plan_limit:
        raise Invalid(f"max_seconds must be between 1 and {plan_limit} ({bounds.whose} limit)")
    _require_queue_room(session, tenant_id, bounds)
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


def _require_recorded(session: Session, job_config: JobConfig, startup_candles: int) -> None:
    """Refuses a job the recorded candles do not cover, the strategy's startup candles before
    its range included (the range the worker fills)."""
    start, end = parse_timerange(job_config.timerange)
    start = first_startup_day(start, job_config.timeframe, startup_candles)
    recorded.require_covered(
        session,
        job_config.exchange,
        list(job_config.pairs),
        job_config.timeframe,
        *recorded.day_bounds(start, end),
        startup_candles=startup_candles,
    )


def _require_queue_room(session: Session, tenant_id: str, bounds: access.JobBounds) -> None:
    queued = session.scalar(
        select(func.count())
        .select_from(Job)
        .where(Job.tenant_id == tenant_id, Job.status == JobStatus.QUEUED)
    )
    if (queued or 0) >= bounds.queued:
        raise QueueFull(
            f"{queued} of your jobs are already waiting for a slot ({bounds.whose} limit): "
            "submit this one when one of them has started, or cancel one",
            retry_after=60,
        )


def get_job(session: Session, tenant_id: str, job_id: uuid.UUID) -> Job:
    job = session.get(Job, job_id)
    if job is None or job.tenant_id != tenant_id:
        raise NotFound(f"no job {job_id} in your account")
    return job


def list_jobs(
    session: Session,
    tenant_id: str,
    limit: int = 100,
    *,
    statuses: Collection[str] | None = None,
    kinds: Collection[str] | None = None,
) -> list[Job]:
    """The tenant's latest jobs, newest first; only those of `statuses` and `kinds` when given."""
    query = select(Job).where(Job.tenant_id == tenant_id)
    if statuses is not None:
        query = query.where(Job.status.in_(list(statuses)))
    if kinds is not None:
        query = query.where(Job.kind.in_(list(kinds)))
    return list(session.scalars(query.order_by(Job.created_at.desc()).limit(limit)))


@dataclass(frozen=True)
class StrategyLabel:
    """Which strategy, and which of its versions, a job ran."""

    strategy_id: uuid.UUID
    name: str
    version: int


def strategy_labels(
    session: Session, tenant_id: str, version_ids: Collection[uuid.UUID | None]
) -> dict[uuid.UUID, StrategyLabel]:
    """The strategy and version number of each of the tenant's strategy versions named (hidden
    strategies' included: their jobs still name them)."""
    wanted = {version_id for version_id in version_ids if version_id is not None}
    if not wanted:
        return {}
    rows = session.execute(
        select(StrategyVersion.id, Strategy.id, Strategy.name, StrategyVersion.version)
        .join(Strategy, Strategy.id == StrategyVersion.strategy_id)
        .where(StrategyVersion.id.in_(wanted), Strategy.tenant_id == tenant_id)
    )
    return {
        version_id: StrategyLabel(strategy_id, name, version)
        for version_id, strategy_id, name, version in rows
    }


def job_logs(session: Session, tenant_id: str, job_id: uuid.UUID) -> str:
    job = get_job(session, tenant_id, job_id)
    chunks = session.scalars(
        select(JobLogChunk.text).where(JobLogChunk.job_id == job.id).order_by(JobLogChunk.seq)
    )
    return "".join(chunks)


def log_chunks_after(
    session: Session, tenant_id: str, job_id: uuid.UUID, *, after: int, limit: int | None = None
) -> list[tuple[int, str]]:
    """The job's log chunks after sequence number `after`, oldest first, as (seq, text): what a
    live follower has not shown yet."""
    job = get_job(session, tenant_id, job_id)
    query = (
        select(JobLogChunk.seq, JobLogChunk.text)
        .where(JobLogChunk.job_id == job.id, JobLogChunk.seq > after)
        .order_by(JobLogChunk.seq)
    )
    if limit is not None:
        query = query.limit(limit)
    return [(seq, text) for seq, text in session.execute(query)]


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


def record_market_data_source(session: Session, job_id: uuid.UUID, source: str) -> None:
    """The data source the job's candles come from, recorded when its run begins."""
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"no job {job_id}")
    job.market_data_source = source


def mark_running(session: Session, job_id: uuid.UUID, container_id: str) -> None:
    """The job's container runs: the job is running in it (its cache fill's container first,
    then its own)."""
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"no job {job_id}")
    if JobStatus(job.status) is JobStatus.RUNNING:
        job.container_id = container_id
    else:
        advance(job, JobStatus.RUNNING, container_id=container_id)


def claim_next_job(
    session: Session, *, slots: int, tenants: Collection[str] | None = None
) -> Job | None:
    """Claims the next queued job for a pool of `slots` job slots (of one of `tenants`, when
    given), shared fairly between tenants (see fta.jobs.scheduling).

    Claims are serialised by a transaction-scoped lock, so two workers cannot both start the
    job that would exceed a tenant's bounds or the trials' part of the pool.
    """
    session.execute(select(func.pg_advisory_xact_lock(CLAIM_LOCK)))
    loads = _tenant_loads(session, tenants)
    trial_slots = scheduling.trial_slots(slots, get_settings().trial_job_slots_percent)
    while (tenant_id := scheduling.next_tenant(loads, trial_slots=trial_slots)) is not None:
        job = session.scalars(
            select(Job)
            .where(Job.tenant_id == tenant_id, Job.status == JobStatus.QUEUED)
            .order_by(Job.created_at)
            .limit(1)
            .with_for_update(skip_locked=True)
        ).first()
        if job is not None:
            advance(job, JobStatus.STARTING)
            return job
        # Its queued jobs are being cancelled right now: the next tenant's turn.
        loads = [load for load in loads if load.tenant_id != tenant_id]
    return None


def _tenant_loads(session: Session, tenants: Collection[str] | None) -> list[scheduling.TenantLoad]:
    """Every tenant with a queued or running job: how many it runs, since when it waits."""
    running = func.count().filter(Job.status.in_(list(ACTIVE_STATUSES)))
    oldest = func.min(Job.created_at).filter(Job.status == JobStatus.QUEUED)
    rows = session.execute(
        select(Job.tenant_id, running, oldest)
        .where(
            Job.status.in_([*ACTIVE_STATUSES, JobStatus.QUEUED]),
            true() if tenants is None else Job.tenant_id.in_(list(tenants)),
        )
        .group_by(Job.tenant_id)
    ).all()
    accounts = {
        tenant.id: tenant
        for tenant in session.scalars(select(Tenant).where(Tenant.id.in_([r[0] for r in rows])))
    }
    now = utcnow()
    loads = []
    for tenant_id, running_count, oldest_queued in rows:
        tenant = accounts[tenant_id]
        bounds = access.job_bounds(session, tenant, now)
        may_start = oldest_queued is not None and (
            tenant.status == TenantStatus.ACTIVE and access.can_start(session, tenant, now) is None
        )
        loads.append(
            scheduling.TenantLoad(
                tenant_id, running_count, oldest_queued, bounds.concurrent, bounds.trial, may_start
            )
        )
    return loads


def append_log(session: Session, job_id: uuid.UUID, seq: int, chunk: str) -> None:
    session.add(JobLogChunk(job_id=job_id, seq=seq, text=chunk))


def log_progress(session: Session, job_id: uuid.UUID) -> tuple[int, int]:
    """How much of the job's log is stored: its characters in all, and its last chunk's
    number (0 when none)."""
    chars, last = session.execute(
        select(
            func.coalesce(func.sum(func.length(JobLogChunk.text)), 0),
            func.coalesce(func.max(JobLogChunk.seq), 0),
        ).where(JobLogChunk.job_id == job_id)
    ).one()
    return int(chars), int(last)


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


def job_parameter_file(
    session: Session, tenant_id: str, job_id: uuid.UUID
) -> tuple[str, dict[str, Any]]:
    """A succeeded hyperopt's best parameters in freqtrade's parameter-file format, with the
    name freqtrade loads it under next to the strategy (`<Strategy>.json`)."""
    job = get_job(session, tenant_id, job_id)
    if job.kind != JobKind.HYPEROPT:
        raise NotFound(f"job {job_id} is a {job.kind} job: only hyperopts have a parameter file")
    if not JobStatus(job.status).is_final:
        raise Conflict(f"job {job_id} is {job.status}; its parameter file appears when it succeeds")
    result = session.get(JobResult, job.id)
    content = None if result is None else result.summary.get("parameter_file")
    if content is None:
        raise NotFound(f"job {job_id} ended {job.status} without a parameter file: see its logs")
    version = session.get(StrategyVersion, job.strategy_version_id)
    assert version is not None  # noqa: S101 - foreign key, set for every hyperopt
    strategy = session.get(Strategy, version.strategy_id)
    assert strategy is not None  # noqa: S101 - foreign key
    # A checked class name, unlike the file's own strategy_name, written in the container.
    return f"{strategy.name}.json", content


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


def cancel_tenant_jobs(session: Session, tenant_id: str, reason: str) -> int:
    """Cancels every job of the account that has not ended (its account is being deleted):
    a queued one at once, a starting or running one by the worker that runs it. Returns how
    many have not ended yet."""
    jobs = session.scalars(
        select(Job)
        .where(Job.tenant_id == tenant_id, Job.status.not_in(list(FINAL_STATUSES)))
        .order_by(Job.created_at)
        .with_for_update()
    ).all()
    for job in jobs:
        if JobStatus(job.status) is JobStatus.QUEUED:
            advance(job, JobStatus.CANCELLED, error=reason)
        else:
            job.cancel_requested = True
    return sum(1 for job in jobs if not JobStatus(job.status).is_final)
