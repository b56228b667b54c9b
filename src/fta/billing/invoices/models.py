"""Invoices and credit notes: immutable rows (a database trigger refuses UPDATE and DELETE)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fta.db import Base


class Series(StrEnum):
    INVOICE = "F"
    CREDIT_NOTE = "A"


class Kind(StrEnum):
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"


class VatRegime(StrEnum):
    FRANCE = "fr"  # French VAT: clients in France, and private clients elsewhere in the EU
    REVERSE_CHARGE = "reverse_charge"  # EU business outside France: the client accounts VAT
    OUTSIDE_EU = "outside_eu"  # place of supply outside the EU: no French VAT


class InvoiceCounter(Base):
    """The last number used per series and year; its row is locked while a number is taken."""

    __tablename__ = "invoice_counters"

    series: Mapped[str] = mapped_column(String(1), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_value: Mapped[int] = mapped_column(Integer)


class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = (
        CheckConstraint("total_ht_cents + total_vat_cents = total_ttc_cents", name="totals_add_up"),
        CheckConstraint(
            "(kind = 'credit_note') = (credits_invoice_id IS NOT NULL)", name="credit_note_ref"
        ),
        Index(
            "uq_invoices_kind_payment_ref",
            "kind",
            "payment_ref",
            unique=True,
            postgresql_where=text("payment_ref IS NOT NULL"),
        ),
        Index("ix_invoices_tenant_id_issued_at", "tenant_id", "issued_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    series: Mapped[str] = mapped_column(String(1))
    year: Mapped[int] = mapped_column(Integer)
    sequence: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    credits_invoice_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("invoices.id"))
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    issued_at: Mapped[datetime]
    due_on: Mapped[date]
    period_start: Mapped[date]
    period_end: Mapped[date]
    seller: Mapped[dict[str, Any]] = mapped_column(JSONB)
    client: Mapped[dict[str, Any]] = mapped_column(JSONB)
    currency: Mapped[str] = mapped_column(String(3))
    total_ht_cents: Mapped[int] = mapped_column(BigInteger)
    total_vat_cents: Mapped[int] = mapped_column(BigInteger)
    total_ttc_cents: Mapped[int] = mapped_column(BigInteger)
    vat_rate: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    vat_regime: Mapped[str] = mapped_column(String(16))
    mentions: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    payment_ref: Mapped[str | None] = mapped_column(String(128))
    facturx: Mapped[bool]
    pdf: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)

    lines: Mapped[list[InvoiceLine]] = relationship(
        order_by="InvoiceLine.position", lazy="selectin"
    )


class InvoiceLine(Base):
    __tablename__ = "invoice_lines"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    invoice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("invoices.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(String(300))
    quantity: Mapped[Decimal] = mapped_column(Numeric(14, 4))
    unit_price_ht: Mapped[Decimal] = mapped_column(Numeric(14, 4))
    line_ht_cents: Mapped[int] = mapped_column(BigInteger)
    vat_rate: Mapped[Decimal] = mapped_column(Numeric(5, 2))
