"""Password hashing (argon2id) and access tokens (HS256 JWT bound to a revocable session).

Each hash holds argon2's memory cost (64 MiB) while it runs, so the number running at once is
bounded (see `hash_slots`): past the bound a request is refused at once with 503 and
Retry-After rather than queued, and the portal's memory stays under its limit however many
log-ins arrive together.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from fta.accounts import memory_limit
from fta.errors import RetryLater
from fta.settings import get_settings

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
HASH_MEMORY_BYTES = _hasher.memory_cost * 1024  # argon2 counts it in KiB
TOKEN_AUDIENCE = "fta-api"  # noqa: S105 - a claim value, not a secret
TOKEN_ALGORITHM = "HS256"  # noqa: S105 - an algorithm name
# A hash takes a fraction of a second: a request waits this long for a slot, then is refused
# (a bounded wait: the requests waiting are bounded by the server's worker threads anyway).
SLOT_WAIT_SECONDS = 0.5
RETRY_AFTER_SECONDS = 1


class HashingBusy(RetryLater):
    status = 503
    title = "Busy"

    def __init__(self) -> None:
        super().__init__(
            "too many password checks are running at once: "
            f"retry in {RETRY_AFTER_SECONDS} second(s)",
            RETRY_AFTER_SECONDS,
        )


@lru_cache(maxsize=1)
def hash_slots() -> threading.BoundedSemaphore:
    """The password hashes this process may run at once (cached: one pool per process)."""
    configured = get_settings().password_hash_slots
    if configured:
        return threading.BoundedSemaphore(configured)
    limit = memory_limit.cgroup_memory_limit()
    return threading.BoundedSemaphore(memory_limit.hash_slots_for(HASH_MEMORY_BYTES, limit))


@contextmanager
def _hash_slot() -> Iterator[None]:
    slots = hash_slots()
    if not slots.acquire(timeout=SLOT_WAIT_SECONDS):
        raise HashingBusy
    try:
        yield
    finally:
        slots.release()


def hash_password(password: str) -> str:
    with _hash_slot():
        return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    with _hash_slot():
        try:
            return _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False


# Verifying against a real hash when the account does not exist keeps timing uniform.
# Computed at import, outside the slots: the settings may not be read yet.
DUMMY_HASH = _hasher.hash("not-a-real-password-for-timing")


@dataclass(frozen=True)
class TokenClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID


def encode_token(user_id: uuid.UUID, session_id: uuid.UUID, issued: datetime, ttl: int) -> str:
    claims = {
        "sub": str(user_id),
        "sid": str(session_id),
        "aud": TOKEN_AUDIENCE,
        "iat": int(issued.timestamp()),
        "exp": int((issued + timedelta(seconds=ttl)).timestamp()),
    }
    key = get_settings().secret_key.get_secret_value()
    return jwt.encode(claims, key, algorithm=TOKEN_ALGORITHM)


def decode_token(token: str) -> TokenClaims | None:
    """Returns the claims of a well-signed, unexpired token, else None."""
    key = get_settings().secret_key.get_secret_value()
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[TOKEN_ALGORITHM],
            audience=TOKEN_AUDIENCE,
            options={"require": ["sub", "sid", "exp", "iat", "aud"]},
        )
        return TokenClaims(uuid.UUID(claims["sub"]), uuid.UUID(claims["sid"]))
    except (jwt.PyJWTError, ValueError, KeyError):
        return None
