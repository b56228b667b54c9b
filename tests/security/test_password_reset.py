"""A forgotten password: the mailed link (through a real SMTP sink) resets it once, within its
hour, for its own account only, and closes every session; asking for it answers alike for
unknown addresses, and is throttled per address and per network."""

from __future__ import annotations

import os
import re
import secrets
import uuid
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from fta.accounts import password_reset
from fta.accounts.models import User
from fta.db import session_scope, utcnow
from fta.mail import service as mail
from fta.settings import Settings, get_settings
from tests.security.api_support import API, PROBLEM_JSON, unique_ip
from tests.support.api import sign_up
from tests.support.browser import LivePortal
from tests.support.page_client import form_token, page_client
from tests.support.smtp_sink import Inbox, deliver

NEW_PASSWORD = "a brand new passphrase"  # pragma: allowlist secret


def _forgot(http: TestClient, email: str, ip: str | None = None) -> httpx.Response:
    return http.post(
        f"{API}/auth/password/forgot",
        json={"email": email},
        headers={"X-Real-IP": ip or unique_ip()},
    )


def _reset(http: TestClient, token: str, password: str = NEW_PASSWORD) -> httpx.Response:
    return http.post(f"{API}/auth/password/reset", json={"token": token, "new_password": password})


def _log_in(http: TestClient, email: str, password: str) -> int:
    response = http.post(
        f"{API}/auth/token",
        json={"email": email, "password": password},
        headers={"X-Real-IP": unique_ip()},
    )
    return response.status_code


def _user(email: str) -> User:
    with session_scope() as session:
        user = session.scalars(select(User).where(User.email == email)).one()
        session.expunge(user)
        return user


def _reset_link(email: str) -> str | None:
    with session_scope() as session:
        return next(
            (
                m.link
                for m in mail.waiting_for(session, email)
                if m.subject == password_reset.SUBJECT and m.link
            ),
            None,
        )


def _invalid(response: httpx.Response) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert "invalid, was already used or has expired" in response.json()["detail"]


def test_the_mailed_link_resets_the_password_once_and_closes_every_session(
    http: TestClient, smtp_sink: tuple[Inbox, Settings]
) -> None:
    inbox, settings = smtp_sink
    client = sign_up(http, "Forgetful")
    other_session = http.post(
        f"{API}/auth/token", json={"email": client.email, "password": client.password}
    ).json()["access_token"]

    asked = _forgot(http, client.email.upper())  # the address as typed, in capitals
    assert asked.status_code == 202, asked.text
    assert deliver(settings) >= 1
    (message,) = [m for m in inbox.to(client.email) if m["Subject"] == password_reset.SUBJECT]
    assert isinstance(message, EmailMessage)
    body = message.get_content()
    assert "nouveau mot de passe" in body and "choose a new password" in body
    link = urlsplit(inbox.link_to(client.email, "/password/reset?token="))
    (token,) = parse_qs(link.query)["token"]
    with session_scope() as session:
        assert mail.waiting_for(session, client.email) == [], "the link left the outbox"

    page = http.get(f"{link.path}?{link.query}")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert 'name="password_again"' in page.text

    short = _reset(http, token, "short")
    assert short.status_code == 422  # refused, and the link still works
    assert _reset(http, token).status_code == 204
    for revoked in (client.token, other_session):
        answer = http.get(f"{API}/strategies", headers={"Authorization": f"Bearer {revoked}"})
        assert answer.status_code == 401, answer.text
    assert _log_in(http, client.email, client.password) == 401
    assert _log_in(http, client.email, NEW_PASSWORD) == 200

    # Used once: the link is dead, on the API and on the page.
    _invalid(_reset(http, token, "yet another passphrase"))
    dead = http.get(f"{link.path}?{link.query}")
    assert dead.status_code == 400
    assert "password/forgot" in dead.text
    assert _log_in(http, client.email, NEW_PASSWORD) == 200


def test_an_unknown_address_gets_the_same_answer_and_no_mail(http: TestClient) -> None:
    client = sign_up(http, "Known")
    ghost = f"ghost-{secrets.token_hex(4)}@example.com"
    known, unknown = _forgot(http, client.email), _forgot(http, ghost)
    assert (known.status_code, known.json()) == (unknown.status_code, unknown.json())
    assert known.status_code == 202
    with session_scope() as session:
        assert mail.waiting_for(session, ghost) == []
        subjects = [m.subject for m in mail.waiting_for(session, client.email)]
    assert password_reset.SUBJECT in subjects


def test_expired_forged_moved_or_outdated_links_are_refused(http: TestClient) -> None:
    victim, attacker = sign_up(http, "Victim"), sign_up(http, "Attacker")
    user, attackers = _user(victim.email), _user(attacker.email)
    now = utcnow()

    expired = password_reset.token_for(user, now - timedelta(hours=1, seconds=1))
    _invalid(_reset(http, expired))

    attackers_token = password_reset.token_for(attackers, now)
    _, expires, mac = attackers_token.split(".")
    _invalid(_reset(http, f"{user.id.hex}.{expires}.{mac}"))  # moved to the victim
    valid = password_reset.token_for(user, now)
    user_part, _, mac = valid.split(".")
    later = int((now + timedelta(days=30)).timestamp())
    _invalid(_reset(http, f"{user_part}.{later}.{mac}"))  # expiry pushed back
    _invalid(_reset(http, f"{uuid.uuid4().hex}.{expires}.{mac}"))
    for garbage in ("", "x", valid + "x", valid.replace(".", "-")):
        _invalid(_reset(http, garbage))

    # A password changed another way kills the links mailed before.
    changed_password = "changed the usual way"  # pragma: allowlist secret
    changed = http.post(
        f"{API}/auth/password",
        json={"current_password": victim.password, "new_password": changed_password},
        headers={**victim.auth, "X-Real-IP": unique_ip()},
    )
    assert changed.status_code == 204, changed.text
    _invalid(_reset(http, valid))
    assert _log_in(http, victim.email, changed_password) == 200


