"""Personal API tokens: long-lived bearer credentials a client makes for its scripts.

A token is `fta_pat_` followed by 32 random bytes (URL-safe base64); only its SHA-256 is
stored, so the value is shown once, when it is made, and a copy of the database gives no
usable token. Each has a scope (`read`: GET only; `write`: everything a client can do,
enforced by `fta.accounts.deps`), an optional expiry, and a last use updated at most once a
minute. Revoking one makes it fail at once. Tokens are made from a log-in, never from another
token (a leaked token cannot extend itself), and only by clients.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.orm import Session

from fta import audit
from fta.accounts.models import PersonalToken, Tenant, TokenScope, User
from fta.errors import Conflict, Forbidden, Invalid, NotFound

if TYPE_CHECKING:
    from fta.accounts.service import Principal

PREFIX = "fta_pat_"
_SHAPE = re.compile(r"fta_pat_[A-Za-z0-9_-]{43}")
# The value's characters kept in clear to recognise it: the prefix and four more.
HINT_LENGTH = len(PREFIX) + 4
MAX_ACTIVE_TOKENS = 50
MAX_EXPIRY_DAYS = 365
LAST_USED_RESOLUTION = timedelta(minutes=1)
NAME_PATTERN = re.compile(r"[^\x00-\x1f\x7f]{1,100}")


@dataclass(frozen=True)
class CreatedToken:
    """A new token and its value, which is never shown again."""

    token: PersonalToken
    value: str


def looks_like(value: str) -> bool:
    return value.startswith(PREFIX)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _active(now: datetime) -> list[ColumnElement[bool]]:
    return [
        PersonalToken.revoked_at.is_(None),
        or_(PersonalToken.expires_at.is_(None), PersonalToken.expires_at > now),
    ]


def create(
    session: Session,
    principal: Principal,
    *,
    name: str,
    scope: TokenScope,
    expires_in_days: int | None,
    now: datetime,
    ip: str | None,
) -> CreatedToken:
    if principal.personal_token:
        raise Forbidden(
            "a personal token cannot make tokens: log in with your password "
            "(POST /api/v1/auth/token) to make one"
        )
    if principal.tenant_id is None:
        raise Forbidden("personal tokens are for client accounts")
    name = name.strip()
    if not NAME_PATTERN.fullmatch(name):
        raise Invalid("give the token a name of 1 to 100 characters, without control characters")
    if expires_in_days is not None and not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
        raise Invalid(f"a token expires within 1 to {MAX_EXPIRY_DAYS} days, or never")
    active = session.scalar(
        select(func.count())
        .select_from(PersonalToken)
        .where(PersonalToken.user_id == principal.user_id, *_active(now))
    )
    if (active or 0) >= MAX_ACTIVE_TOKENS:
        raise Conflict(
            f"you have {MAX_ACTIVE_TOKENS} active tokens, the most allowed: revoke unused ones"
        )
    value = PREFIX + secrets.token_urlsafe(32)
    token = PersonalToken(
        user_id=principal.user_id,
        name=name,
        scope=TokenScope(scope),
        token_hash=digest(value),
        hint=value[:HINT_LENGTH],
        created_at=now,
        expires_at=None if expires_in_days is None else now + timedelta(days=expires_in_days),
    )
    session.add(token)
    session.flush()
    audit.service.record(
        session,
        actor=str(principal.user_id),
        tenant_id=principal.tenant_id,
        action="token.created",
        target=str(token.id),
        ip=ip,
    )
    return CreatedToken(token, value)


def list_tokens(session: Session, principal: Principal) -> list[PersonalToken]:
    """The user's tokens not revoked (expired ones too, marked by their expiry), newest
    first."""
    return list(
        session.scalars(
            select(PersonalToken)
            .where(PersonalToken.user_id == principal.user_id, PersonalToken.revoked_at.is_(None))
            .order_by(PersonalToken.created_at.desc(), PersonalToken.id)
        )
    )


def revoke(
    session: Session, principal: Principal, token_id: uuid.UUID, now: datetime, ip: str | None
) -> None:
    """Revokes one of the user's own tokens; another user's, or an unknown one, is NotFound."""
    revoked = session.execute(
        update(PersonalToken)
        .where(
            PersonalToken.id == token_id,
            PersonalToken.user_id == principal.user_id,
            PersonalToken.revoked_at.is_(None),
        )
        .values(revoked_at=now)
        .returning(PersonalToken.id)
    ).first()
    if revoked is None:
        raise NotFound("no such token")
    audit.service.record(
        session,
        actor=str(principal.user_id),
        tenant_id=principal.tenant_id,
        action="token.revoked",
        target=str(token_id),
        ip=ip,
    )


def resolve(
    session: Session, value: str, now: datetime
) -> tuple[PersonalToken, User, str | None, str | None] | None:
    """The live token of this value with its user and tenant's states, or None; notes its use."""
    if not _SHAPE.fullmatch(value):
        return None
    row = session.execute(
        select(PersonalToken, User, Tenant.status, Tenant.billing_status)
        .join(User, User.id == PersonalToken.user_id)
        .outerjoin(Tenant, Tenant.id == User.tenant_id)
        .where(PersonalToken.token_hash == digest(value), *_active(now))
    ).first()
    if row is None:
        return None
    token, user, tenant_status, billing_status = row
    if token.last_used_at is None or token.last_used_at <= now - LAST_USED_RESOLUTION:
        token.last_used_at = now
    return token, user, tenant_status, billing_status
