"""Subscription plans and the container quotas they grant."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Boolean, Integer, Numeric, String
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
    max_bots: Mapped[int] = mapped_column(Integer)
    max_job_seconds: Mapped[int] = mapped_column(Integer)
