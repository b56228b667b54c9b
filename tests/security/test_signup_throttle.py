"""Sign-ups are throttled per client address before any password is hashed or any tenant
(and its network slot) is created."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from fta.accounts.models import Tenant
from fta.db import session_scope
from fta.settings import get_settings
from tests.security.api_support import API, PROBLEM_JSON, unique_ip

MAX_PER_ADDRESS = 3
WINDOW_SECONDS = 60


@pytest.fixture(autouse=True)
def small_limit(app_settings: None) -> Iterator[None]:
    saved = {
        name: os.environ.get(name)
        for name in ("FTA_SIGNUP_MAX_PER_IP", "FTA_SIGNUP_WINDOW_SECONDS")
    }
    os.environ["FTA_SIGNUP_MAX_PER_IP"] = str(MAX_PER_ADDRESS)
    os.environ["FTA_SIGNUP_WINDOW_SECONDS"] = str(WINDOW_SECONDS)
    get_settings.cache_clear()
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    get_settings.cache_clear()


def _sign_up(http: TestClient, ip: str) -> int:
    body = {
        "email": f"flood-{secrets.token_hex(6)}@example.com",
        "password": secrets.token_urlsafe(16),
        "display_name": "Flood",
    }
    response = http.post(f"{API}/auth/signup", json=body, headers={"X-Real-IP": ip})
    if response.status_code == 429:
        assert response.headers["content-type"] == PROBLEM_JSON
        assert "log in" in response.json()["detail"]
        assert 1 <= int(response.headers["retry-after"]) <= WINDOW_SECONDS
    return response.status_code


def _tenants() -> int:
    with session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(Tenant)) or 0)


def test_an_address_creates_only_its_share_of_accounts(http: TestClient) -> None:
    flooder = unique_ip()
    before = _tenants()
    answers = [_sign_up(http, flooder) for _ in range(MAX_PER_ADDRESS + 4)]
    assert answers == [201] * MAX_PER_ADDRESS + [429] * 4
    assert _tenants() == before + MAX_PER_ADDRESS
    # Another address is not held back by the flood.
    assert _sign_up(http, unique_ip()) == 201


def test_a_forged_forwarded_for_does_not_reset_the_count(http: TestClient) -> None:
    flooder = unique_ip()
    for _ in range(MAX_PER_ADDRESS):
        assert _sign_up(http, flooder) == 201
    body = {
        "email": f"forged-{secrets.token_hex(6)}@example.com",
        "password": secrets.token_urlsafe(16),
        "display_name": "Forged",
    }
    headers = {"X-Real-IP": flooder, "X-Forwarded-For": unique_ip()}
    assert http.post(f"{API}/auth/signup", json=body, headers=headers).status_code == 429
