"""What an account's containers and queue get now: its plan's quotas, or an operator's
temporary override of some of them (`QuotaOverride`), until the override ends. Every reader
of these quotas goes through `quotas()`, so that an override holds everywhere at once: the
job queue's bounds, the bots' count, and the limits of each container the worker starts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from fta.access.models import QuotaOverride
from fta.accounts.models import Tenant

# The plan's quotas an operator may override (the disk is sized once, at its creation).
OVERRIDABLE = (
    "cpu",
    "memory_mb",
    "pids",
    "max_concurrent_jobs",
    "max_queued_jobs",
    "max_bots",
    "max_job_seconds",
)


@dataclass(frozen=True)
class Quotas:
    cpu: Decimal
    memory_mb: int
    pids: int
    disk_mb: int
    max_concurrent_jobs: int
    max_queued_jobs: int
    max_bots: int
    max_job_seconds: int
    # The override in force, if any (its reason and end are shown to the client).
    override: QuotaOverride | None = None


def override_in_force(session: Session, tenant_id: str, now: datetime) -> QuotaOverride | None:
    return session.scalars(
        select(QuotaOverride).where(
            QuotaOverride.tenant_id == tenant_id,
            QuotaOverride.ended_at.is_(None),
            QuotaOverride.ends_at > now,
        )
    ).first()


def quotas(session: Session, tenant: Tenant, now: datetime) -> Quotas:
    plan = tenant.plan
    override = override_in_force(session, tenant.id, now)

    def pick(name: str) -> int:
        value = getattr(override, name, None) if override is not None else None
        return int(getattr(plan, name) if value is None else value)

    cpu = override.cpu if override is not None and override.cpu is not None else plan.cpu
    return Quotas(
        cpu=Decimal(cpu),
        memory_mb=pick("memory_mb"),
        pids=pick("pids"),
        disk_mb=plan.disk_mb,
        max_concurrent_jobs=pick("max_concurrent_jobs"),
        max_queued_jobs=pick("max_queued_jobs"),
        max_bots=pick("max_bots"),
        max_job_seconds=pick("max_job_seconds"),
        override=override,
    )
