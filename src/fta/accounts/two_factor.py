"""Two-factor log-in, optional: a time-based one-time code (TOTP, RFC 6238: six digits every
30 seconds from an authenticator app), or one of ten single-use recovery codes.

- The TOTP secret is stored encrypted (AES-GCM under a key derived from FTA_SECRET_KEY, bound
  to the user's id: a copied value does not decrypt for another user). It is never logged.
- While it is being set up, the new secret travels in the form, sealed the same way and
  expiring (`ENROLMENT_SECONDS`): nothing is stored before the user proves, with a code, that
  the app holds it.
- A code is accepted within one step before or after now, and never twice: the last step
  accepted is stored and a code must be of a later one.
- Recovery codes are shown once; only a keyed digest of each is kept, and each serves once.
- Code checks count as failed log-ins until one succeeds (`fta.accounts.throttle`), so codes
  cannot be guessed faster than passwords.
- Between the password and the code, the portal's log-in keeps a pending token
  (`pending_token`): signed, bound to the user's password hash and secret, expiring after
  `PENDING_LOGIN_SECONDS`. It opens no session.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime

import pyotp
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from fta import audit
from fta.accounts.models import RecoveryCode, User
from fta.errors import Conflict, Unauthorized
from fta.settings import get_settings

ISSUER = "fta"
STEP_SECONDS = 30
# Steps accepted either side of now: an app's clock a little off, a code typed late.
DRIFT_STEPS = 1
ENROLMENT_SECONDS = 15 * 60
PENDING_LOGIN_SECONDS = 5 * 60
RECOVERY_CODE_COUNT = 10
# 31 characters that no one confuses (no 0/o, 1/l/i), 12 per code: about 59 bits each.
_RECOVERY_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"  # pragma: allowlist secret
_RECOVERY_LENGTH = 12
_TOTP_CODE = re.compile(r"[0-9]{6}")
_PENDING = re.compile(r"([0-9a-f]{32})\.([0-9]{1,12})\.([A-Za-z0-9_-]{43})")


class CodeRequired(Unauthorized):
    """The password was right and the account has two-factor log-in: the code is missing.
    `pending` lets the portal's log-in ask for it in a second step."""

    title = "Two-factor code required"

    def __init__(self, pending: str) -> None:
        super().__init__(
            "two-factor code required: send the 6-digit code of your authenticator app (or "
            "one of your recovery codes) as `otp`, with your e-mail and password"
        )
        self.pending = pending


class LoginExpired(Unauthorized):
    title = "Log-in expired"


def enabled(user: User) -> bool:
    return user.totp_secret is not None and user.totp_enabled_at is not None


# --- keys and sealing -----------------------------------------------------------------------


def _derived(purpose: bytes, secret: bytes | None = None) -> bytes:
    """A key of its own for `purpose`, from the current secret key or the one given."""
    secret = secret if secret is not None else get_settings().secret_keys()[0]
    return hmac.new(secret, b"fta two-factor " + purpose, hashlib.sha256).digest()


def _seal(purpose: bytes, user_id: uuid.UUID, plaintext: str) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(_derived(b"encryption")).encrypt(
        nonce, plaintext.encode(), purpose + b"|" + user_id.bytes
    )
    return base64.urlsafe_b64encode(nonce + sealed).decode()


def _unseal(purpose: bytes, user_id: uuid.UUID, sealed: str) -> tuple[str, bool] | None:
    """The plaintext, and whether it was sealed under the current key (else under the
    previous one, during a rotation); None when no key opens it."""
    try:
        raw = base64.urlsafe_b64decode(sealed.encode())
    except (ValueError, binascii.Error):
        return None
    for index, secret in enumerate(get_settings().secret_keys()):
        try:
            plain = AESGCM(_derived(b"encryption", secret)).decrypt(
                raw[:12], raw[12:], purpose + b"|" + user_id.bytes
            )
            return plain.decode(), index == 0
        except (InvalidTag, ValueError, UnicodeError):
            continue
    return None


def _secret_of(user: User) -> str | None:
    """The user's TOTP secret; sealed again under the current key when the previous one
    sealed it (the caller's transaction keeps that)."""
    if user.totp_secret is None:
        return None
    opened = _unseal(b"secret", user.id, user.totp_secret)
    if opened is None:
        return None
    secret, current = opened
    if not current:
        user.totp_secret = _seal(b"secret", user.id, secret)
    return secret


# --- codes ----------------------------------------------------------------------------------


def _step(now: datetime) -> int:
    return int(now.timestamp()) // STEP_SECONDS


def _matching_step(secret: str, code: str, now: datetime, after: int | None) -> int | None:
    """The step, later than `after`, whose code `code` is; None when it is none's."""
    if not _TOTP_CODE.fullmatch(code):
        return None
    totp = pyotp.TOTP(secret, interval=STEP_SECONDS)
    current = _step(now)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if after is not None and step <= after:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _normalised(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


def _recovery_digest(user_id: uuid.UUID, code: str, secret: bytes | None = None) -> str:
    message = f"{user_id.hex}|{_normalised(code)}".encode()
    return hmac.new(_derived(b"recovery codes", secret), message, hashlib.sha256).hexdigest()


def _recovery_digests(user_id: uuid.UUID, code: str) -> list[str]:
    """The code's digest under each secret key in use (codes made before a rotation)."""
    return [_recovery_digest(user_id, code, key) for key in get_settings().secret_keys()]


def _new_recovery_codes(session: Session, user: User, now: datetime) -> list[str]:
    """Replaces the user's recovery codes with new ones; returns them, grouped by four."""
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH))
        codes.append("-".join(raw[i : i + 4] for i in range(0, _RECOVERY_LENGTH, 4)))
        session.add(
            RecoveryCode(user_id=user.id, code_hash=_recovery_digest(user.id, raw), created_at=now)
        )
    return codes


