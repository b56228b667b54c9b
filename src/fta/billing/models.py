"""The usage ledger: one row per metered piece of work, and each tenant's usage periods."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from fta.db import Base, utcnow


class UsageAlert(Base):
    """One alert mailed to the client: `threshold_percent` of an allowance used in a month."""

    __tablename__ = "usage_alerts"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    allowance: Mapped[str] = mapped_column(String(16), primary_key=True)
    threshold_percent: Mapped[int] = mapped_column(Integer, primary_key=True)
    sent_at: Mapped[datetime]


class UsageBill(Base):
    """A tenant's closed month as billed: its overage excluding tax (zero: nothing to bill),
    our invoice for it, and the PayPal invoice that collects it, sent, then paid."""

    __tablename__ = "usage_bills"
    __table_args__ = (
        Index(
            "ix_usage_bills_unpaid_checked",
            "last_checked_at",
            postgresql_where=text("sent_at IS NOT NULL AND paid_at IS NULL"),
        ),
    )

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    amount_ht_cents: Mapped[int] = mapped_column(BigInteger)
    invoice_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("invoices.id"))
    paypal_invoice_id: Mapped[str | None] = mapped_column(String(64))
    sent_at: Mapped[datetime | None]
    # When the client paid it, as PayPal reports it.
    paid_at: Mapped[datetime | None]
    # When PayPal was last asked about it while unpaid: the least recently asked go first.
    last_checked_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
