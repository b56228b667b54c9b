"""What a job's and a bot's containers share: how their spec is built and how their usage is
read. Jobs (fta.worker.handlers, fta.worker.sandbox) and bots (fta.worker.bots) differ only
in what they run and how long; the container around it is built and measured the same way."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from decimal import Decimal

from fta.runtime import (
    ContainerRuntimeError,
    ContainerSpec,
    JobRunner,
    Limits,
    Mount,
    TenantNetwork,
    Usage,
)
from fta.runtime.spec import OwnerKind
from fta.settings import Settings


def container_spec(
    runner: JobRunner,
    settings: Settings,
    *,
    tenant_id: str,
    owner_kind: OwnerKind,
    owner_id: str,
    bundle_env: dict[str, str],
    network: TenantNetwork,
    mounts: list[Mount],
    limits: Limits,
) -> ContainerSpec:
    """The hardened spec of a tenant's container: the job image with the bundle it runs, on
    the tenant's network, within its plan's limits, pinned to the image's id and its Python
    environment volume (`JobRunner.with_python_env`)."""
    spec = ContainerSpec(
        tenant_id=tenant_id,
        owner_kind=owner_kind,
        owner_id=owner_id,
        image=settings.job_image,
        command=None,
        env=bundle_env,
        limits=limits,
        mounts=mounts,
        network=network.name,
        extra_hosts=network.extra_hosts,
        dns=network.dns,
    )
    return runner.with_python_env(spec)


def cpu_decimal(usage: Usage) -> Decimal:
    """A reading's CPU time as it is stored: seconds, to the millisecond."""
    return Decimal(str(round(usage.cpu_seconds, 3)))


class UsageSampler:
    """Reads containers' usage, at most every `every` seconds each, keeping the highest reading
    of each counter: CPU time is cumulative and never goes down, but a reading after the
    container exited is zero; memory is a peak. A failed reading keeps the last one."""

    def __init__(
        self, runner: JobRunner, every: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._runner = runner
        self._every = every
        self._clock = clock
        self._read_at: dict[str, float] = {}
        self._peaks: dict[str, Usage] = {}

    def due(self, container_id: str) -> bool:
        return self._clock() - self._read_at.get(container_id, -math.inf) >= self._every

    def read(self, container_id: str) -> Usage | None:
        """The usage so far, read now; None if no reading ever succeeded."""
        self._read_at[container_id] = self._clock()
        try:
            usage = self._runner.read_usage(container_id)
        except ContainerRuntimeError:
            return self._peaks.get(container_id)
        return self._keep_highest(container_id, usage)

    def read_final(self, container_id: str) -> Usage | None:
        """The usage of a container that stopped: the runner's own total when it keeps one
        (it is what the provider bills), else the highest reading taken while it ran."""
        try:
            final = self._runner.final_usage(container_id)
        except ContainerRuntimeError:
            final = None
        if final is None:
            return self._peaks.get(container_id)
        return self._keep_highest(container_id, final)

    def _keep_highest(self, container_id: str, usage: Usage) -> Usage:
        previous = self._peaks.get(container_id)
        if previous is not None:
            usage = Usage(
                max(previous.cpu_seconds, usage.cpu_seconds),
                max(previous.memory_max_bytes, usage.memory_max_bytes),
            )
        self._peaks[container_id] = usage
        return usage

    def forget(self, container_id: str) -> None:
        """The container is gone: its readings are dropped."""
        self._read_at.pop(container_id, None)
        self._peaks.pop(container_id, None)
