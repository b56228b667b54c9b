"""Makes Docker match Postgres after any crash. Container labels are the truth, not names.

Several workers may share the database (fta.worker.leases): a reconciler touches only what no
live worker owns. An active job whose worker's lease is live is left alone with its container;
one whose worker's lease ran out (or that names no worker) is adopted or failed, under its
row's lock, ownership passing by the same update, so two workers never adopt the same job.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Set

from sqlalchemy import or_, select

from fta.billing import metering
from fta.db import session_scope
from fta.jobs import service as jobs
from fta.jobs.models import ACTIVE_STATUSES, Job, JobStatus
from fta.runtime import ContainerRuntimeError, JobRunner, Usage
from fta.worker import leases
from fta.worker.containers import cpu_decimal
from fta.worker.warm_pool import WARM_OWNER_PREFIX, warm_worker

log = logging.getLogger(__name__)


Adopt = Callable[[uuid.UUID, str], None]


def reconcile(
    runner: JobRunner,
    in_flight: Set[uuid.UUID],
    *,
    warm: Set[str] = frozenset(),
    adopt: Adopt | None = None,
    worker_id: str | None = None,
) -> None:
    """Removes containers no live job owns; hands `adopt` the running jobs left by a worker
    whose lease ran out whose own container is still there, now owned by `worker_id`; fails
    the other active jobs nobody runs.

    `in_flight` holds the jobs this worker is supervising right now. Bot containers are the
    bot supervisor's (fta.worker.bots): it converges them itself. `warm` holds the ids of the
    warm containers this worker's pool answers for; a warm container of another live worker's
    pool is left alone; any other is the job's whose container id it is, or an orphan. A job
    whose market data was being prepared cannot be adopted: the worker that stopped held its
    fill's lock.
    """
    containers = [c for c in runner.list_managed() if c.owner_kind != "bot"]
    with session_scope() as session:
        live = leases.live_workers(session)
        # Read without locks: a job another reconciler holds is still seen, and kept.
        active: dict[uuid.UUID, str | None] = {
            job_id: container_id
            for job_id, container_id in session.execute(
                select(Job.id, Job.container_id).where(Job.status.in_(list(ACTIVE_STATUSES)))
            )
        }
        owned = set(
            session.scalars(
                select(Job.id).where(
                    Job.status.in_(list(ACTIVE_STATUSES)), leases.live(Job.worker_id)
                )
            )
        )
    owners: dict[uuid.UUID, str] = {}
    fills: set[str] = set()
    unclaimed_warm: set[str] = set()
    for container in containers:
        if container.owner_id.startswith(WARM_OWNER_PREFIX):
            pool_worker = warm_worker(container.owner_id)
            if container.id in warm or (pool_worker in live and pool_worker != worker_id):
                continue  # waiting in this worker's pool, or in another live worker's
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
    for job_id, container_id in active.items():
        if container_id in unclaimed_warm:
            unclaimed_warm.discard(container_id)
            owners[job_id] = container_id
    adopted: dict[uuid.UUID, str] = {}
    failed: set[uuid.UUID] = set()
    with session_scope() as session:
        abandoned = list(
            session.scalars(
                select(Job)
                .where(
                    Job.status.in_(list(ACTIVE_STATUSES)),
                    or_(Job.worker_id.is_(None), ~leases.live(Job.worker_id)),
                )
                .with_for_update(skip_locked=True)
            )
        )
        # Checked again once locked: a lease never comes back to life, but a job may have
        # been adopted by a live worker since the query's snapshot.
        live = leases.live_workers(session)
        for job in abandoned:
            if job.id in in_flight or (job.worker_id is not None and job.worker_id in live):
                owned.add(job.id)
                continue
            container_id = owners.get(job.id)
            if (
                adopt is not None
                and container_id is not None
                and container_id not in fills
                and container_id == job.container_id
                and JobStatus(job.status) is JobStatus.RUNNING
            ):
                log.info("job %s: taken over from worker %s", job.id, job.worker_id)
                job.worker_id = worker_id
                adopted[job.id] = container_id
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
            failed.add(job.id)
            # Billed like any job: from its container's counters, or the worker's last sample.
            metering.record_ended_job_usage(
                session,
                job,
                cpu_decimal(usage) if usage else None,
                usage.memory_max_bytes if usage else None,
            )
            log.warning("job %s failed by the reconciler", job.id)
    for job_id, container_id in adopted.items():
        assert adopt is not None  # noqa: S101 - only then adopted
        adopt(job_id, container_id)
    for owner_id, container_id in owners.items():
        # A job still active that this round neither failed nor adopted is someone's: a live
        # worker's, or another reconciler's right now.
        if owner_id in in_flight or owner_id in adopted or owner_id in owned:
            continue
        if owner_id in active and owner_id not in failed:
            continue
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
