"""The usage ledger: what each job and bot consumed, the ground truth of usage billing and of
a free trial's allowance; the client's spending cap; an operator's temporary quotas; how full
each account's data disk is."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from fta.db import Base, utcnow


class UsageEvent(Base):
    """Append-only (a database trigger refuses UPDATE, DELETE and inserts into a closed
    period); `event_key` is deterministic, so a replayed sample is the same row."""

    __tablename__ = "usage_events"
    __table_args__ = (
        UniqueConstraint("tenant_id", "event_key"),
        Index("ix_usage_events_tenant_period", "tenant_id", "period"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    event_key: Mapped[str] = mapped_column(String(200))
    subject_kind: Mapped[str] = mapped_column(String(8))
    subject_id: Mapped[uuid.UUID]
    # 'YYYY-MM' (UTC) the event is billed in: its own month, or a later one when it came late.
    period: Mapped[str] = mapped_column(String(7))
    cpu_seconds: Mapped[Decimal] = mapped_column(Numeric(14, 3))
    ram_gb_seconds: Mapped[Decimal] = mapped_column(Numeric(18, 3))
    running_seconds: Mapped[Decimal] = mapped_column(Numeric(14, 3))
    occurred_at: Mapped[datetime]
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    late: Mapped[bool] = mapped_column(Boolean, default=False)


class UsagePeriod(Base):
    """A tenant's month; once `closed_at` is set it takes no event and never reopens.

    The plan it is billed with is copied from the account's when the row is created (a
    trigger keeps it): a later plan change or catalog edit does not reprice the month.
    """

    __tablename__ = "usage_periods"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    closed_at: Mapped[datetime | None]
    plan_code: Mapped[str] = mapped_column(String(32))
    plan_name: Mapped[str] = mapped_column(String(100))
    plan_price_ht_cents: Mapped[int] = mapped_column(Integer)
    plan_included_cpu_hours: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    plan_overage_cpu_hour_eur: Mapped[Decimal] = mapped_column(Numeric(12, 6))
    plan_overage_ram_gb_hour_eur: Mapped[Decimal] = mapped_column(Numeric(12, 6))
    plan_overage_job_minute_eur: Mapped[Decimal] = mapped_column(Numeric(12, 6))


class SpendingCap(Base):
    """The most a client will pay beyond the plan in one month (euros before VAT): once the
    month's overage reaches it, new jobs are refused."""

    __tablename__ = "usage_spending_caps"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    cap_eur_ht: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    set_at: Mapped[datetime]


class QuotaOverride(Base):
    """Quotas an operator grants an account instead of its plan's, until `ends_at` (or until
    ended early): a quota left None is the plan's. One in force per account at most."""

    __tablename__ = "quota_overrides"
    __table_args__ = (
        Index(
            "uq_quota_overrides_tenant_id_in_force",
            "tenant_id",
            unique=True,
            postgresql_where="ended_at IS NULL",
        ),
        CheckConstraint("ends_at > created_at", name="ends_after_it_starts"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    cpu: Mapped[Decimal | None] = mapped_column(Numeric(4, 2))
    memory_mb: Mapped[int | None] = mapped_column(Integer)
    pids: Mapped[int | None] = mapped_column(Integer)
    max_concurrent_jobs: Mapped[int | None] = mapped_column(Integer)
    max_queued_jobs: Mapped[int | None] = mapped_column(Integer)
    max_bots: Mapped[int | None] = mapped_column(Integer)
    max_job_seconds: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))
    ends_at: Mapped[datetime]
    # Ended before `ends_at` by an operator, or replaced by a newer override.
    ended_at: Mapped[datetime | None]


class TenantDiskUsage(Base):
    """An account's data disk (bots' and jobs' files), as the worker last measured it."""

    __tablename__ = "tenant_disk_usage"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    used_bytes: Mapped[int] = mapped_column(BigInteger)
    measured_at: Mapped[datetime]
