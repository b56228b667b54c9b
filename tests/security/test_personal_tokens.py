"""Personal API tokens: the value is shown once and only its hash is stored; a read-only token
cannot change anything; a revoked or expired token is refused; nobody revokes another's; a
token neither makes tokens nor opens the pages."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text, update

from fta.accounts.models import PersonalToken, Tenant, TenantStatus
from fta.db import session_scope, utcnow
from fta.web import session_cookie
from tests.security.api_support import API, PROBLEM_JSON, parked_client, strategy_source
from tests.support.api import Client
from tests.support.browser import LivePortal
from tests.support.page_client import form_token, page_client


def _make(client: Client, scope: str = "read", **extra: Any) -> dict[str, Any]:
    response = client.http.post(
        f"{API}/auth/tokens", json={"name": f"script {scope}", "scope": scope, **extra},
        headers=client.auth,
    )  # fmt: skip
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def _row(token_id: str) -> PersonalToken:
    with session_scope() as session:
        row = session.get(PersonalToken, uuid.UUID(token_id))
        assert row is not None
        session.expunge(row)
        return row


def _refused(response: Any, status: int, hint: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert hint in response.json()["detail"], response.json()


@pytest.fixture
def client(http: TestClient) -> Client:
    return parked_client(http, "Tokens")


def test_the_value_is_shown_once_and_only_its_hash_is_stored(
    http: TestClient, client: Client
) -> None:
    made = _make(client, "write", expires_in_days=30)
    value = made["token"]
    assert value.startswith("fta_pat_") and len(value) == len("fta_pat_") + 43
    assert made["hint"] == value[:12]
    assert made["scope"] == "write"
    expires = made["expires_at"]
    assert expires is not None

    listed = http.get(f"{API}/auth/tokens", headers=client.auth)
    assert listed.status_code == 200
    assert [t["id"] for t in listed.json()] == [made["id"]]
    assert value not in listed.text
    assert "token" not in listed.json()[0]

    row = _row(made["id"])
    assert row.token_hash == hashlib.sha256(value.encode()).hexdigest()
    with session_scope() as session:
        stored = session.execute(
            text("SELECT t::text FROM personal_tokens t WHERE id = :id"), {"id": made["id"]}
        ).scalar_one()
    assert value[12:] not in stored

    # The value works as a bearer token, for reads and writes.
    assert http.get(f"{API}/strategies", headers=_bearer(value)).status_code == 200
    name = "ByToken"
    created = http.post(
        f"{API}/strategies",
        json={"name": name, "source": strategy_source(name)},
        headers=_bearer(value),
    )
    assert created.status_code == 201, created.text


def test_a_read_only_token_reads_but_changes_nothing(http: TestClient, client: Client) -> None:
    value = _make(client, "read")["token"]
    assert http.get(f"{API}/strategies", headers=_bearer(value)).status_code == 200
    assert http.get(f"{API}/auth/tokens", headers=_bearer(value)).status_code == 200
    name = "ReadOnly"
    writes = [
        http.post(
            f"{API}/strategies",
            json={"name": name, "source": strategy_source(name)},
            headers=_bearer(value),
        ),
        http.delete(f"{API}/auth/tokens/{uuid.uuid4()}", headers=_bearer(value)),
        http.post(f"{API}/auth/logout", headers=_bearer(value)),
        http.post(
            f"{API}/auth/password",
            json={"current_password": client.password, "new_password": "x" * 20},
            headers=_bearer(value),
        ),
    ]
    for refused in writes:
        _refused(refused, 403, "may only read")
    assert http.get(f"{API}/strategies", headers=client.auth).json() == []


def test_a_revoked_or_expired_token_is_refused(http: TestClient, client: Client) -> None:
    revoked, expired, kept = (_make(client, "read") for _ in range(3))
    for made in (revoked, expired, kept):
        assert http.get(f"{API}/strategies", headers=_bearer(made["token"])).status_code == 200

    gone = http.delete(f"{API}/auth/tokens/{revoked['id']}", headers=client.auth)
    assert gone.status_code == 204
    with session_scope() as session:
        session.execute(
            update(PersonalToken)
            .where(PersonalToken.id == uuid.UUID(expired["id"]))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    for dead in (revoked, expired):
        answer = http.get(f"{API}/strategies", headers=_bearer(dead["token"]))
        _refused(answer, 401, "/app/account/tokens")
        assert answer.headers["www-authenticate"] == "Bearer"
    assert http.get(f"{API}/strategies", headers=_bearer(kept["token"])).status_code == 200
    listed = {t["id"] for t in http.get(f"{API}/auth/tokens", headers=client.auth).json()}
    assert listed == {expired["id"], kept["id"]}
    # Revoked once is revoked: a second time is not found.
    again = http.delete(f"{API}/auth/tokens/{revoked['id']}", headers=client.auth)
    _refused(again, 404, "no such token")


def test_another_clients_token_cannot_be_revoked_or_seen(http: TestClient, client: Client) -> None:
    other = parked_client(http, "Other")
    made = _make(client, "read")
    refused = http.delete(f"{API}/auth/tokens/{made['id']}", headers=other.auth)
    _refused(refused, 404, "no such token")
    assert http.get(f"{API}/auth/tokens", headers=other.auth).json() == []
    assert http.get(f"{API}/strategies", headers=_bearer(made["token"])).status_code == 200
    assert _row(made["id"]).revoked_at is None


def test_a_token_makes_no_token_and_opens_no_page(http: TestClient, client: Client) -> None:
    value = _make(client, "write")["token"]
    refused = http.post(
        f"{API}/auth/tokens", json={"name": "escalation", "scope": "write"}, headers=_bearer(value)
    )
    _refused(refused, 403, "log in with your password")
    page = http.get("/app", cookies={session_cookie.SESSION_COOKIE: value}, follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"].startswith("/login")


def test_logging_out_with_a_token_revokes_it(http: TestClient, client: Client) -> None:
    made = _make(client, "write")
    assert http.post(f"{API}/auth/logout", headers=_bearer(made["token"])).status_code == 204
    _refused(http.get(f"{API}/strategies", headers=_bearer(made["token"])), 401, "revoked")
    assert http.get(f"{API}/strategies", headers=client.auth).status_code == 200


def test_last_use_is_noted_at_most_once_a_minute(http: TestClient, client: Client) -> None:
    made = _make(client, "read")
    assert made["last_used_at"] is None
    http.get(f"{API}/strategies", headers=_bearer(made["token"]))
    first = _row(made["id"]).last_used_at
    assert first is not None
    http.get(f"{API}/strategies", headers=_bearer(made["token"]))
    assert _row(made["id"]).last_used_at == first
    with session_scope() as session:
        session.execute(
            update(PersonalToken)
            .where(PersonalToken.id == uuid.UUID(made["id"]))
            .values(last_used_at=utcnow() - timedelta(minutes=2))
        )
    http.get(f"{API}/strategies", headers=_bearer(made["token"]))
    later = _row(made["id"]).last_used_at
    assert later is not None and later > first


def test_a_suspended_accounts_tokens_read_but_start_nothing(
    http: TestClient, client: Client
) -> None:
    value = _make(client, "write")["token"]
    with session_scope() as session:
        session.execute(
            update(Tenant)
            .where(Tenant.id == client.tenant_id)
            .values(status=TenantStatus.SUSPENDED)
        )
    try:
        assert http.get(f"{API}/strategies", headers=_bearer(value)).status_code == 200
        config = {"exchange": "binance", "pairs": ["BTC/USDT"], "timeframe": "5m",
                  "timerange": "20240101-20240201"}  # fmt: skip
        download = {"kind": "download-data", "config": config}
        _refused(http.post(f"{API}/jobs", json=download, headers=_bearer(value)), 409, "suspended")
    finally:
        with session_scope() as session:
            session.execute(
                update(Tenant)
                .where(Tenant.id == client.tenant_id)
                .values(status=TenantStatus.ACTIVE)
            )


@pytest.mark.parametrize(
    "body",
    [
        {"name": "", "scope": "read"},
        {"name": "x", "scope": "admin"},
        {"name": "x", "scope": "read", "expires_in_days": 0},
        {"name": "x", "scope": "read", "expires_in_days": 366},
        {"name": "tab\there", "scope": "read"},
    ],
)
def test_invalid_tokens_are_not_made(
    http: TestClient, client: Client, body: dict[str, Any]
) -> None:
    answer = http.post(f"{API}/auth/tokens", json=body, headers=client.auth)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == PROBLEM_JSON
    assert http.get(f"{API}/auth/tokens", headers=client.auth).json() == []


def _log_in_page(browser: httpx.Client, client: Client) -> None:
    logged_in = browser.post(
        "/login",
        data={
            "csrf_token": form_token(browser, "/login"),
            "email": client.email,
            "password": client.password,
        },
    )
    assert logged_in.status_code == 303, logged_in.text


def test_the_tokens_page_revokes_only_its_own_clients_tokens_and_only_with_its_token(
    http: TestClient, live_portal: LivePortal, client: Client
) -> None:
    other = parked_client(http, "OtherPage")
    victims = _make(other, "read")
    with page_client(live_portal) as browser:
        _log_in_page(browser, client)
        token = form_token(browser, "/app/account/tokens")
        mine = browser.post(
            "/app/account/tokens",
            data={"csrf_token": token, "name": "page", "scope": "write", "expires_in_days": "30"},
        )
        assert mine.status_code == 200, mine.text
        assert mine.headers["cache-control"] == "no-store"
        value = re.search(r'id="new-token" class="secret">(fta_pat_[\w-]{43})<', mine.text)
        assert value, "the new token's value is shown"
        assert http.get(f"{API}/strategies", headers=_bearer(value[1])).status_code == 200
        # Shown once: the list does not show it again.
        assert value[1] not in browser.get("/app/account/tokens").text

        stolen = browser.post(
            f"/app/account/tokens/{victims['id']}/revoke", data={"csrf_token": token}
        )
        assert stolen.status_code == 404
        assert "Page introuvable" in stolen.text
        forged = browser.post(f"/app/account/tokens/{victims['id']}/revoke")
        assert forged.status_code == 403
    assert _row(victims["id"]).revoked_at is None
    assert http.get(f"{API}/strategies", headers=_bearer(victims["token"])).status_code == 200
