"""Password guessing is throttled per account and per client address (sliding window in
Postgres), failures are recorded durably, and unknown accounts look like known ones."""

from __future__ import annotations

import os
import secrets
import statistics
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from fta.accounts import security
from fta.audit.models import AuditEvent
from fta.db import session_scope
from fta.settings import get_settings
from tests.security.api_support import API, PROBLEM_JSON, unique_ip
from tests.support.api import Client, sign_up

MAX_PER_ACCOUNT = 3
MAX_PER_ADDRESS = 5
WINDOW_SECONDS = 4


@pytest.fixture(autouse=True)
def small_limits(app_settings: None) -> Iterator[None]:
    """Small limits and a short window keep these tests quick; restored afterwards."""
    values = {
        "FTA_LOGIN_MAX_FAILURES": str(MAX_PER_ACCOUNT),
        "FTA_LOGIN_MAX_FAILURES_PER_IP": str(MAX_PER_ADDRESS),
        "FTA_LOGIN_WINDOW_SECONDS": str(WINDOW_SECONDS),
    }
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    get_settings.cache_clear()
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    get_settings.cache_clear()


def _log_in(http: TestClient, email: str, password: str, ip: str) -> httpx.Response:
    return http.post(
        f"{API}/auth/token", json={"email": email, "password": password}, headers={"X-Real-IP": ip}
    )


def _assert_throttled(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert "wait" in response.json()["detail"]
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= WINDOW_SECONDS
    return retry_after


def _failed_audit_events(tenant_id: str) -> int:
    with session_scope() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.tenant_id == tenant_id, AuditEvent.action == "auth.failed")
            )
            or 0
        )


@pytest.fixture
def client(http: TestClient) -> Client:
    return sign_up(http, "Throttled")


def test_an_account_is_locked_after_its_failures_even_for_the_right_password(
    http: TestClient, client: Client
) -> None:
    ip = unique_ip()
    for _ in range(MAX_PER_ACCOUNT):
        assert _log_in(http, client.email, "wrong-password-guess", ip).status_code == 401
    _assert_throttled(_log_in(http, client.email, client.password, ip))
    # From another address too: the account's own count is what locks it.
    _assert_throttled(_log_in(http, client.email, client.password, unique_ip()))
    # Each failure was committed although its request was refused (and rolled back).
    assert _failed_audit_events(client.tenant_id) == MAX_PER_ACCOUNT


def test_an_unknown_account_is_throttled_alike(http: TestClient, client: Client) -> None:
    ip = unique_ip()
    ghost = f"ghost-{secrets.token_hex(4)}@example.com"
    answers = {}
    for email in (client.email, ghost):
        refusals = [_log_in(http, email, "wrong-password-guess", ip) for _ in range(2)]
        ip = unique_ip()  # keep the address's own limit out of this comparison
        assert [r.status_code for r in refusals] == [401, 401]
        for _ in range(MAX_PER_ACCOUNT - 2):
            _log_in(http, email, "wrong-password-guess", ip)
        throttled = _log_in(http, email, "wrong-password-guess", ip)
        _assert_throttled(throttled)
        answers[email] = (refusals[0].json(), throttled.json()["title"])
    assert answers[client.email] == answers[ghost]


def test_a_correct_password_forgives_the_failures(http: TestClient, client: Client) -> None:
    ip = unique_ip()
    for _ in range(MAX_PER_ACCOUNT - 1):
        assert _log_in(http, client.email, "wrong-password-guess", ip).status_code == 401
    assert _log_in(http, client.email, client.password, ip).status_code == 200
    for _ in range(MAX_PER_ACCOUNT - 1):
        assert _log_in(http, client.email, "wrong-password-guess", ip).status_code == 401
    assert _log_in(http, client.email, client.password, ip).status_code == 200


def test_an_address_spraying_many_accounts_is_throttled(http: TestClient, client: Client) -> None:
    sprayer = unique_ip()
    for _ in range(MAX_PER_ADDRESS):
        ghost = f"spray-{secrets.token_hex(4)}@example.com"
        assert _log_in(http, ghost, "Winter2026!", sprayer).status_code == 401
    _assert_throttled(_log_in(http, client.email, client.password, sprayer))
    # The account itself is not locked: its owner elsewhere logs in.
    assert _log_in(http, client.email, client.password, unique_ip()).status_code == 200


def test_the_window_slides(http: TestClient, client: Client) -> None:
    ip = unique_ip()
    for _ in range(MAX_PER_ACCOUNT):
        _log_in(http, client.email, "wrong-password-guess", ip)
    retry_after = _assert_throttled(_log_in(http, client.email, client.password, ip))
    time.sleep(retry_after + 0.2)
    assert _log_in(http, client.email, client.password, ip).status_code == 200


def test_concurrent_guesses_cannot_exceed_the_limit(http: TestClient, client: Client) -> None:
    ip = unique_ip()
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(
            pool.map(
                lambda _: _log_in(http, client.email, "wrong-password-guess", ip).status_code,
                range(12),
            )
        )
    assert sorted(statuses) == [401] * MAX_PER_ACCOUNT + [429] * (12 - MAX_PER_ACCOUNT)


def test_the_password_change_oracle_is_throttled(http: TestClient, client: Client) -> None:
    ip = unique_ip()
    headers = {**client.auth, "X-Real-IP": ip}
    body = {"current_password": "wrong-password-guess", "new_password": secrets.token_hex(8)}
    for _ in range(MAX_PER_ACCOUNT):
        assert http.post(f"{API}/auth/password", json=body, headers=headers).status_code == 401
    right = {**body, "current_password": client.password}
    _assert_throttled(http.post(f"{API}/auth/password", json=right, headers=headers))
    _assert_throttled(_log_in(http, client.email, client.password, unique_ip()))


def test_unknown_accounts_take_as_long_as_known_ones(http: TestClient) -> None:
    """The dummy hash check keeps an unknown address from answering faster."""
    known = [sign_up(http, "Timing").email for _ in range(3)]
    unknown = [f"nobody-{secrets.token_hex(4)}@example.com" for _ in range(3)]

    def duration(email: str) -> float:
        start = time.perf_counter()
        assert _log_in(http, email, "wrong-password-guess", unique_ip()).status_code == 401
        return time.perf_counter() - start

    for email in known + unknown:  # warm both paths
        duration(email)
    known_times = [duration(email) for email in known]
    unknown_times = [duration(email) for email in unknown]
    ratio = statistics.median(unknown_times) / statistics.median(known_times)
    assert 0.5 < ratio < 2.0, (known_times, unknown_times)


def test_a_check_refused_for_lack_of_a_hash_slot_is_no_failure(
    http: TestClient, client: Client
) -> None:
    """Told to retry later (every hashing slot busy), a person is not locked out for it."""
    slots = security.hash_slots()
    held = 0
    while slots.acquire(blocking=False):
        held += 1
    try:
        for _ in range(MAX_PER_ACCOUNT + 1):
            busy = _log_in(http, client.email, "wrong-password", unique_ip())
            assert busy.status_code == 503, busy.text
            assert busy.headers["content-type"] == PROBLEM_JSON
            assert busy.headers["retry-after"] == "1"
    finally:
        for _ in range(held):
            slots.release()
    assert _log_in(http, client.email, client.password, unique_ip()).status_code == 200
