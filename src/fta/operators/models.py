"""What the operator's console reads that no domain keeps: each worker's heartbeat, and the
leases that say which worker owns which jobs and bots."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from fta.db import Base


class WorkerHeartbeat(Base):
    """A worker's latest round: when, and whether the Docker engine (through the socket
    proxy) and the market-data gateway answered it. The portal never reaches Docker itself:
    this is how it knows."""

    __tablename__ = "worker_heartbeats"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    started_at: Mapped[datetime]
    beat_at: Mapped[datetime]
    docker_ok: Mapped[bool] = mapped_column(Boolean)
    docker_error: Mapped[str | None] = mapped_column(String(300))
    # Containers the worker manages (jobs, bots, warm ones), as the engine listed them.
    containers: Mapped[int | None] = mapped_column(Integer)
    jobs_in_flight: Mapped[int] = mapped_column(Integer)
    gateway_ok: Mapped[bool] = mapped_column(Boolean)
    gateway_error: Mapped[str | None] = mapped_column(String(300))
    # The tenant disk helper's last answer: when the disks were measured, or why they were not.
    disks_measured_at: Mapped[datetime | None]
    disks_error: Mapped[str | None] = mapped_column(String(300))


class WorkerLease(Base):
    """A worker process's lease: while `expires_at` lies ahead, the jobs and bots that name
    it as their worker are its alone. The worker renews it a few times per lease time and ends
    it when it stops; the others take over what a worker whose lease ran out left."""

    __tablename__ = "worker_leases"

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))  # its host's name
    started_at: Mapped[datetime]
    renewed_at: Mapped[datetime]
    expires_at: Mapped[datetime]
