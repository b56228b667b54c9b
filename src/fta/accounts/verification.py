"""E-mail verification: a signed, expiring link mailed at sign-up. An account runs no job and
no bot before its address is verified, so a flood of sign-ups with made-up addresses costs
the platform nothing but rows.

The link's token is `<user id>.<expiry, unix seconds>.<HMAC>`, keyed by a key derived from
FTA_SECRET_KEY and bound to the address: nothing is stored, a changed address or a new
secret key invalidates it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from datetime import datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy.orm import Session

from fta import audit
from fta.accounts.models import User
from fta.accounts.service import Principal
from fta.errors import Conflict, Forbidden, Invalid, NotFound, RetryLater
from fta.mail import service as mail
from fta.settings import get_settings

SUBJECT = "Confirmez votre adresse e-mail — fta"
VERIFY_PATH = "/api/v1/auth/verify-email"
# The mail's link opens this page of the portal, which verifies as VERIFY_PATH does.
VERIFY_PAGE = "/verify-email"
RESEND_PATH = "/api/v1/auth/verify-email/resend"
_TOKEN = re.compile(r"([0-9a-f]{32})\.([0-9]{1,12})\.([A-Za-z0-9_-]{43})")


class EmailNotVerified(Forbidden):
    title = "E-mail address not verified"


def _key() -> bytes:
    secret = get_settings().secret_key.get_secret_value().encode()
    return hmac.new(secret, b"fta email verification", hashlib.sha256).digest()


def _mac(user_id: uuid.UUID, email: str, expires: int) -> str:
    message = f"{user_id.hex}|{email}|{expires}".encode()
    digest = hmac.new(_key(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def token_for(user: User, now: datetime) -> str:
    hours = get_settings().email_verification_hours
    expires = int((now + timedelta(hours=hours)).timestamp())
    return f"{user.id.hex}.{expires}.{_mac(user.id, user.email, expires)}"


def send_verification(session: Session, user: User, now: datetime) -> None:
    """Queues the verification mail (in the caller's transaction)."""
    settings = get_settings()
    link = f"{settings.public_url.rstrip('/')}{VERIFY_PAGE}?" + urlencode(
        {"token": token_for(user, now)}
    )
    body = (
        "Bonjour,\n\n"
        "Confirmez votre adresse e-mail pour lancer vos jobs et vos bots sur fta :\n\n"
        f"{link}\n\n"
        f"Ce lien est valable {settings.email_verification_hours} heures. Si vous n'avez pas "
        "créé de compte fta, ignorez ce message.\n\n"
        "—\n"
        "Confirm your e-mail address to run jobs and bots on fta: open the link above.\n"
    )
    mail.queue(session, to=user.email, subject=SUBJECT, body=body, link=link)


def verify(session: Session, token: str, now: datetime, ip: str | None) -> User:
    """Marks the address of the token's user verified; the same link works again."""
    invalid = Invalid(
        "this verification link is invalid or has expired: sign in and ask for a new one "
        f"(POST {RESEND_PATH})"
    )
    match = _TOKEN.fullmatch(token)
    if match is None:
        raise invalid
    user_id, expires = uuid.UUID(match[1]), int(match[2])
    user = session.get(User, user_id, with_for_update=True)
    if user is None or expires < now.timestamp():
        raise invalid
    if not hmac.compare_digest(match[3], _mac(user.id, user.email, expires)):
        raise invalid
    if user.email_verified_at is None:
        user.email_verified_at = now
        audit.service.record(
            session, actor=str(user.id), tenant_id=user.tenant_id, action="account.verify_email",
            ip=ip,
        )  # fmt: skip
    return user


def resend(session: Session, principal: Principal, now: datetime) -> User:
    user = _user(session, principal)
    if user.email_verified_at is not None:
        raise Conflict(f"{user.email} is already verified")
    settings = get_settings()
    sent = mail.queued_since(session, user.email, now - timedelta(hours=1), SUBJECT)
    if sent >= settings.verification_mails_per_hour:
        raise RetryLater(
            f"{sent} verification mails were sent to {user.email} within the hour: check your "
            "inbox (and spam folder), or try again later",
            retry_after=3600,
        )
    send_verification(session, user, now)
    return user


def require_verified(session: Session, principal: Principal) -> None:
    """Refuses (403) a start by an account whose address is not verified yet."""
    user = _user(session, principal)
    if user.email_verified_at is None:
        raise EmailNotVerified(
            f"verify your e-mail address first: open the link we sent to {user.email} "
            f"(POST {RESEND_PATH} sends another)"
        )


def _user(session: Session, principal: Principal) -> User:
    user = session.get(User, principal.user_id)
    if user is None:
        raise NotFound("unknown user")
    return user
