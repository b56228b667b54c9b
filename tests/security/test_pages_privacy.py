"""The account's data page and export: no form without this browser's token, no export without
a log-in, and one account's export never holds another's data."""

from __future__ import annotations

import io
import re
import secrets
import zipfile

import httpx
from fastapi.testclient import TestClient

from tests.support.api import Client, sign_up, upload_strategy
from tests.support.browser import LivePortal

PASSWORD = "a long enough password"  # pragma: allowlist secret
API = "/api/v1"


def _browser(live_portal: LivePortal) -> httpx.Client:
    """A client that keeps cookies as Chromium does on http://127.0.0.1 (a secure context)."""
    client = httpx.Client(base_url=live_portal.url, follow_redirects=False, timeout=30)

    def keep_cookies(response: httpx.Response) -> None:
        for cookie in response.cookies.jar:
            client.cookies.set(cookie.name, cookie.value or "")

    client.event_hooks["response"] = [keep_cookies]
    return client


def _token(client: httpx.Client, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.text)
    assert found, "the form carries no CSRF token"
    return found[1]


def _signed_up(client: httpx.Client) -> str:
    """Signs the browser up (and so in); the account's address."""
    email = f"privacy-{secrets.token_hex(4)}@example.com"
    answer = client.post(
        "/signup",
        data={
            "csrf_token": _token(client, "/signup"),
            "display_name": "Privacy",
            "email": email,
            "password": PASSWORD,
            "accept_terms": "true",
        },
    )
    assert answer.status_code == 303, answer.text
    return email


def test_the_export_form_needs_the_browsers_token(live_portal: LivePortal) -> None:
    with _browser(live_portal) as client:
        _signed_up(client)
        token = _token(client, "/app/account/data")
        for data, headers in [
            ({}, {}),
            ({"csrf_token": "0" * 64}, {}),
            ({"csrf_token": token}, {"Sec-Fetch-Site": "cross-site"}),
        ]:
            refused = client.post("/app/account/data/export", data=data, headers=headers)
            assert refused.status_code == 403, refused.text
            assert refused.headers["content-type"].startswith("text/html")
        sent = client.post("/app/account/data/export", data={"csrf_token": token})
        assert sent.status_code == 200, sent.text
        assert sent.headers["content-type"] == "application/zip"
        with zipfile.ZipFile(io.BytesIO(sent.content)) as archive:
            assert "account.json" in archive.namelist()


def test_a_stranger_is_sent_to_log_in(live_portal: LivePortal) -> None:
    with _browser(live_portal) as client:
        token = _token(client, "/login")
        for answer in (
            client.get("/app/account/data"),
            client.post("/app/account/data/export", data={"csrf_token": token}),
        ):
            assert answer.status_code == 303
            assert answer.headers["location"].startswith("/login?next=")


def test_the_api_export_needs_a_token(http: TestClient) -> None:
    assert http.get(f"{API}/account/export").status_code == 401
    bogus = {"Authorization": "Bearer not-a-token"}
    assert http.get(f"{API}/account/export", headers=bogus).status_code == 401


def _names_and_text(client: Client) -> tuple[list[str], bytes]:
    answer = client.http.get(f"{API}/account/export", headers=client.auth)
    assert answer.status_code == 200, answer.text
    with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
        names = archive.namelist()
        return names, b"\n".join(archive.read(name) for name in names)


def test_one_accounts_export_never_holds_anothers(http: TestClient) -> None:
    first, second = sign_up(http, "First"), sign_up(http, "Second")
    first_strategy = upload_strategy(first, "Quick")
    second_strategy = upload_strategy(second, "RsiQuick")
    for own, other, own_strategy, other_strategy in (
        (first, second, first_strategy, second_strategy),
        (second, first, second_strategy, first_strategy),
    ):
        names, text = _names_and_text(own)
        assert own.email.encode() in text and own_strategy.encode() in text
        for mark in (other.tenant_id, other.email, other_strategy):
            assert mark.encode() not in text and not any(mark in name for name in names)
