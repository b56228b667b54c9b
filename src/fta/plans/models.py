"""Subscription plans: the container quotas they grant, their price and overage rates."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from fta.db import Base


class Plan(Base):
    __tablename__ = "plans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    cpu: Mapped[Decimal] = mapped_column(Numeric(4, 2))
    memory_mb: Mapped[int] = mapped_column(Integer)
    pids: Mapped[int] = mapped_column(Integer)
    disk_mb: Mapped[int] = mapped_column(Integer)
    max_concurrent_jobs: Mapped[int] = mapped_column(Integer)
    # Jobs waiting for a slot: past it, a submission is refused (429) and nothing is queued.
    max_queued_jobs: Mapped[int] = mapped_column(Integer, default=10)
    max_bots: Mapped[int] = mapped_column(Integer)
    max_job_seconds: Mapped[int] = mapped_column(Integer)
    # What a tenant stores, whichever strategies (hidden ones too) or jobs it comes from: past
    # a strategy quota a new version is refused (409); job logs and result files are pruned by
    # the worker once older than the retention, and oldest first past the byte quota.
    max_strategy_versions: Mapped[int] = mapped_column(BigInteger, default=500)
    max_strategy_bytes: Mapped[int] = mapped_column(BigInteger, default=32 * 1024 * 1024)
    job_output_retention_days: Mapped[int] = mapped_column(BigInteger, default=30)
    max_job_output_bytes: Mapped[int] = mapped_column(BigInteger, default=1024 * 1024 * 1024)
    # Monthly fee before VAT, in euro cents.
    price_ht_cents: Mapped[int] = mapped_column(Integer, default=0)
    included_cpu_hours: Mapped[Decimal] = mapped_column(Numeric(10, 2), default=Decimal(0))
    # Overage rates in EUR before VAT.
    overage_cpu_hour_eur: Mapped[Decimal] = mapped_column(Numeric(12, 6), default=Decimal(0))
    overage_ram_gb_hour_eur: Mapped[Decimal] = mapped_column(Numeric(12, 6), default=Decimal(0))
    overage_job_minute_eur: Mapped[Decimal] = mapped_column(Numeric(12, 6), default=Decimal(0))
    # An inactive plan is no longer offered; tenants already on it keep it.
    active: Mapped[bool] = mapped_column(Boolean, default=True)
