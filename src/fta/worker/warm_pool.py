"""Job containers started before their job, so that a tenant's next job skips the container's
start and freqtrade's imports (about a second and a half of every backtest on this storage).

After a tenant's job, the worker starts one container of the same spec for that tenant: same
image, limits, network and mounts, hardened and verified like any job container, carrying the
`fta.handoff` label and no bundle. Its entry starts freqtrade, which imports itself and waits.
The tenant's next job with the same spec takes it, and the worker passes the bundle in with
the one exec the socket proxy allows (`JobRunner.hand_off`). A warm container serves exactly
one job of exactly one tenant, and no client code runs in it before its job arrives: it is as
fresh as a container created for the job. Unused, it is removed after `idle_seconds`.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from fta.runtime import ContainerRuntimeError, ContainerSpec, JobRunner
from fta.runtime.spec import WAIT_FOR_JOB_ENV

log = logging.getLogger(__name__)

# The owner label of a warm container: no job owns it until its hand-off. It goes on with the
# lease id of the worker whose pool holds it (fta.worker.leases), then a random part.
WARM_OWNER_PREFIX = "warm-"


def warm_worker(owner_id: str) -> str | None:
    """The lease id of the worker whose pool a warm container's owner label names; None for
    a label that names none."""
    parts = owner_id.removeprefix(WARM_OWNER_PREFIX).split("-")
    return parts[0] if len(parts) == 2 and parts[0] else None


@dataclass(frozen=True)
class WarmContainer:
    container_id: str
    # When it was created, and its tenant's CPU time then (fta.worker.tenant_cpu): a job it
    # serves is billed from there, the imports done while it waited included, as a job in a
    # container of its own would be.
    created_at: datetime
    tenant_cpu_before: Decimal | None
    created: float


def shape(spec: ContainerSpec) -> str:
    """What a warm container must share with a job's spec to serve it: everything but the
    job's own owner id and bundle."""
    return repr(dataclasses.replace(spec, owner_id="job", env={}, handoff=False))


class WarmPool:
    def __init__(
        self,
        runner: JobRunner,
        *,
        capacity: int,
        idle_seconds: float,
        tenant_cpu: Callable[[str], Decimal | None],
        now: Callable[[], datetime],
        clock: Callable[[], float] = time.monotonic,
        worker: Callable[[], str] | None = None,
    ) -> None:
        self._runner = runner
        # This worker's lease id, written in each container's owner label: the other workers'
        # reconcilers leave the containers of a live worker's pool alone.
        self._worker = worker
        self._capacity = capacity
        self._idle_seconds = idle_seconds
        self._tenant_cpu = tenant_cpu
        self._now = now
        self._clock = clock
        self._lock = threading.Lock()
        self._waiting: dict[str, WarmContainer] = {}
        # Taken by a job and not yet removed: still this pool's, not an orphan.
        self._serving: set[str] = set()

    def held(self) -> frozenset[str]:
        """The ids of the containers this pool answers for (the reconciler leaves them)."""
        with self._lock:
            return frozenset({warm.container_id for warm in self._waiting.values()} | self._serving)

    def take(self, spec: ContainerSpec) -> WarmContainer | None:
        """A running warm container for `spec`, now the caller's; None if there is none."""
        with self._lock:
            warm = self._waiting.pop(shape(spec), None)
            if warm is not None:
                self._serving.add(warm.container_id)
        if warm is None:
            return None
        try:
            state = self._runner.state(warm.container_id)
        except ContainerRuntimeError:
            state = None
        if state is None or not state.running:
            self.release(warm.container_id)
            return None
        return warm

    def release(self, container_id: str) -> None:
        """The job a warm container served has ended: it is removed."""
        try:
            self._runner.remove(container_id)
        finally:
            with self._lock:
                self._serving.discard(container_id)

    def leave_running(self, container_id: str) -> None:
        """The worker stops while a warm container serves a job: the container is the job's,
        left running for the next worker, which adopts it by the job's record."""
        with self._lock:
            self._serving.discard(container_id)

    def prepare(self, spec: ContainerSpec) -> None:
        """Starts a warm container for the next job of `spec`'s shape, unless one waits
        already. A full pool makes room by removing the container that waited longest: the
        tenant that ran a job last is the likeliest to run the next. A failure costs the next
        job nothing but its speed."""
        key = shape(spec)
        with self._lock:
            if key in self._waiting or self._capacity < 1:
                return
            evicted = []
            while len(self._waiting) >= self._capacity:
                oldest = min(self._waiting, key=lambda k: self._waiting[k].created)
                evicted.append(self._waiting.pop(oldest))
        for warm_out in evicted:
            self._remove(warm_out)
        worker = f"{self._worker()}-" if self._worker is not None else ""
        warm_spec = dataclasses.replace(
            spec,
            owner_id=WARM_OWNER_PREFIX + worker + secrets.token_hex(6),
            env=dict(WAIT_FOR_JOB_ENV),
            handoff=True,
        )
        created_at, before = self._now(), self._tenant_cpu(spec.tenant_id)
        try:
            container_id = self._runner.create(warm_spec)
        except Exception:
            log.exception("warm container for tenant %s not created", spec.tenant_id)
            return
        warm = WarmContainer(container_id, created_at, before, self._clock())
        with self._lock:
            # Recorded before it starts, so that the reconciler never takes it for an orphan.
            added = key not in self._waiting
            if added:
                self._waiting[key] = warm
        try:
            if not added:
                raise ContainerRuntimeError("another warm container of this shape came first")
            self._runner.start(container_id)
        except Exception as error:
            log.warning("warm container %s not started: %s", container_id, error)
            with self._lock:
                if self._waiting.get(key) is warm:
                    del self._waiting[key]
            self._runner.remove(container_id)

    def expire(self) -> None:
        """Removes the containers that waited longer than `idle_seconds`."""
        limit = self._clock() - self._idle_seconds
        self._remove_waiting(lambda warm: warm.created <= limit)

    def drain(self) -> None:
        """Removes every waiting container (the worker stops)."""
        self._remove_waiting(lambda _: True)

    def _remove_waiting(self, condition: Callable[[WarmContainer], bool]) -> None:
        with self._lock:
            gone = [key for key, warm in self._waiting.items() if condition(warm)]
            removed = [self._waiting.pop(key) for key in gone]
        for warm in removed:
            self._remove(warm)

    def _remove(self, warm: WarmContainer) -> None:
        try:
            self._runner.remove(warm.container_id)
        except Exception:
            log.exception("warm container %s not removed", warm.container_id)
