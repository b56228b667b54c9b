"""What a tenant's plan grants each of its containers."""

from __future__ import annotations

from fta.plans.models import Plan
from fta.runtime import Limits
from fta.settings import Settings

MIB = 1024 * 1024


def plan_limits(plan: Plan, settings: Settings) -> Limits:
    return Limits(
        nano_cpus=int(plan.cpu * 1_000_000_000),
        memory_bytes=plan.memory_mb * MIB,
        pids=plan.pids,
        tmpfs_bytes=settings.job_tmpfs_bytes,
    )


def plan_disk_bytes(plan: Plan) -> int:
    return plan.disk_mb * MIB
