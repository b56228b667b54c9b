"""The browser's log-in: the access token in a cookie that scripts cannot read (HttpOnly),
sent back only to this site on navigation (SameSite=Lax) and, outside local HTTP, only over
HTTPS (Secure)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from fta.settings import get_settings

SESSION_COOKIE = "fta_session"


def token_of(request: Request) -> str | None:
    return request.cookies.get(SESSION_COOKIE) or None


def keep(response: Response, token: str, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        path="/",
        httponly=True,
        secure=get_settings().cookie_secure,
        samesite="lax",
    )


def forget(response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, secure=get_settings().cookie_secure, samesite="lax"
    )
