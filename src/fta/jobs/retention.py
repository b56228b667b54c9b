"""How long finished jobs' logs and result files are kept, and how much of them per tenant.

Each plan keeps a finished job's output (its log chunks and result file) for a number of
days, and up to a byte quota per tenant. The worker's periodic round deletes the output of
jobs past the retention, then, tenant by tenant, of the oldest jobs whose output passes the
quota; the job keeps its row, its result summary (small) and the date its output went, which
the API reports (410 Gone) instead of an empty answer. Output of a job still running is
neither counted nor touched: it is bounded per job (log bytes, result file size).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Interval,
    delete,
    func,
    literal,
    literal_column,
    select,
    update,
)
from sqlalchemy.orm import Session

from fta.accounts.models import Tenant
from fta.errors import Gone
from fta.jobs.models import Job, JobArchive, JobLogChunk
from fta.plans.models import Plan

# How often the worker prunes, how many jobs one transaction prunes at most, and how many
# transactions one round runs at most (a backlog is worked off over rounds, not in one).
PRUNE_CHECK_SECONDS = 3600.0
PRUNE_BATCH = 500
MAX_PRUNE_BATCHES = 20
ONE_DAY = literal_column("interval '1 day'", Interval)


def _unpruned_finished(tenants: Collection[str] | None = None) -> ColumnElement[bool]:
    condition = Job.finished_at.is_not(None) & Job.output_pruned_at.is_(None)
    return condition if tenants is None else condition & Job.tenant_id.in_(list(tenants))


def expired_jobs(
    session: Session, now: datetime, limit: int, tenants: Collection[str] | None = None
) -> list[uuid.UUID]:
    """Finished jobs whose output the tenant's plan keeps no longer, oldest first."""
    return list(
        session.scalars(
            select(Job.id)
            .join(Tenant, Tenant.id == Job.tenant_id)
            .join(Plan, Plan.id == Tenant.plan_id)
            .where(
                _unpruned_finished(tenants),
                Job.finished_at + Plan.job_output_retention_days * ONE_DAY <= literal(now),
            )
            .order_by(Job.finished_at)
            .limit(limit)
        )
    )


def jobs_over_quota(
    session: Session, limit: int, tenants: Collection[str] | None = None
) -> list[uuid.UUID]:
    """Finished jobs whose output, counted newest first per tenant, passes the plan's quota."""
    log_bytes = (
        select(
            JobLogChunk.job_id.label("job_id"),
            func.sum(func.octet_length(JobLogChunk.text)).label("bytes"),
        )
        .group_by(JobLogChunk.job_id)
        .subquery()
    )
    size = func.coalesce(log_bytes.c.bytes, 0) + func.coalesce(JobArchive.size, 0)
    kept = (
        select(
            Job.id.label("job_id"),
            Job.finished_at.label("finished_at"),
            Plan.max_job_output_bytes.label("quota"),
            func.sum(size)
            .over(partition_by=Job.tenant_id, order_by=(Job.finished_at.desc(), Job.id.desc()))
            .cast(BigInteger)
            .label("bytes_so_far"),
        )
        .join(Tenant, Tenant.id == Job.tenant_id)
        .join(Plan, Plan.id == Tenant.plan_id)
        .outerjoin(log_bytes, log_bytes.c.job_id == Job.id)
        .outerjoin(JobArchive, JobArchive.job_id == Job.id)
        .where(_unpruned_finished(tenants))
        .subquery()
    )
    return list(
        session.scalars(
            select(kept.c.job_id)
            .where(kept.c.bytes_so_far > kept.c.quota)
            .order_by(kept.c.finished_at)
            .limit(limit)
        )
    )


def tenant_output_bytes(session: Session, tenant_id: str) -> int:
    """What the tenant's finished jobs' kept logs and result files take, as the quota counts."""
    kept = Job.tenant_id == tenant_id
    logs = session.scalar(
        select(func.coalesce(func.sum(func.octet_length(JobLogChunk.text)), 0))
        .join(Job, Job.id == JobLogChunk.job_id)
        .where(kept, _unpruned_finished())
    )
    archives = session.scalar(
        select(func.coalesce(func.sum(JobArchive.size), 0))
        .join(Job, Job.id == JobArchive.job_id)
        .where(kept, _unpruned_finished())
    )
    return int(logs or 0) + int(archives or 0)


def prune_job_outputs(
    session: Session,
    now: datetime,
    *,
    limit: int = PRUNE_BATCH,
    tenants: Collection[str] | None = None,
) -> int:
    """Deletes the logs and result files of at most `limit` finished jobs (of `tenants`, when
    given) past their plan's retention or quota, and marks them pruned at `now`; returns how
    many jobs it pruned. The caller commits, and calls again while a full batch was pruned."""
    job_ids = expired_jobs(session, now, limit, tenants)
    if len(job_ids) < limit:
        expired = set(job_ids)
        over_quota = [
            job_id for job_id in jobs_over_quota(session, limit, tenants) if job_id not in expired
        ]
        job_ids += over_quota[: limit - len(job_ids)]
    if not job_ids:
        return 0
    session.execute(delete(JobLogChunk).where(JobLogChunk.job_id.in_(job_ids)))
    session.execute(delete(JobArchive).where(JobArchive.job_id.in_(job_ids)))
    session.execute(update(Job).where(Job.id.in_(job_ids)).values(output_pruned_at=now))
    return len(job_ids)


def require_output_kept(session: Session, job: Job) -> None:
    """Raises Gone, with the date and the plan's terms, once the job's output was pruned."""
    if job.output_pruned_at is None:
        return
    tenant = session.get(Tenant, job.tenant_id)
    terms = ""
    if tenant is not None:
        plan = tenant.plan
        terms = (
            f" (your plan keeps finished jobs' logs and result files for "
            f"{plan.job_output_retention_days} days, and up to {plan.max_job_output_bytes} "
            "bytes for the account, oldest deleted first)"
        )
    raise Gone(
        f"the logs and result file of job {job.id} were deleted on "
        f"{job.output_pruned_at.date().isoformat()}{terms}; its result summary stays at "
        f"/api/v1/jobs/{job.id}/result"
    )
