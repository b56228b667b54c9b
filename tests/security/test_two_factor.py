"""Two-factor log-in: once on, neither the API nor the pages log in on the password alone;
a code serves once, a recovery code once; code guesses are throttled like passwords; the
secret is encrypted at rest and bound to its user; turning it off takes the password and a
code."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from fta.accounts import two_factor
from fta.accounts.models import User
from fta.db import session_scope, utcnow
from fta.settings import get_settings
from tests.security.api_support import API, PROBLEM_JSON, unique_ip
from tests.support.api import Client, sign_up
from tests.support.browser import LivePortal
from tests.support.page_client import form_token, page_client


@dataclass
class Enrolled:
    client: Client
    user_id: uuid.UUID
    secret: str
    recovery_codes: list[str]
    confirming_code: str

    def code(self, steps_from_now: int = 0) -> str:
        step = int(utcnow().timestamp()) // two_factor.STEP_SECONDS + steps_from_now
        return pyotp.TOTP(self.secret).generate_otp(step)


def _enrol(http: TestClient, name: str = "TwoFactor") -> Enrolled:
    """A client with two-factor log-in on, set up as the page does it; the confirming code is
    the previous step's, so that the current step's code is still unused."""
    client = sign_up(http, name)
    now = utcnow()
    with session_scope() as session:
        user = session.scalars(select(User).where(User.email == client.email)).one()
        enrolment = two_factor.start_enrolment(user, now)
        earlier = pyotp.TOTP(enrolment.secret).generate_otp(
            int(now.timestamp()) // two_factor.STEP_SECONDS - 1
        )
        codes = two_factor.confirm_enrolment(session, user, enrolment, earlier, now, None)
        assert codes is not None
        return Enrolled(client, user.id, enrolment.secret, codes, earlier)


def _enabled(user_id: uuid.UUID) -> bool:
    with session_scope() as session:
        user = session.get(User, user_id)
        return user is not None and two_factor.enabled(user)


def _codes_left(user_id: uuid.UUID) -> int:
    with session_scope() as session:
        return two_factor.recovery_codes_left(session, user_id)


def _token_request(
    http: TestClient, enrolled: Enrolled, otp: str | None = None, password: str | None = None
) -> httpx.Response:
    body = {"email": enrolled.client.email, "password": password or enrolled.client.password}
    if otp is not None:
        body["otp"] = otp
    return http.post(f"{API}/auth/token", json=body, headers={"X-Real-IP": unique_ip()})


def _refused(response: httpx.Response, status: int, hint: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert hint in response.json()["detail"], response.json()


def test_the_api_logs_in_only_with_the_code(http: TestClient) -> None:
    enrolled = _enrol(http)
    missing = _token_request(http, enrolled)
    _refused(missing, 401, "two-factor code required")
    assert missing.json()["title"] == "Two-factor code required"
    assert "access_token" not in missing.text
    _refused(_token_request(http, enrolled, "000000"), 401, "wrong two-factor code")
    _refused(_token_request(http, enrolled, "not a code"), 401, "wrong two-factor code")
    # A wrong password says nothing of the second factor, code or not.
    for otp in (None, enrolled.code()):
        wrong = _token_request(http, enrolled, otp, password="not the password at all")
        _refused(wrong, 401, "wrong email or password")
    issued = _token_request(http, enrolled, enrolled.code())
    assert issued.status_code == 200, issued.text
    headers = {"Authorization": f"Bearer {issued.json()['access_token']}"}
    assert http.get(f"{API}/strategies", headers=headers).status_code == 200


def test_a_code_serves_once(http: TestClient) -> None:
    enrolled = _enrol(http)
    # The code that confirmed the set-up does not log in.
    _refused(_token_request(http, enrolled, enrolled.confirming_code), 401, "wrong two-factor")
    now = enrolled.code()
    assert _token_request(http, enrolled, now).status_code == 200
    _refused(_token_request(http, enrolled, now), 401, "wrong two-factor code")
    # Nor an older one once a later one was used; the next one does.
    _refused(_token_request(http, enrolled, enrolled.code(-1)), 401, "wrong two-factor code")
    assert _token_request(http, enrolled, enrolled.code(1)).status_code == 200
    # Codes further than one step from now never do.
    with session_scope() as session:
        user = session.get(User, enrolled.user_id)
        assert user is not None
        user.totp_last_step = None
    for far in (-3, 3):
        _refused(_token_request(http, enrolled, enrolled.code(far)), 401, "wrong two-factor code")


def test_a_recovery_code_serves_once(http: TestClient) -> None:
    enrolled = _enrol(http)
    code = enrolled.recovery_codes[0]
    assert re.fullmatch(r"[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}", code)
    # However typed: capitals, spaces instead of dashes.
    typed = code.upper().replace("-", " ")
    assert _token_request(http, enrolled, typed).status_code == 200
    _refused(_token_request(http, enrolled, code), 401, "wrong two-factor code")
    with session_scope() as session:
        assert two_factor.recovery_codes_left(session, enrolled.user_id) == 9
    # Another user's recovery code is no code of this one.
    other = _enrol(http, "Other")
    refused = _token_request(http, enrolled, other.recovery_codes[0])
    _refused(refused, 401, "wrong two-factor code")
    assert _token_request(http, other, other.recovery_codes[0]).status_code == 200


@pytest.fixture
def small_limits(app_settings: None) -> Iterator[int]:
    values = {"FTA_LOGIN_MAX_FAILURES": "3", "FTA_LOGIN_WINDOW_SECONDS": "60"}
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    get_settings.cache_clear()
    yield 3
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    get_settings.cache_clear()


def test_code_guesses_are_throttled_like_passwords(http: TestClient, small_limits: int) -> None:
    enrolled = _enrol(http)
    _refused(_token_request(http, enrolled, "111111"), 401, "wrong two-factor code")
    # The right password alone forgives nothing: it only asks for the code.
    _refused(_token_request(http, enrolled), 401, "two-factor code required")
    for _ in range(small_limits - 1):
        _refused(_token_request(http, enrolled, "222222"), 401, "wrong two-factor code")
    throttled = _token_request(http, enrolled, enrolled.code())
    _refused(throttled, 429, "too many failed")
    assert int(throttled.headers["retry-after"]) > 0
    # The code was not spent by the refused attempt.
    with session_scope() as session:
        user = session.get(User, enrolled.user_id)
        assert user is not None
        assert user.totp_last_step != int(utcnow().timestamp()) // two_factor.STEP_SECONDS


def test_the_secret_is_encrypted_at_rest_and_bound_to_its_user(http: TestClient) -> None:
    enrolled, other = _enrol(http), _enrol(http, "Other")
    with session_scope() as session:
        row = session.execute(
            text("SELECT u::text FROM users u WHERE id = :id"), {"id": enrolled.user_id}
        ).scalar_one()
        assert enrolled.secret not in row and enrolled.secret.lower() not in row
        stored = session.get(User, enrolled.user_id)
        assert stored is not None and stored.totp_secret is not None
        # Copied onto another user, it decrypts for nobody: that user logs in with no code.
        victim_secret = stored.totp_secret
        target = session.get(User, other.user_id)
        assert target is not None
        target.totp_secret = victim_secret
    for code in (enrolled.code(), other.code()):
        _refused(_token_request(http, other, code), 401, "wrong two-factor code")


def test_a_tampered_or_stale_set_up_turns_nothing_on(http: TestClient) -> None:
    client = sign_up(http, "Setup")
    now = utcnow()
    with session_scope() as session:
        user = session.scalars(select(User).where(User.email == client.email)).one()
        enrolment = two_factor.start_enrolment(user, now - timedelta(minutes=16))
        assert two_factor.resume_enrolment(user, enrolment.sealed, now) is None
        fresh = two_factor.start_enrolment(user, now)
        tampered = fresh.sealed[:-4] + ("AAAA" if not fresh.sealed.endswith("AAAA") else "BBBB")
        assert two_factor.resume_enrolment(user, tampered, now) is None
        other = sign_up(http, "SetupOther")
        other_user = session.scalars(select(User).where(User.email == other.email)).one()
        assert two_factor.resume_enrolment(other_user, fresh.sealed, now) is None
        resumed = two_factor.resume_enrolment(user, fresh.sealed, now)
        assert resumed is not None and resumed.secret == fresh.secret
        current = int(now.timestamp()) // two_factor.STEP_SECONDS
        valid = {pyotp.TOTP(fresh.secret).generate_otp(s) for s in range(current - 2, current + 3)}
        wrong = next(f"{n:06d}" for n in range(10**6) if f"{n:06d}" not in valid)
        assert two_factor.confirm_enrolment(session, user, resumed, wrong, now, None) is None
        assert not two_factor.enabled(user)


def _page_login(browser: httpx.Client, client: Client) -> httpx.Response:
    return browser.post(
        "/login",
        data={
            "csrf_token": form_token(browser, "/login"),
            "email": client.email,
            "password": client.password,
            "next": "/app/jobs",
        },
    )


def test_the_page_log_in_asks_for_the_code_before_any_session(
    http: TestClient, live_portal: LivePortal
) -> None:
    enrolled = _enrol(http, "PageTwoFactor")
    with page_client(live_portal) as browser:
        first = _page_login(browser, enrolled.client)
        assert first.status_code == 303
        assert first.headers["location"] == "/login/2fa?next=%2Fapp%2Fjobs"
        cookies = first.headers.get_list("set-cookie")
        assert not any(c.startswith("fta_session=") for c in cookies), cookies
        (pending,) = [c for c in cookies if c.startswith("fta_login_pending=")]
        for attribute in ("HttpOnly", "Path=/login", "SameSite=strict", "Max-Age=300"):
            assert attribute.lower() in pending.lower()
        assert browser.get("/app").status_code == 303  # not signed in

        form = browser.get("/login/2fa?next=%2Fapp%2Fjobs")
        assert form.status_code == 200
        csrf = form_token(browser, "/login/2fa")
        wrong = browser.post(
            "/login/2fa", data={"csrf_token": csrf, "otp": "000000", "next": "/app/jobs"}
        )
        assert wrong.status_code == 400
        assert "Code incorrect" in wrong.text
        signed_in = browser.post(
            "/login/2fa",
            data={"csrf_token": csrf, "otp": enrolled.code(), "next": "/app/jobs"},
        )
        assert signed_in.status_code == 303
        assert signed_in.headers["location"] == "/app/jobs"
        assert browser.get("/app").status_code == 200

    # Without the first step, or with a forged or stale pending log-in: back to the password.
    with page_client(live_portal) as browser:
        assert browser.get("/login/2fa").status_code == 303
        csrf = form_token(browser, "/login")
        with session_scope() as session:
            user = session.get(User, enrolled.user_id)
            assert user is not None
            stale = two_factor.pending_token(user, utcnow() - timedelta(minutes=6))
            forged = f"{user.id.hex}.{int(utcnow().timestamp()) + 300}.{'A' * 43}"
        for pending_value in (stale, forged, "garbage"):
            browser.cookies.set("fta_login_pending", pending_value)
            expired = browser.post("/login/2fa", data={"csrf_token": csrf, "otp": enrolled.code(1)})
            assert expired.status_code == 400
            assert "Votre connexion a expiré" in expired.text
            assert browser.get("/app").status_code == 303


def test_turning_it_off_takes_the_password_and_a_code(
    http: TestClient, live_portal: LivePortal
) -> None:
    enrolled = _enrol(http, "TurnOff")
    with page_client(live_portal) as browser:
        assert _page_login(browser, enrolled.client).status_code == 303
        csrf = form_token(browser, "/login/2fa")
        code = enrolled.code()
        assert browser.post("/login/2fa", data={"csrf_token": csrf, "otp": code}).status_code == 303
        assert browser.get("/app").status_code == 200
        page = browser.get("/app/account/security")
        assert page.status_code == 200
        assert "10 codes de secours" in page.text
        csrf = form_token(browser, "/app/account/security")
        for password, otp in [
            ("not the password at all", enrolled.code(1)),
            (enrolled.client.password, code),  # already used
            (enrolled.client.password, "nope"),
        ]:
            refused = browser.post(
                "/app/account/security/disable",
                data={"csrf_token": csrf, "password": password, "otp": otp},
            )
            assert refused.status_code == 400, refused.text
            assert "reste activée" in refused.text
        with session_scope() as session:
            user = session.get(User, enrolled.user_id)
            assert user is not None and two_factor.enabled(user)
        off = browser.post(
            "/app/account/security/disable",
            data={
                "csrf_token": csrf,
                "password": enrolled.client.password,
                "otp": enrolled.recovery_codes[3],
            },
        )
        assert off.status_code == 303
    assert not _enabled(enrolled.user_id)
    with session_scope() as session:
        user = session.get(User, enrolled.user_id)
        assert user is not None
        assert user.totp_secret is None
        assert two_factor.recovery_codes_left(session, enrolled.user_id) == 0
    assert _token_request(http, enrolled).status_code == 200


def test_new_recovery_codes_void_the_old_ones(http: TestClient, live_portal: LivePortal) -> None:
    enrolled = _enrol(http, "Renew")
    with page_client(live_portal) as browser:
        assert _page_login(browser, enrolled.client).status_code == 303
        csrf = form_token(browser, "/login/2fa")
        otp = enrolled.recovery_codes[0]
        assert browser.post("/login/2fa", data={"csrf_token": csrf, "otp": otp}).status_code == 303
        assert browser.get("/app").status_code == 200
        renewed = browser.post(
            "/app/account/security/recovery-codes",
            data={
                "csrf_token": form_token(browser, "/app/account/security"),
                "otp": enrolled.code(),
            },
        )
        assert renewed.status_code == 200
        assert renewed.headers["cache-control"] == "no-store"
        new_codes = re.findall(r"<li>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})</li>", renewed.text)
        assert len(new_codes) == 10
        assert not set(new_codes) & set(enrolled.recovery_codes)
    assert _codes_left(enrolled.user_id) == 10
    _refused(_token_request(http, enrolled, enrolled.recovery_codes[1]), 401, "wrong two-factor")
    assert _token_request(http, enrolled, new_codes[0]).status_code == 200
