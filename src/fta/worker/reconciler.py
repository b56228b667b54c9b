"""Makes Docker match Postgres after any crash. Container labels are the truth, not names."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Set

from sqlalchemy import select

from fta.billing import metering
from fta.db import session_scope
from fta.jobs import service as jobs
from fta.jobs.models import ACTIVE_STATUSES, Job, JobStatus
from fta.runtime import ContainerRuntimeError, JobRunner, Usage
from fta.worker.containers import cpu_decimal
from fta.worker.warm_pool import WARM_OWNER_PREFIX

log = logging.getLogger(__name__)


Adopt = Callable[[uuid.UUID, str], None]


def reconcile(
    runner: JobRunner,
    in_flight: Set[uuid.UUID],
    *,
    warm: Set[str] = frozenset(),
    adopt: Adopt | None = None,
) -> None:
    """Removes containers no live job owns; hands `adopt` the running jobs whose own container
    is still there; fails the other active jobs nobody is running.

    `in_flight` holds the jobs this worker is supervising right now; everything else
    that claims to be active was left behind by a worker that stopped. Bot containers are
    the bot supervisor's (fta.worker.bots): it converges them itself. `warm` holds the ids of
    the warm containers this worker's pool answers for; any other warm container is the job's
    whose container id it is, or an orphan. A job whose market data was being prepared
    cannot be adopted: the worker that stopped held its fill's lock.
    """
    containers = [c for c in runner.list_managed() if c.owner_kind != "bot"]
    owners: dict[uuid.UUID, str] = {}
    fills: set[str] = set()
    unclaimed_warm: set[str] = set()
    for container in containers:
        if container.owner_id.startswith(WARM_OWNER_PREFIX):
            if container.id not in warm:
                unclaimed_warm.add(container.id)
            continue
        try:
            owners[uuid.UUID(container.owner_id)] = container.id
        except ValueError:
            log.warning("removing container %s with a malformed owner label", container.id)
            runner.remove(container.id)
            continue
        if container.owner_kind == "cache-fill":
            fills.add(container.id)
    adopted: dict[uuid.UUID, str] = {}
    with session_scope() as session:
        active = {
            job.id: job
            for job in session.scalars(
                select(Job)
                .where(Job.status.in_(list(ACTIVE_STATUSES)))
                .with_for_update(skip_locked=True)
            )
        }
        for job_id, job in active.items():
            if job.container_id in unclaimed_warm:
                unclaimed_warm.discard(job.container_id)
                owners[job_id] = job.container_id
        for job_id, job in active.items():
            if job_id in in_flight:
                continue
            container_id = owners.get(job_id)
            if (
                adopt is not None
                and container_id is not None
                and container_id not in fills
                and container_id == job.container_id
                and JobStatus(job.status) is JobStatus.RUNNING
            ):
                adopted[job_id] = container_id
                continue
            usage = None
            if container_id is not None:
                usage = _read_usage(runner, container_id)
                runner.remove(container_id)
            jobs.advance(
                job,
                JobStatus.FAILED,
                error="the job's container vanished or its worker stopped; please resubmit",
            )
            # Billed like any job: from its container's counters, or the worker's last sample.
            metering.record_ended_job_usage(
                session,
                job,
                cpu_decimal(usage) if usage else None,
                usage.memory_max_bytes if usage else None,
            )
            log.warning("job %s failed by the reconciler", job_id)
    for job_id, container_id in adopted.items():
        assert adopt is not None  # noqa: S101 - only then adopted
        adopt(job_id, container_id)
    for owner_id, container_id in owners.items():
        if owner_id not in in_flight and owner_id not in adopted:
            log.info("removing orphan container %s (owner %s)", container_id, owner_id)
            runner.remove(container_id)
    for container_id in unclaimed_warm:
        log.info("removing warm container %s that no job took", container_id)
        runner.remove(container_id)


def _read_usage(runner: JobRunner, container_id: str) -> Usage | None:
    try:
        return runner.read_usage(container_id)
    except ContainerRuntimeError as error:
        log.warning("usage of container %s unreadable: %s", container_id, error)
        return None
