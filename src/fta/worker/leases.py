"""Worker leases: several workers may run against one database (an ECS service that restarts
and scales, or an upgrade where the next worker starts as the last one stops).

Each worker process takes a lease of its own at start (a random id; its host's name beside
it), renews it a few times per `worker_lease_seconds` in a thread of its own, and ends it when
it stops. A job or bot names the worker that owns it (`worker_id`): while that worker's lease
is live, no other worker acts on it; once it has run out (the worker died, or was paused past
it), any worker takes over what it left, by a conditional update under the row's lock, so
that two workers never take the same job or bot.

Expiry is judged by the database's clock alone. A worker also keeps a local bound, measured
on its own monotonic clock from before each renewal: it never believes its lease live longer
than the database does, and stops acting as owner the moment the bound passes (fencing). A
renewal that finds the lease run out takes a new one under a new id: what the old one owned
is adopted again like any dead worker's.
"""

from __future__ import annotations

import logging
import math
import secrets
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import ColumnElement, delete, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import InstrumentedAttribute, Session

from fta.db import session_scope
from fta.operators.models import WorkerLease

log = logging.getLogger(__name__)

# Renewals per lease time: a renewal or two may fail (a database hiccup) before it runs out.
RENEWALS_PER_LEASE = 4
# Leases ended this long ago are deleted when a worker starts.
ENDED_KEPT = timedelta(days=1)


def live(worker_id: InstrumentedAttribute[str | None]) -> ColumnElement[bool]:
    """True where the column names a worker whose lease is live (the database's clock)."""
    return exists().where(WorkerLease.id == worker_id, WorkerLease.expires_at > func.now())


def live_workers(session: Session) -> set[str]:
    """The ids of the leases that are live now."""
    return set(session.scalars(select(WorkerLease.id).where(WorkerLease.expires_at > func.now())))


def is_live(session: Session, worker_id: str | None) -> bool:
    if worker_id is None:
        return False
    return bool(
        session.scalar(
            select(func.count())
            .select_from(WorkerLease)
            .where(WorkerLease.id == worker_id, WorkerLease.expires_at > func.now())
        )
    )


class Lease:
    """This worker process's lease."""

    def __init__(
        self, name: str, seconds: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.name = name[:64]
        self.seconds = seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._id = ""
        self._valid_until = -math.inf

    @property
    def worker_id(self) -> str:
        with self._lock:
            return self._id

    def held(self) -> bool:
        """Whether this worker may act as the owner of what its current lease owns."""
        with self._lock:
            return self._clock() < self._valid_until

    def holds(self, worker_id: str | None) -> bool:
        """Whether `worker_id` is this worker's current lease, and live."""
        with self._lock:
            return worker_id == self._id and self._clock() < self._valid_until

    def acquire(self) -> str:
        """Takes a new lease, under a new id; returns the id."""
        new_id = secrets.token_hex(8)
        started = self._clock()
        with session_scope() as session:
            session.execute(
                delete(WorkerLease).where(WorkerLease.expires_at < func.now() - ENDED_KEPT)
            )
            session.execute(
                insert(WorkerLease).values(
                    id=new_id,
                    name=self.name,
                    started_at=func.now(),
                    renewed_at=func.now(),
                    expires_at=func.now() + timedelta(seconds=self.seconds),
                )
            )
        with self._lock:
            self._id, self._valid_until = new_id, started + self.seconds
        log.info("worker %s holds lease %s (%s s)", self.name, new_id, self.seconds)
        return new_id

    def renew(self) -> bool:
        """Extends the lease; False if it had run out (it is not taken again)."""
        current = self.worker_id
        started = self._clock()
        with session_scope() as session:
            renewed = session.execute(
                update(WorkerLease)
                .where(WorkerLease.id == current, WorkerLease.expires_at > func.now())
                .values(
                    renewed_at=func.now(),
                    expires_at=func.now() + timedelta(seconds=self.seconds),
                )
                .returning(WorkerLease.id)
            ).first()
        with self._lock:
            if self._id == current:
                self._valid_until = started + self.seconds if renewed else -math.inf
        return renewed is not None

    def release(self) -> None:
        """Ends the lease (the worker stops): the others take over what it owned at once."""
        current = self.worker_id
        with self._lock:
            self._valid_until = -math.inf
        with session_scope() as session:
            session.execute(
                update(WorkerLease)
                .where(WorkerLease.id == current, WorkerLease.expires_at > func.now())
                .values(expires_at=func.now())
            )
        log.info("worker %s ended lease %s", self.name, current)

    def keep(self, done: threading.Event, on_lost: Callable[[], None] | None = None) -> None:
        """Renews the lease until `done` is set; one that ran out is replaced by a new one
        (after `on_lost`)."""
        while not done.wait(self.seconds / RENEWALS_PER_LEASE):
            try:
                if self.renew():
                    continue
                log.error(
                    "lease %s ran out before its renewal: its jobs and bots are the other "
                    "workers' now; taking a new lease",
                    self.worker_id,
                )
                if on_lost is not None:
                    on_lost()
                self.acquire()
            except Exception:
                # The database does not answer: the local bound stops this worker acting.
                log.exception("lease %s not renewed; retrying", self.worker_id)
