"""Bots (long-running dry-run freqtrade), their logs and their trade snapshots."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from fta.db import Base, utcnow


class DesiredState(StrEnum):
    """What the client asked for; only the API writes it."""

    RUNNING = "running"
    STOPPED = "stopped"


class ActualState(StrEnum):
    """What the container is doing; only the worker writes it (see `TRANSITIONS`)."""

    STOPPED = "stopped"  # no container (a new bot starts here)
    STARTING = "starting"  # its container created and started, freqtrade not running yet
    RUNNING = "running"
    STOPPING = "stopping"  # its container being stopped and removed
    CRASHED = "crashed"  # the container exited on its own or could not start


TRANSITIONS: dict[ActualState, frozenset[ActualState]] = {
    ActualState.STOPPED: frozenset({ActualState.STARTING}),
    ActualState.STARTING: frozenset(
        {ActualState.RUNNING, ActualState.STOPPING, ActualState.STOPPED, ActualState.CRASHED}
    ),
    ActualState.RUNNING: frozenset(
        {ActualState.STOPPING, ActualState.STOPPED, ActualState.CRASHED}
    ),
    ActualState.STOPPING: frozenset({ActualState.STOPPED, ActualState.CRASHED}),
    ActualState.CRASHED: frozenset({ActualState.STARTING, ActualState.STOPPED}),
}
"""The bot's lifecycle: the only transitions of `actual_state` there are. The worker's
supervisor (fta.worker.bots) makes them, each through `fta.bots.service.advance`, which refuses
any other; docs/architecture.md ("Bots") draws the same diagram.

- stopped -> starting: the bot should run; its container is created and started.
- crashed -> starting: the same after a crash, once its back-off is over (counted as a restart).
- starting -> running: the bot's report says freqtrade runs.
- starting, running -> stopping: the bot should not run, or restart: its container is stopped
  and removed in the background.
- stopping -> stopped: its container is gone.
- starting, running -> stopped: it should not run, and its container is already gone.
- crashed -> stopped: it should not run any more after a crash.
- starting, running, stopping -> crashed: its container exited on its own, vanished or could
  not start.
"""
# Without a container: nothing for the worker to stop or remove.
AT_REST = frozenset({ActualState.STOPPED, ActualState.CRASHED})


class Bot(Base):
    __tablename__ = "bots"
    __table_args__ = (
        # A name is unique among a tenant's live bots; deleted ones keep theirs.
        Index(
            "uq_bots_tenant_name_live",
            "tenant_id",
            "name",
            unique=True,
            postgresql_where=text("deleted_at IS NULL"),
        ),
        Index("ix_bots_states", "desired_state", "actual_state"),
        CheckConstraint(
            f"desired_state IN ({', '.join(repr(s.value) for s in DesiredState)})",
            name="desired_state",
        ),
        CheckConstraint(
            f"actual_state IN ({', '.join(repr(s.value) for s in ActualState)})",
            name="actual_state",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    strategy_version_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("strategy_versions.id"))
    config: Mapped[dict[str, Any]] = mapped_column(JSONB)
    desired_state: Mapped[str] = mapped_column(String(16), default=DesiredState.STOPPED)
    actual_state: Mapped[str] = mapped_column(String(16), default=ActualState.STOPPED)
    # Set by a restart request on a running bot; the worker clears it once it has restarted.
    restart_requested_at: Mapped[datetime | None]
    container_id: Mapped[str | None] = mapped_column(String(64))
    # The container's address on its tenant network, where its freqtrade API listens: set by
    # the worker once the container runs, cleared when it stops (fta.freqtrade.bot_api).
    api_address: Mapped[str | None] = mapped_column(String(15))
    # Which secret key its container's API secrets come from (fta.bots.relay.key_id): during a
    # rotation of FTA_SECRET_KEY, a bot started before it keeps the previous key's. None: a
    # container started before ids were kept.
    api_key_id: Mapped[str | None] = mapped_column(String(16))
    # The worker that converges it (its lease's id, fta.worker.leases): the others leave it
    # alone while that worker's lease is live.
    worker_id: Mapped[str | None] = mapped_column(String(24))
    # Automatic restarts after crashes since the client last started or restarted the bot.
    restarts: Mapped[int] = mapped_column(Integer, default=0)
    restart_backoff_until: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    last_heartbeat_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_log_lines: Mapped[str | None] = mapped_column(Text)
    # The latest schema-validated snapshot from the container: open trades, profit, balance.
    status: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    status_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None]


class BotLog(Base):
    """Redacted, size-capped output of a bot, in order; only the latest chunks are kept."""

    __tablename__ = "bot_logs"

    bot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bots.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BotTrade(Base):
    """One trade of a bot as its container last reported it (a snapshot, overwritten)."""

    __tablename__ = "bot_trades"

    bot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bots.id"), primary_key=True)
    trade_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pair: Mapped[str] = mapped_column(String(41))
    is_open: Mapped[bool] = mapped_column(Boolean)
    open_date: Mapped[datetime]
    close_date: Mapped[datetime | None]
    amount: Mapped[Decimal] = mapped_column(Numeric(30, 12))
    stake_amount: Mapped[Decimal] = mapped_column(Numeric(30, 12))
    open_rate: Mapped[Decimal] = mapped_column(Numeric(30, 12))
    close_rate: Mapped[Decimal | None] = mapped_column(Numeric(30, 12))
    profit_abs: Mapped[Decimal | None] = mapped_column(Numeric(30, 12))
    profit_ratio: Mapped[Decimal | None] = mapped_column(Numeric(20, 10))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class BotRun(Base):
    """One container run of a bot and what it consumed: the bots' metering samples.

    `cpu_seconds` is the container's cumulative CPU time at `sampled_at` and
    `memory_max_bytes` its peak; running time is `(ended_at or sampled_at) - started_at`.
    """

    __tablename__ = "bot_runs"
    __table_args__ = (
        CheckConstraint("cpu_seconds >= 0", name="cpu_seconds"),
        CheckConstraint("memory_max_bytes >= 0", name="memory_max_bytes"),
    )

    container_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    bot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bots.id"), index=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    started_at: Mapped[datetime]
    sampled_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    cpu_seconds: Mapped[Decimal] = mapped_column(Numeric(14, 3))
    memory_max_bytes: Mapped[int] = mapped_column(BigInteger)
