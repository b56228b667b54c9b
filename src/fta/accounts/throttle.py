"""Throttling of password checks, per account and per client address, of sign-ups, per
client address, and of password-reset mails, per address typed and per client address, in
sliding windows kept in Postgres (so every portal process counts alike).
Both are checked before any password is hashed: a refused attempt costs no argon2 memory.

Each check reserves its failure row *before* the password is verified and commits it at
once: concurrent guesses cannot all slip under the limit, and the failure stays recorded
although the request is then refused (and its transaction rolled back). A correct password
forgives the account's failures.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.orm import Session

from fta.accounts.models import LoginFailure, PasswordResetRequest, SignupAttempt
from fta.db import utcnow
from fta.errors import RetryLater
from fta.settings import get_settings

# First keys of pg_advisory_xact_lock(int, int): accounts and addresses never share a lock.
_ACCOUNT_LOCKS = 1
_ADDRESS_LOCKS = 2
_SIGNUP_LOCKS = 3
_RESET_LOCKS = 4
# Password-reset mails: per address typed (known or not), and per client address
# (settings.password_resets_per_account, password_resets_per_ip).
RESET_WINDOW = timedelta(hours=1)


class TooManyAttempts(RetryLater):
    title = "Too many attempts"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "too many failed password attempts for this account or from this address: "
            f"wait {retry_after} seconds before trying again",
            retry_after,
        )


class TooManySignups(RetryLater):
    title = "Too many sign-ups"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"too many accounts were created from this address: wait {retry_after} seconds "
            "before creating another one, or log in to an existing one",
            retry_after,
        )


class TooManyResets(RetryLater):
    title = "Too many password resets"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "too many password-reset mails were asked for this address or from this network: "
            f"check your inbox (and spam folder), or wait {retry_after} seconds",
            retry_after,
        )


def account_key(normalised_email: str) -> str:
    return hashlib.sha256(normalised_email.encode()).hexdigest()


def _blocked_until(
    session: Session, subject: ColumnElement[bool], limit: int, window: timedelta, now: datetime
) -> datetime | None:
    """When the limit-th most recent failure leaves the window; None when under the limit."""
    nth_latest = session.scalars(
        select(LoginFailure.created_at)
        .where(subject, LoginFailure.created_at > now - window)
        .order_by(LoginFailure.created_at.desc())
        .offset(limit - 1)
        .limit(1)
    ).first()
    return None if nth_latest is None else nth_latest + window


def reserve_attempt(session: Session, normalised_email: str, ip: str | None) -> int:
    """Counts this attempt as a failure until `forgive`; raises TooManyAttempts over a limit.
    Returns the reservation, for `withdraw`.

    Commits the session, so call it before the unit of work writes anything. It commits on
    the request's own connection: a second one per request would let a burst of log-ins
    exhaust the pool. A refused attempt is not counted: waiting Retry-After gives a try again.
    """
    settings = get_settings()
    window = timedelta(seconds=settings.login_window_seconds)
    key = account_key(normalised_email)
    # (lock namespace, lock key, the rows counted, their limit): the account first, then the
    # address, always in this order, so two attempts never wait on each other in a cycle.
    limits: list[tuple[int, str, ColumnElement[bool], int]] = [
        (_ACCOUNT_LOCKS, key, LoginFailure.account_key == key, settings.login_max_failures)
    ]
    if ip is not None:
        limits.append(
            (_ADDRESS_LOCKS, ip, LoginFailure.ip == ip, settings.login_max_failures_per_ip)
        )
    session.commit()  # a fresh transaction: the locks below last until its commit
    for namespace, lock_key, _, _ in limits:
        session.execute(select(func.pg_advisory_xact_lock(namespace, func.hashtext(lock_key))))
    now = utcnow()
    session.execute(delete(LoginFailure).where(LoginFailure.created_at <= now - window))
    ends = [
        end
        for _, _, subject, limit in limits
        if (end := _blocked_until(session, subject, limit, window, now)) is not None
    ]
    if ends:
        raise TooManyAttempts(max(1, math.ceil((max(ends) - now).total_seconds())))
    failure = LoginFailure(account_key=key, ip=ip, created_at=now)
    session.add(failure)
    session.commit()
    return failure.id


def withdraw(session: Session, reservation: int) -> None:
    """Uncounts an attempt whose password was never checked (the portal was too busy), so that
    a person told to retry later is not locked out for having been told so. Commits."""
    session.rollback()
    session.execute(delete(LoginFailure).where(LoginFailure.id == reservation))
    session.commit()


def forgive(session: Session, normalised_email: str) -> None:
    """Clears the account's failures (and so their weight on their addresses' counts)."""
    session.execute(
        delete(LoginFailure).where(LoginFailure.account_key == account_key(normalised_email))
    )


def reserve_signup(session: Session, ip: str) -> None:
    """Counts this sign-up from `ip`; raises TooManySignups over the limit.

    Commits the session like `reserve_attempt`, for the same reasons: the count holds even
    when the sign-up then fails, and concurrent sign-ups cannot all slip under the limit.
    """
    settings = get_settings()
    window = timedelta(seconds=settings.signup_window_seconds)
    session.commit()
    session.execute(select(func.pg_advisory_xact_lock(_SIGNUP_LOCKS, func.hashtext(ip))))
    now = utcnow()
    session.execute(delete(SignupAttempt).where(SignupAttempt.created_at <= now - window))
    nth_latest = session.scalars(
        select(SignupAttempt.created_at)
        .where(SignupAttempt.ip == ip, SignupAttempt.created_at > now - window)
        .order_by(SignupAttempt.created_at.desc())
        .offset(settings.signup_max_per_ip - 1)
        .limit(1)
    ).first()
    if nth_latest is not None:
        raise TooManySignups(max(1, math.ceil((nth_latest + window - now).total_seconds())))
    session.add(SignupAttempt(ip=ip, created_at=now))
    session.commit()


def reserve_reset(session: Session, normalised_email: str, ip: str | None) -> None:
    """Counts this request for a password-reset mail, whether or not an account has the
    address (the answer is the same for both); raises TooManyResets over a limit.

    Commits the session like `reserve_attempt`, for the same reasons.
    """
    settings = get_settings()
    key = account_key(normalised_email)
    limits: list[tuple[str, ColumnElement[bool], int]] = [
        (key, PasswordResetRequest.account_key == key, settings.password_resets_per_account)
    ]
    if ip is not None:
        limits.append((ip, PasswordResetRequest.ip == ip, settings.password_resets_per_ip))
    session.commit()
    for lock_key, _, _ in sorted(limits, key=lambda limit: limit[0]):
        session.execute(select(func.pg_advisory_xact_lock(_RESET_LOCKS, func.hashtext(lock_key))))
    now = utcnow()
    session.execute(
        delete(PasswordResetRequest).where(PasswordResetRequest.created_at <= now - RESET_WINDOW)
    )
    ends = []
    for _, subject, limit in limits:
        nth_latest = session.scalars(
            select(PasswordResetRequest.created_at)
            .where(subject, PasswordResetRequest.created_at > now - RESET_WINDOW)
            .order_by(PasswordResetRequest.created_at.desc())
            .offset(limit - 1)
            .limit(1)
        ).first()
        if nth_latest is not None:
            ends.append(nth_latest + RESET_WINDOW)
    if ends:
        raise TooManyResets(max(1, math.ceil((max(ends) - now).total_seconds())))
    session.add(PasswordResetRequest(account_key=key, ip=ip, created_at=now))
    session.commit()
