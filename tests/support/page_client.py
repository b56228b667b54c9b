"""Posting the portal's forms over HTTP, as a browser would: a client that keeps its cookies,
the form token of a page, and a log-in through the log-in form."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from tests.support.browser import LivePortal

_FORM_TOKEN = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


def page_client(live_portal: LivePortal) -> httpx.Client:
    """A client that keeps every cookie, as Chromium does on http://127.0.0.1 (a secure
    context, where httpx would hold back Secure cookies)."""
    client = httpx.Client(base_url=live_portal.url, follow_redirects=False, timeout=30)

    def keep_cookies(response: httpx.Response) -> None:
        for cookie in response.cookies.jar:
            client.cookies.set(cookie.name, cookie.value or "")

    client.event_hooks["response"] = [keep_cookies]
    return client


def form_token(client: httpx.Client, path: str) -> str:
    """The CSRF token the form of the page at `path` carries for this client."""
    page = client.get(path)
    assert page.status_code == 200, page.text
    found = _FORM_TOKEN.search(page.text)
    assert found, f"the form of {path} carries no CSRF token"
    return found[1]


def log_in_form(client: httpx.Client, email: str, password: str) -> None:
    """Logs the page client in through the log-in form (it lands on the dashboard)."""
    answer = client.post(
        "/login",
        data={"csrf_token": form_token(client, "/login"), "email": email, "password": password},
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/app", answer.text


@contextmanager
def logged_in(live_portal: LivePortal, email: str, password: str) -> Iterator[httpx.Client]:
    """A page client logged in for the block, closed after it."""
    with page_client(live_portal) as client:
        log_in_form(client, email, password)
        yield client
