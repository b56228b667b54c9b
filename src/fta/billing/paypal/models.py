"""What PayPal told us: webhook events as received, subscriptions, payments, and our catalog's
PayPal products and plans."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Integer,
    LargeBinary,
    Numeric,
    String,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from fta.db import Base, utcnow


class SubscriptionStatus(StrEnum):
    """Our view of a PayPal subscription (see docs/billing.md, the state machine)."""

    PENDING = "pending"  # created, waiting for the buyer's approval
    ACTIVE = "active"
    PAST_DUE = "past_due"  # a payment failed, or PayPal suspended it
    CANCELLED = "cancelled"  # cancelled or expired: final


class EventOutcome(StrEnum):
    APPLIED = "applied"
    UNKNOWN_SUBSCRIPTION = "unknown_subscription"
    IGNORED = "ignored"  # an event type we do not act on
    MALFORMED = "malformed"  # authentic, but without what we need: kept for an operator


class PaymentKind(StrEnum):
    SALE = "sale"
    REFUND = "refund"
    REVERSAL = "reversal"


class PayPalEvent(Base):
    """One verified webhook delivery, its body byte for byte. Forged deliveries never get a
    row: their event id could otherwise squat a real event's."""

    __tablename__ = "paypal_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    event_type: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str | None] = mapped_column(String(64))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(32))


class PayPalCatalogEntry(Base):
    """Our plan `plan_code` as a PayPal product and billing plan at a given price, with the
    VAT PayPal adds: French VAT for clients who pay it, none for those who do not (EU
    businesses under reverse charge, clients outside the EU)."""

    __tablename__ = "paypal_catalog"

    plan_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    tax_percent: Mapped[Decimal] = mapped_column(Numeric(5, 2), primary_key=True)
    product_id: Mapped[str] = mapped_column(String(64))
    paypal_plan_id: Mapped[str] = mapped_column(String(64), unique=True)
    price_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    synced_at: Mapped[datetime] = mapped_column(default=utcnow)


class Subscription(Base):
    __tablename__ = "subscriptions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    paypal_subscription_id: Mapped[str] = mapped_column(String(64), unique=True)
    plan_code: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=SubscriptionStatus.PENDING)
    paypal_status: Mapped[str] = mapped_column(String(32))
    # The subscription as PayPal last showed it: what `status` was derived from.
    last_state: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # What each of its payments must be: this price before tax, plus this VAT (the PayPal
    # plan's when the subscription was made). A sale that differs is not invoiced.
    price_ht_cents: Mapped[int | None] = mapped_column(Integer)
    tax_percent: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    # An operator changed the plan's price: PayPal charges it from the first cycle at least
    # ten days after the change (it tells the buyer by e-mail first). The first sale at this
    # price makes it the subscription's price.
    next_price_ht_cents: Mapped[int | None] = mapped_column(Integer)
    next_price_from: Mapped[datetime | None]
    # A cancelled subscription's end of the last period paid: access lasts until then.
    paid_through: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Payment(Base):
    """A sale of a subscription, or a refund or reversal of one (amounts always positive;
    `kind` gives the direction). Refunds and reversals reach their tenant through `sale_id`,
    whichever of them arrived first."""

    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("kind", "paypal_id"),
        CheckConstraint("amount_cents >= 0", name="amount_cents"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    paypal_id: Mapped[str] = mapped_column(String(64))
    sale_id: Mapped[str] = mapped_column(String(64), index=True)
    paypal_subscription_id: Mapped[str | None] = mapped_column(String(64))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    state: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime]
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set once our invoice (or credit note) for this payment exists.
    invoiced_at: Mapped[datetime | None]
    invoice_ref: Mapped[str | None] = mapped_column(String(64))


class PaymentIssueKind(StrEnum):
    SALE = "sale"  # a subscription payment PayPal holds as pending, or denied
    DISPUTE = "dispute"


class PaymentIssue(Base):
    """A payment that did not simply go through: a sale PayPal holds or denied, or a dispute
    the buyer opened, as PayPal last described it. One row per sale or dispute."""

    __tablename__ = "payment_issues"
    __table_args__ = (UniqueConstraint("kind", "paypal_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    # The sale's id, or the dispute's.
    paypal_id: Mapped[str] = mapped_column(String(64))
    # The sale a dispute is about.
    sale_id: Mapped[str | None] = mapped_column(String(64))
    paypal_subscription_id: Mapped[str | None] = mapped_column(String(64))
    tenant_id: Mapped[str | None] = mapped_column(ForeignKey("tenants.id"), index=True)
    # A sale's state (pending, denied, completed) or a dispute's status (OPEN, RESOLVED...).
    status: Mapped[str] = mapped_column(String(32))
    # A pending sale's reason, a dispute's reason, stage and outcome.
    detail: Mapped[str | None] = mapped_column(String(255))
    amount_cents: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    occurred_at: Mapped[datetime]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
