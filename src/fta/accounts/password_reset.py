"""Password reset by e-mail: a signed, expiring, single-use link.

The link's token is `<user id>.<expiry, unix seconds>.<HMAC>`, keyed by a key derived from
FTA_SECRET_KEY and bound to the address and to the current password hash: nothing is stored,
and the link dies once used (the new password has a new hash), when the password changes
otherwise, after `TOKEN_HOURS`, or with a new secret key.

Asking for a link answers the same whether an account has the address or not, and is
throttled per address typed and per client address (`throttle.reserve_reset`). A reset
revokes every log-in session of the user, like a password change; it leaves the second factor
as it is (a reset link is no way around it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from datetime import datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fta import audit
from fta.accounts import service, throttle
from fta.accounts.models import AuthSession, User
from fta.accounts.security import hash_password
from fta.errors import Invalid
from fta.mail import service as mail
from fta.settings import get_settings

SUBJECT = "Réinitialisez votre mot de passe — fta"
# The mail's link opens this page of the portal.
RESET_PAGE = "/password/reset"
FORGOT_PAGE = "/password/forgot"
TOKEN_HOURS = 1
_TOKEN = re.compile(r"([0-9a-f]{32})\.([0-9]{1,12})\.([A-Za-z0-9_-]{43})")


def _key() -> bytes:
    secret = get_settings().secret_key.get_secret_value().encode()
    return hmac.new(secret, b"fta password reset", hashlib.sha256).digest()


def _mac(user: User, expires: int) -> str:
    message = f"{user.id.hex}|{user.email}|{user.password_hash}|{expires}".encode()
    digest = hmac.new(_key(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def token_for(user: User, now: datetime) -> str:
    expires = int((now + timedelta(hours=TOKEN_HOURS)).timestamp())
    return f"{user.id.hex}.{expires}.{_mac(user, expires)}"


def request_reset(session: Session, email: str, now: datetime, ip: str | None) -> None:
    """Queues a reset link for the account of `email`, if there is one (in the caller's
    transaction); the caller answers alike either way. Raises TooManyResets over a limit."""
    normalised = service._normalise_email(email)
    throttle.reserve_reset(session, normalised, ip)
    user = session.scalars(select(User).where(User.email == normalised)).first()
    if user is None:
        # Audited too, so that both paths do the same work.
        audit.service.record(
            session, actor="anonymous", action="auth.password_reset_asked.unknown", ip=ip
        )
        return
    link = f"{get_settings().public_url.rstrip('/')}{RESET_PAGE}?" + urlencode(
        {"token": token_for(user, now)}
    )
    body = (
        "Bonjour,\n\n"
        "Pour choisir un nouveau mot de passe pour votre compte fta, ouvrez ce lien :\n\n"
        f"{link}\n\n"
        f"Ce lien est valable {TOKEN_HOURS} heure et ne sert qu'une fois. Si vous n'avez pas "
        "demandé à changer de mot de passe, ignorez ce message : votre mot de passe reste "
        "le même.\n\n"
        "—\n"
        "To choose a new password for your fta account, open the link above. It works once, "
        f"within {TOKEN_HOURS} hour. If you did not ask for it, ignore this message: your "
        "password stays the same.\n"
    )
    mail.queue(session, to=user.email, subject=SUBJECT, body=body, link=link)
    audit.service.record(
        session, actor=str(user.id), tenant_id=user.tenant_id, action="auth.password_reset_asked",
        ip=ip,
    )  # fmt: skip


def _invalid() -> Invalid:
    return Invalid(
        "this password-reset link is invalid, was already used or has expired: ask for a new "
        f"one (POST /api/v1/auth/password/forgot, or the page {FORGOT_PAGE})"
    )


def check(session: Session, token: str, now: datetime, *, lock: bool = False) -> User:
    """The user whose password the token may reset now; Invalid otherwise."""
    match = _TOKEN.fullmatch(token)
    if match is None:
        raise _invalid()
    user_id, expires = uuid.UUID(match[1]), int(match[2])
    if expires < now.timestamp():
        raise _invalid()
    user = session.get(User, user_id, with_for_update=lock)
    if user is None or not hmac.compare_digest(match[3], _mac(user, expires)):
        raise _invalid()
    return user


def reset(session: Session, token: str, new_password: str, now: datetime, ip: str | None) -> User:
    """Sets the new password of the token's user and revokes all of the user's sessions; the
    token dies with the old password. The link also proves the address."""
    service._check_password(new_password)
    # Locked: two uses of one link at once are one reset and one refusal.
    user = check(session, token, now, lock=True)
    user.password_hash = hash_password(new_password)
    user.password_changed_at = now
    if user.email_verified_at is None:
        user.email_verified_at = now
    session.execute(
        update(AuthSession)
        .where(AuthSession.user_id == user.id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    audit.service.record(
        session, actor=str(user.id), tenant_id=user.tenant_id, action="auth.password_reset",
        ip=ip,
    )  # fmt: skip
    return user
