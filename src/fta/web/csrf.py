"""Cross-site request forgery: every form of the pages carries a token bound to the browser.

The browser holds a random value in an HttpOnly cookie (set by `CsrfCookie` on its first
page); each form carries an HMAC of that value keyed by FTA_SECRET_KEY. A POST is accepted
only when the two match, and never when the browser itself says it comes from another site.
Another site can neither read the cookie nor compute the token, so it cannot forge a form.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from http.cookies import CookieError, SimpleCookie

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fta.errors import Forbidden
from fta.settings import get_settings

CSRF_COOKIE = "fta_csrf"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _cookie_value(scope: Scope) -> str | None:
    value = scope.get("state", {}).get(CSRF_COOKIE)
    return value if isinstance(value, str) else None


def form_token(browser_value: str) -> str:
    key = get_settings().secret_key.get_secret_value().encode()
    return hmac.new(key, f"csrf|{browser_value}".encode(), hashlib.sha256).hexdigest()


def token_for(request: Request) -> str:
    """The token this browser's forms carry ("" outside the pages, where no form is
    accepted)."""
    value = _cookie_value(request.scope)
    return "" if value is None else form_token(value)


class CsrfRefused(Forbidden):
    title = "Form refused"


async def check(request: Request) -> None:
    """Refuses an unsafe request of a page without this browser's token (a dependency of
    every page router, so no form can forget it)."""
    if request.method in SAFE_METHODS:
        return
    refusal = CsrfRefused(
        "this form has expired or did not come from this site: reload the page and try again"
    )
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise refusal
    sent_cookie = request.cookies.get(CSRF_COOKIE)
    form = await request.form()
    sent_token = form.get(CSRF_FIELD)
    if not sent_cookie or not isinstance(sent_token, str):
        raise refusal
    if not hmac.compare_digest(form_token(sent_cookie), sent_token):
        raise refusal


class CsrfCookie:
    """Gives each browser its random CSRF value on the first page it asks for."""

    def __init__(self, app: ASGIApp, *, skip_prefixes: tuple[str, ...]) -> None:
        self.app = app
        self.skip_prefixes = skip_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.skip_prefixes):
            await self.app(scope, receive, send)
            return
        cookie = SimpleCookie()
        for header, value in scope["headers"]:
            if header == b"cookie":
                try:
                    cookie.load(value.decode("latin-1"))
                except CookieError:  # an unreadable header: the browser gets a new value
                    continue
        existing = cookie.get(CSRF_COOKIE)
        value = existing.value if existing is not None and len(existing.value) == 43 else None
        fresh = value is None
        if value is None:
            value = secrets.token_urlsafe(32)
        scope.setdefault("state", {})[CSRF_COOKIE] = value

        async def send_with_cookie(message: Message) -> None:
            if fresh and message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                secure = "; Secure" if get_settings().cookie_secure else ""
                headers.append(
                    "set-cookie",
                    f"{CSRF_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict{secure}",
                )
            await send(message)

        await self.app(scope, receive, send_with_cookie)