@pytest.fixture
def per_network_limit(app_settings: None) -> Iterator[int]:
    """The shipped per-network limit, which the suite lifts for its other tests."""
    limit = Settings.model_fields["password_resets_per_ip"].default
    saved = os.environ.get("FTA_PASSWORD_RESETS_PER_IP")
    os.environ["FTA_PASSWORD_RESETS_PER_IP"] = str(limit)
    get_settings.cache_clear()
    yield limit
    if saved is None:
        os.environ.pop("FTA_PASSWORD_RESETS_PER_IP", None)
    else:
        os.environ["FTA_PASSWORD_RESETS_PER_IP"] = saved
    get_settings.cache_clear()


def test_asking_is_throttled_per_address_and_per_network_alike_for_unknown_addresses(
    http: TestClient, per_network_limit: int
) -> None:
    client = sign_up(http, "Flooded")
    ghost = f"ghost-{secrets.token_hex(4)}@example.com"
    for email in (client.email, ghost):
        for _ in range(get_settings().password_resets_per_account):
            assert _forgot(http, email).status_code == 202
        refused = _forgot(http, email)
        assert refused.status_code == 429, refused.text
        assert refused.headers["content-type"] == PROBLEM_JSON
        assert int(refused.headers["retry-after"]) > 0
        assert refused.json()["title"] == "Too many password resets"
    with session_scope() as session:
        sent = mail.queued_since(
            session, client.email, utcnow() - timedelta(minutes=5), password_reset.SUBJECT
        )
    assert sent == get_settings().password_resets_per_account

    network = unique_ip()
    for _ in range(per_network_limit):
        assert (
            _forgot(http, f"spray-{secrets.token_hex(4)}@example.com", network).status_code == 202
        )
    assert _forgot(http, f"spray-{secrets.token_hex(4)}@example.com", network).status_code == 429
    # Another network asks for its own address as usual.
    assert _forgot(http, f"other-{secrets.token_hex(4)}@example.com").status_code == 202


def test_the_pages_reset_the_password_and_close_the_browsers_session(
    http: TestClient, live_portal: LivePortal
) -> None:
    client = sign_up(http, "PageReset")
    with page_client(live_portal) as browser:
        logged_in = browser.post(
            "/login",
            data={
                "csrf_token": form_token(browser, "/login"),
                "email": client.email,
                "password": client.password,
            },
        )
        assert logged_in.status_code == 303
        assert browser.get("/app").status_code == 200

        ghost = f"ghost-{secrets.token_hex(4)}@example.com"
        answers = []
        for email in (client.email, ghost):
            sent = browser.post(
                "/password/forgot",
                data={"csrf_token": form_token(browser, "/password/forgot"), "email": email},
                headers={"X-Real-IP": unique_ip()},
            )
            assert sent.status_code == 200, sent.text
            answers.append(sent.text.replace(email, "EMAIL"))
        assert answers[0] == answers[1]
        assert _reset_link(client.email) is not None
        parts = urlsplit(_reset_link(client.email) or "")
        form = browser.get(f"{parts.path}?{parts.query}")
        assert form.status_code == 200
        token = re.search(r'name="token" value="([^"]+)"', form.text)
        assert token
        csrf = form_token(browser, f"{parts.path}?{parts.query}")
        differ = browser.post(
            "/password/reset",
            data={
                "csrf_token": csrf,
                "token": token[1],
                "password": NEW_PASSWORD,
                "password_again": NEW_PASSWORD + "!",
            },
        )
        assert differ.status_code == 400
        assert "Les deux mots de passe diffèrent" in differ.text
        done = browser.post(
            "/password/reset",
            data={
                "csrf_token": csrf,
                "token": token[1],
                "password": NEW_PASSWORD,
                "password_again": NEW_PASSWORD,
            },
        )
        assert done.status_code == 200, done.text
        assert "Mot de passe modifié" in done.text
        assert 'fta_session=""' in done.headers["set-cookie"]
        # Without the cookie's removal too, the old session no longer opens a page.
        browser.cookies.set("fta_session", logged_in.cookies["fta_session"])
        assert browser.get("/app").status_code == 303
        again = browser.post(
            "/password/reset",
            data={
                "csrf_token": csrf,
                "token": token[1],
                "password": NEW_PASSWORD,
                "password_again": NEW_PASSWORD,
            },
        )
        assert again.status_code == 400
        assert "a déjà servi" in again.text
    assert _log_in(http, client.email, NEW_PASSWORD) == 200
    assert _log_in(http, client.email, client.password) == 401
