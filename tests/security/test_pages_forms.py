"""The pages' forms: no POST without this browser's CSRF token, cookies a script cannot read,
no redirect off the site, and the same answers whatever a page's error."""

from __future__ import annotations

import re
import secrets

import httpx
import pytest

from tests.support.browser import LivePortal
from tests.support.page_client import form_token, page_client

PASSWORD = "a long enough password"  # pragma: allowlist secret


def _sign_up(client: httpx.Client) -> str:
    email = f"forms-{secrets.token_hex(4)}@example.com"
    answer = client.post(
        "/signup",
        data={
            "csrf_token": form_token(client, "/signup"),
            "display_name": "Forms",
            "email": email,
            "password": PASSWORD,
            "accept_terms": "true",
        },
    )
    assert answer.status_code == 303, answer.text
    return email


def test_a_form_without_the_browsers_token_is_refused(live_portal: LivePortal) -> None:
    with page_client(live_portal) as client:
        token = form_token(client, "/login")
        form = {"email": "nobody@example.com", "password": PASSWORD}
        for data, headers in [
            (form, {}),
            ({**form, "csrf_token": "0" * 64}, {}),
            ({**form, "csrf_token": token}, {"Sec-Fetch-Site": "cross-site"}),
        ]:
            refused = client.post("/login", data=data, headers=headers)
            assert refused.status_code == 403, refused.text
            assert refused.headers["content-type"].startswith("text/html")
            assert "login" not in refused.headers.get("set-cookie", "")
        # Another browser's token does not fit this browser's cookie.
        with page_client(live_portal) as other:
            other_token = form_token(other, "/login")
        assert client.post("/login", data={**form, "csrf_token": other_token}).status_code == 403
        assert client.post("/login", data={**form, "csrf_token": token}).status_code == 400


def test_the_session_cookie_is_out_of_scripts_reach_and_https_only(
    live_portal: LivePortal,
) -> None:
    with page_client(live_portal) as client:
        first = client.get("/")
        csrf_cookie = first.headers["set-cookie"]
        assert re.search(
            r"fta_csrf=[\w-]{43}; Path=/; HttpOnly; SameSite=Strict; Secure", csrf_cookie
        )
        token = form_token(client, "/signup")
        answer = client.post(
            "/signup",
            data={
                "csrf_token": token,
                "display_name": "Cookie",
                "email": f"cookie-{secrets.token_hex(4)}@example.com",
                "password": PASSWORD,
                "accept_terms": "true",
            },
        )
        assert answer.status_code == 303
        session_cookie = answer.headers["set-cookie"].lower()
        assert session_cookie.startswith("fta_session=")
        for attribute in ("httponly", "secure", "samesite=lax", "path=/"):
            assert attribute in session_cookie


@pytest.mark.parametrize(
    "target",
    ["//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)", "app"],
)
def test_after_log_in_the_browser_stays_on_this_site(live_portal: LivePortal, target: str) -> None:
    with page_client(live_portal) as client:
        email = _sign_up(client)
    with page_client(live_portal) as client:
        answer = client.post(
            "/login",
            data={
                "csrf_token": form_token(client, "/login"),
                "email": email,
                "password": PASSWORD,
                "next": target,
            },
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == "/app"


def test_a_page_for_clients_sends_strangers_to_log_in_and_an_unknown_page_is_a_page(
    live_portal: LivePortal,
) -> None:
    with page_client(live_portal) as client:
        answer = client.get("/app", params={"tab": "x"})
        assert answer.status_code == 303
        assert answer.headers["location"] == "/login?next=%2Fapp%3Ftab%3Dx"
        missing = client.get("/no-such-page")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("text/html")
        assert "Page introuvable" in missing.text
        # The API's errors stay problem documents.
        api = client.get("/api/v1/no-such-route")
        assert api.headers["content-type"] == "application/problem+json"
