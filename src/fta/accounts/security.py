"""Password hashing (argon2id) and access tokens (HS256 JWT bound to a revocable session)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from fta.settings import get_settings

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
TOKEN_AUDIENCE = "fta-api"  # noqa: S105 - a claim value, not a secret
TOKEN_ALGORITHM = "HS256"  # noqa: S105 - an algorithm name


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# Verifying against a real hash when the account does not exist keeps timing uniform.
DUMMY_HASH = hash_password("not-a-real-password-for-timing")


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
