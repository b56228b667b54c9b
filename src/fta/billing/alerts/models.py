"""Billing alerts: one open row per subject (`key`), counted while the cause persists."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from fta.db import Base, utcnow


class BillingAlert(Base):
    """Something in billing an operator must look at. A `blocking` alert quarantines its
    subject: the billing round leaves that item alone until the alert is resolved, then tries
    it again. A resolved alert is history; the same cause later opens a new one."""

    __tablename__ = "billing_alerts"
    __table_args__ = (
        Index(
            "uq_billing_alerts_open_key",
            "key",
            unique=True,
            postgresql_where=text("resolved_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    # The subject, e.g. 'payment:42' or 'usage-bill:ab12cd34:2026-10'.
    key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(64))
    tenant_id: Mapped[str | None] = mapped_column(ForeignKey("tenants.id"), index=True)
    message: Mapped[str] = mapped_column(Text)
    blocking: Mapped[bool] = mapped_column(Boolean, default=False)
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(100))
    resolution: Mapped[str | None] = mapped_column(Text)
