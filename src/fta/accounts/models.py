"""Tenants (client accounts), their users, their login sessions and personal API tokens,
their second factor (TOTP) and its recovery codes, and the rows the throttles count."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fta.db import Base, utcnow
from fta.plans.models import Plan


class Role(StrEnum):
    CLIENT = "client"
    ADMIN = "admin"


class TenantStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    # Its owner deleted the account: refused at once everywhere, while the worker erases it
    # (fta.privacy.erasure).
    ERASING = "erasing"
    # Erased: what is left is the anonymised row its invoices and usage ledger belong to.
    ERASED = "erased"


# The account was deleted: nobody logs in, nothing runs, billing leaves it as it is.
CLOSED = frozenset({TenantStatus.ERASING, TenantStatus.ERASED})


class BillingStatus(StrEnum):
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    SUSPENDED = "suspended"
    CANCELLED = "cancelled"


# Billing states in which the account itself is suspended (bots stopped, no job claimed).
BLOCKED = frozenset({BillingStatus.SUSPENDED, BillingStatus.CANCELLED})


class Tenant(Base):
    __tablename__ = "tenants"

    # 8 lowercase base32 characters: fits Docker names and 15-character bridge names.
    id: Mapped[str] = mapped_column(String(8), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default=TenantStatus.ACTIVE)
    # The tenant's network slot (fta.worker.network_slots): taken when the worker first
    # needs its network, freed when the network is removed unused; None: holds none.
    subnet_index: Mapped[int | None] = mapped_column(Integer, unique=True)
    # When the worker last needed the tenant's network (a job or a bot start).
    network_used_at: Mapped[datetime | None]
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Suspended by an operator (fta.operators), with the reason its client is shown; None
    # otherwise. A payment does not lift it: only an operator does.
    suspension_reason: Mapped[str | None] = mapped_column(String(500))
    suspended_at: Mapped[datetime | None]

    # Billing state (fta.billing.account_states) and the identity invoices are made out to.
    trial_ends_at: Mapped[datetime | None]
    billing_status: Mapped[str] = mapped_column(String(16), default="trialing")
    grace_until: Mapped[datetime | None]
    pending_plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id"))
    pending_plan_period: Mapped[str | None] = mapped_column(String(7))
    customer_type: Mapped[str] = mapped_column(String(16), default="private")
    legal_name: Mapped[str | None] = mapped_column(String(200))
    address_line1: Mapped[str | None] = mapped_column(String(200))
    address_line2: Mapped[str | None] = mapped_column(String(200))
    postcode: Mapped[str | None] = mapped_column(String(16))
    city: Mapped[str | None] = mapped_column(String(100))
    country: Mapped[str | None] = mapped_column(String(2))
    siren: Mapped[str | None] = mapped_column(String(9))
    vat_number: Mapped[str | None] = mapped_column(String(40))
    # An EU VAT number outside France: VIES's verdict (fta.billing.vies), and the date and
    # consultation number of the check that verified it, the evidence for reverse charge.
    vat_number_status: Mapped[str | None] = mapped_column(String(16))
    vat_number_checked_at: Mapped[datetime | None]
    vat_number_check_ref: Mapped[str | None] = mapped_column(String(64))

    plan: Mapped[Plan] = relationship(lazy="joined", innerjoin=True, foreign_keys=[plan_id])


class User(Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[str | None] = mapped_column(ForeignKey("tenants.id"), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16), default=Role.CLIENT)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set when the user opened the link mailed at sign-up (fta.accounts.verification).
    email_verified_at: Mapped[datetime | None]
    # Two-factor log-in (fta.accounts.two_factor): the TOTP secret, encrypted with a key
    # derived from FTA_SECRET_KEY and bound to the user; set when the user confirmed it.
    totp_secret: Mapped[str | None] = mapped_column(String(200))
    totp_enabled_at: Mapped[datetime | None]
    # The time step of the last code accepted: a code is never accepted twice.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)


class AuthSession(Base):
    """One issued access token; deleting or revoking the row revokes the token."""

    __tablename__ = "auth_sessions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class TokenScope(StrEnum):
    """What a credential may do: `read` only reads (GET), `write` everything a client can."""

    READ = "read"
    WRITE = "write"


class PersonalToken(Base):
    """A personal API token (fta.accounts.personal_tokens): a bearer credential a client makes
    for scripts. Only the SHA-256 of its value is kept; the value is shown once."""

    __tablename__ = "personal_tokens"
    __table_args__ = (
        CheckConstraint(f"scope IN ({', '.join(repr(s.value) for s in TokenScope)})", name="scope"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    scope: Mapped[str] = mapped_column(String(8))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The value's first characters, so that its owner recognises it in the list.
    hint: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    # Updated at most once a minute.
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class RecoveryCode(Base):
    """A single-use code that stands in for the second factor (a lost phone); only its keyed
    digest is kept."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    used_at: Mapped[datetime | None]


class LoginFailure(Base):
    """One failed password check (or one still being checked), kept for the throttle's window.

    `account_key` is a digest of the normalised email typed, whether or not an account has
    it: the throttle answers alike for known and unknown addresses, and the table holds no
    address in clear.
    """

    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_account_key_created_at", "account_key", "created_at"),
        Index("ix_login_failures_ip_created_at", "ip", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    account_key: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(45))
    created_at: Mapped[datetime] = mapped_column(index=True)


class SignupAttempt(Base):
    """One sign-up from a client address, kept for the sign-up throttle's window."""

    __tablename__ = "signup_attempts"
    __table_args__ = (Index("ix_signup_attempts_ip_created_at", "ip", "created_at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    ip: Mapped[str] = mapped_column(String(45))
    created_at: Mapped[datetime] = mapped_column(index=True)


class PasswordResetRequest(Base):
    """One request for a password-reset mail, kept for the throttle's window; keyed like
    `LoginFailure` (a digest of the address typed, known or not)."""

    __tablename__ = "password_reset_requests"
    __table_args__ = (
        Index("ix_password_reset_requests_account_key_created_at", "account_key", "created_at"),
        Index("ix_password_reset_requests_ip_created_at", "ip", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    account_key: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(45))
    created_at: Mapped[datetime] = mapped_column(index=True)
