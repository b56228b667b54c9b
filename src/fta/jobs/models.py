"""Jobs (backtest, hyperopt, data download), their logs and result summaries."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from fta.db import Base, utcnow


class JobKind(StrEnum):
    BACKTEST = "backtest"
    HYPEROPT = "hyperopt"
    DOWNLOAD_DATA = "download-data"


class JobStatus(StrEnum):
    QUEUED = "queued"
    STARTING = "starting"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    OOM_KILLED = "oom_killed"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    {
        JobStatus.SUCCEEDED,
        JobStatus.FAILED,
        JobStatus.CANCELLED,
        JobStatus.TIMED_OUT,
        JobStatus.OOM_KILLED,
    }
)
ACTIVE_STATUSES = frozenset({JobStatus.STARTING, JobStatus.RUNNING})

# The only transitions the state machine allows.
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.STARTING, JobStatus.CANCELLED, JobStatus.FAILED}),
    JobStatus.STARTING: frozenset({JobStatus.RUNNING} | FINAL_STATUSES),
    JobStatus.RUNNING: FINAL_STATUSES,
}


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_queue", "status", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED)
    strategy_version_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("strategy_versions.id")
    )
    config: Mapped[dict[str, Any]] = mapped_column(JSONB)
    max_seconds: Mapped[int] = mapped_column(Integer)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    container_id: Mapped[str | None] = mapped_column(String(64))
    # The worker that claimed or adopted it (its lease's id, fta.worker.leases): only that
    # worker acts on it while its lease is live.
    worker_id: Mapped[str | None] = mapped_column(String(24))
    exit_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    cpu_seconds: Mapped[Decimal | None] = mapped_column(Numeric(14, 3))
    memory_max_bytes: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # When the worker deleted its logs and result file (past the plan's retention or quota).
    output_pruned_at: Mapped[datetime | None]
    # Where the candles it ran on came from (fta.markets.DataSource), set when it starts.
    market_data_source: Mapped[str | None] = mapped_column(String(16))


class JobLogChunk(Base):
    """Redacted, size-capped output of a job, appended in order while it runs."""

    __tablename__ = "job_log_chunks"

    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text)


class JobResult(Base):
    """The schema-validated summary a job printed; never raw tenant files."""

    __tablename__ = "job_results"

    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id"), primary_key=True)
    summary: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class JobArchive(Base):
    """freqtrade's raw result file (backtest zip, hyperopt epochs): a download.

    Written by tenant code: served only as an attachment, and read for its own tenant's pages
    only, bounded and checked (`fta.jobs.result_files`); the worker never parses it.
    """

    __tablename__ = "job_archives"

    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id"), primary_key=True)
    filename: Mapped[str] = mapped_column(String(100))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