def check_code(session: Session, user: User, code: str, now: datetime, ip: str | None) -> bool:
    """Whether `code` is a code of the user's app not used yet, or an unused recovery code;
    uses it. The caller holds the user's row locked (`locked_user`)."""
    secret = _secret_of(user)
    if not enabled(user) or secret is None:
        return False
    code = _normalised(code)
    if len(code) == len("000000"):
        step = _matching_step(secret, code, now, user.totp_last_step)
        if step is None:
            return False
        user.totp_last_step = step
        return True
    if len(code) != _RECOVERY_LENGTH:
        return False
    used = session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash.in_(_recovery_digests(user.id, code)),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=now)
        .returning(RecoveryCode.id)
    ).first()
    if used is None:
        return False
    audit.service.record(
        session, actor=str(user.id), tenant_id=user.tenant_id, action="auth.recovery_code_used",
        ip=ip,
    )  # fmt: skip
    return True


def locked_user(session: Session, user_id: uuid.UUID) -> User:
    """The user's row, locked until the transaction ends: two uses of one code at once are
    one success and one refusal."""
    user = session.get(User, user_id, with_for_update=True, populate_existing=True)
    if user is None:
        raise Unauthorized("this account no longer exists")
    return user


def recovery_codes_left(session: Session, user_id: uuid.UUID) -> int:
    count = session.scalar(
        select(func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
    )
    return count or 0


# --- setting it up and turning it off -------------------------------------------------------


@dataclass(frozen=True)
class Enrolment:
    """A secret being set up: shown to the user (as text and as an otpauth:// URI), and sealed
    into the form that confirms it."""

    secret: str = field(repr=False)
    uri: str = field(repr=False)
    sealed: str


def start_enrolment(user: User, now: datetime) -> Enrolment:
    if enabled(user):
        raise Conflict("two-factor log-in is already on: turn it off first to change the app")
    secret = pyotp.random_base32()
    sealed = _seal(b"enrolment", user.id, f"{int(now.timestamp())}|{secret}")
    return _enrolment(user, secret, sealed)


def _enrolment(user: User, secret: str, sealed: str) -> Enrolment:
    uri = pyotp.TOTP(secret, interval=STEP_SECONDS).provisioning_uri(
        name=user.email, issuer_name=ISSUER
    )
    return Enrolment(secret, uri, sealed)


def resume_enrolment(user: User, sealed: str, now: datetime) -> Enrolment | None:
    """The enrolment of a sealed form value, while it is fresh; None otherwise."""
    opened = _unseal(b"enrolment", user.id, sealed)
    if opened is None:
        return None
    started, _, secret = opened[0].partition("|")
    if not started.isdigit() or now.timestamp() - int(started) > ENROLMENT_SECONDS:
        return None
    return _enrolment(user, secret, sealed)


def confirm_enrolment(
    session: Session, user: User, enrolment: Enrolment, code: str, now: datetime, ip: str | None
) -> list[str] | None:
    """Turns two-factor log-in on if `code` is the app's current code; returns the new
    recovery codes (to show once), or None for a wrong code. `user` is locked."""
    if enabled(user):
        raise Conflict("two-factor log-in is already on")
    step = _matching_step(enrolment.secret, _normalised(code), now, None)
    if step is None:
        return None
    user.totp_secret = _seal(b"secret", user.id, enrolment.secret)
    user.totp_enabled_at = now
    user.totp_last_step = step  # the confirming code does not log in again
    codes = _new_recovery_codes(session, user, now)
    audit.service.record(
        session, actor=str(user.id), tenant_id=user.tenant_id, action="auth.2fa_enabled", ip=ip
    )
    return codes


def renew_recovery_codes(session: Session, user: User, now: datetime, ip: str | None) -> list[str]:
    """New recovery codes (the old ones stop working), for a user who just gave a code."""
    codes = _new_recovery_codes(session, user, now)
    audit.service.record(
        session, actor=str(user.id), tenant_id=user.tenant_id,
        action="auth.recovery_codes_renewed", ip=ip,
    )  # fmt: skip
    return codes


def turn_off(session: Session, user: User, ip: str | None) -> None:
    """Turns two-factor log-in off, for a user who just gave the password and a code."""
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    audit.service.record(
        session, actor=str(user.id), tenant_id=user.tenant_id, action="auth.2fa_disabled", ip=ip
    )


# --- the pending log-in between the password and the code -----------------------------------


def _pending_mac(user: User, expires: int) -> str:
    message = f"{user.id.hex}|{user.password_hash}|{user.totp_secret}|{expires}".encode()
    digest = hmac.new(_derived(b"pending log-in"), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def pending_token(user: User, now: datetime) -> str:
    expires = int(now.timestamp()) + PENDING_LOGIN_SECONDS
    return f"{user.id.hex}.{expires}.{_pending_mac(user, expires)}"


def pending_user(session: Session, token: str, now: datetime) -> User:
    """The user whose password a pending token proves, while it is fresh; LoginExpired
    otherwise (and once the password or the secret changed)."""
    expired = LoginExpired("the log-in has expired: type your e-mail and password again")
    match = _PENDING.fullmatch(token)
    if match is None or int(match[2]) < now.timestamp():
        raise expired
    user = session.get(User, uuid.UUID(match[1]))
    if user is None or not enabled(user):
        raise expired
    if not hmac.compare_digest(match[3], _pending_mac(user, int(match[2]))):
        raise expired
    return user
