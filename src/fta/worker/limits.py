"""What a tenant's quotas (its plan's, or an operator's override) grant each of its
containers."""

from __future__ import annotations

import math

from fta.access.quotas import Quotas
from fta.runtime import Limits
from fta.settings import Settings

MIB = 1024 * 1024


def plan_limits(plan: Quotas, settings: Settings) -> Limits:
    return Limits(
        nano_cpus=int(plan.cpu * 1_000_000_000),
        memory_bytes=plan.memory_mb * MIB,
        pids=plan.pids,
        tmpfs_bytes=settings.job_tmpfs_bytes,
    )


def plan_job_workers(plan: Quotas) -> int:
    """Processes a hyperopt runs its epochs in: the whole CPUs of the plan, at least one
    (more would only share the same CPU quota, each with its own copy of the candles)."""
    return max(1, math.floor(plan.cpu))


def plan_disk_bytes(plan: Quotas) -> int:
    return plan.disk_mb * MIB
