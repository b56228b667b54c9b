"""Token tampering: every forged, stale or misused bearer token is refused with 401.

Tokens re-signed with the server's real key stand for a leaked key or a signing bug: the
session binding (sid and sub must match a live session row) must still refuse them.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, update

from fta.accounts.models import AuthSession
from fta.db import session_scope, utcnow
from fta.settings import get_settings
from tests.security.api_support import API, PROBLEM_JSON, parked_client
from tests.support.api import Client

Claims = dict[str, Any]


def _claims(client: Client) -> Claims:
    return dict(jwt.decode(client.token, options={"verify_signature": False}))


def _server_key() -> str:
    return get_settings().secret_key.get_secret_value()


def _signed(claims: Claims, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, _server_key(), algorithm=algorithm)


def _segment(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _alg_none_keeping_signature(a: Client, b: Client) -> str:
    _, payload, signature = a.token.split(".")
    return f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{payload}.{signature}"


def _payload_edited_unsigned(a: Client, b: Client) -> str:
    header, _, signature = a.token.split(".")
    return f"{header}.{_segment({**_claims(a), 'sub': _claims(b)['sub']})}.{signature}"


def _without(claims: Claims, name: str) -> Claims:
    return {key: value for key, value in claims.items() if key != name}


NOW = int(time.time())
FORGERIES: dict[str, Callable[[Client, Client], str]] = {
    "bad signature": lambda a, b: jwt.encode(_claims(a), "not-the-server-key-" * 3),
    "alg none": lambda a, b: jwt.encode(_claims(a), key=None, algorithm="none"),
    "alg none keeping the signature": _alg_none_keeping_signature,
    "signature stripped": lambda a, b: a.token.rsplit(".", 1)[0] + ".",
    "payload edited, signature kept": _payload_edited_unsigned,
    "HS512 with the server key": lambda a, b: _signed(_claims(a), "HS512"),
    "expired": lambda a, b: _signed({**_claims(a), "iat": NOW - 7200, "exp": NOW - 3600}),
    "issued in the future": lambda a, b: _signed({**_claims(a), "iat": NOW + 3600}),
    "wrong audience": lambda a, b: _signed({**_claims(a), "aud": "another-service"}),
    "no audience": lambda a, b: _signed(_without(_claims(a), "aud")),
    "no expiry": lambda a, b: _signed(_without(_claims(a), "exp")),
    "no session id": lambda a, b: _signed(_without(_claims(a), "sid")),
    "session id not a uuid": lambda a, b: _signed({**_claims(a), "sid": "1 OR 1=1"}),
    "unknown session id": lambda a, b: _signed({**_claims(a), "sid": str(uuid.uuid4())}),
    # A valid session of A presented as B, and B's session presented as A.
    "sub swapped to another user": lambda a, b: _signed({**_claims(a), "sub": _claims(b)["sub"]}),
    "sid of another user": lambda a, b: _signed({**_claims(a), "sid": _claims(b)["sid"]}),
    "garbage": lambda a, b: "not.a.token",
    "empty": lambda a, b: "",
}


@pytest.fixture(scope="module")
def pair(http: TestClient) -> tuple[Client, Client]:
    """Two clients whose sessions the forgery tests only read."""
    return parked_client(http, "Victim"), parked_client(http, "Other")


@pytest.fixture
def fresh_pair(http: TestClient) -> tuple[Client, Client]:
    """Two clients for tests that end a session."""
    return parked_client(http, "Victim"), parked_client(http, "Other")


def _assert_refused(http: TestClient, headers: dict[str, str], hint: str) -> None:
    response = http.get(f"{API}/strategies", headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.headers["www-authenticate"] == "Bearer"
    assert hint in response.json()["detail"], response.json()


@pytest.mark.parametrize("forgery", FORGERIES)
def test_forged_tokens_are_refused(
    http: TestClient, pair: tuple[Client, Client], forgery: str
) -> None:
    a, b = pair
    assert http.get(f"{API}/strategies", headers=a.auth).status_code == 200  # the real one works
    token = FORGERIES[forgery](a, b)
    _assert_refused(http, {"Authorization": f"Bearer {token}"}, "/api/v1/auth/token")


def _drop_session(client: Client) -> None:
    with session_scope() as session:
        session.execute(
            delete(AuthSession).where(AuthSession.id == uuid.UUID(_claims(client)["sid"]))
        )


def _expire_session(client: Client) -> None:
    # The JWT itself stays within its lifetime: the session row decides.
    with session_scope() as session:
        session.execute(
            update(AuthSession)
            .where(AuthSession.id == uuid.UUID(_claims(client)["sid"]))
            .values(expires_at=utcnow())
        )


def _revoke_session(client: Client) -> None:
    # What a logout or password change elsewhere does (their endpoints are tested in
    # tests/integration/test_api_accounts.py).
    with session_scope() as session:
        session.execute(
            update(AuthSession)
            .where(AuthSession.id == uuid.UUID(_claims(client)["sid"]))
            .values(revoked_at=utcnow())
        )


@pytest.mark.parametrize(
    ("change", "hint"),
    [
        (_drop_session, "/api/v1/auth/token"),
        (_expire_session, "/api/v1/auth/token"),
        (_revoke_session, "/api/v1/auth/token"),
    ],
    ids=["deleted session", "session expired server-side", "revoked session"],
)
def test_genuine_tokens_die_with_their_session(
    http: TestClient, fresh_pair: tuple[Client, Client], change: Callable[[Client], None], hint: str
) -> None:
    a, b = fresh_pair
    assert http.get(f"{API}/strategies", headers=a.auth).status_code == 200
    change(a)
    _assert_refused(http, a.auth, hint)
    assert http.get(f"{API}/strategies", headers=b.auth).status_code == 200  # B unaffected


@pytest.mark.parametrize(
    "where",
    ["query parameter", "basic scheme", "no scheme", "two tokens"],
)
def test_a_token_counts_only_as_one_bearer_header(
    http: TestClient, pair: tuple[Client, Client], where: str
) -> None:
    a, b = pair
    headers: dict[str, str] = {}
    params: dict[str, str] = {}
    if where == "query parameter":
        params = {"access_token": a.token, "token": a.token}
    elif where == "basic scheme":
        headers = {"Authorization": f"Basic {a.token}"}
    elif where == "no scheme":
        headers = {"Authorization": a.token}
    else:
        headers = {"Authorization": f"Bearer {a.token} {b.token}"}
    response = http.get(f"{API}/strategies", headers=headers, params=params)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
