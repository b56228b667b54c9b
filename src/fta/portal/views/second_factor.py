"""The second step of a log-in with two-factor log-in: the code of the authenticator app (or a
recovery code), after the right password.

The password step issues no session: it keeps the pending log-in (signed, bound to the user,
five minutes) in a cookie sent back to `/login/...` only, and sends the browser here.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import Form, Query, Request
from starlette.responses import RedirectResponse, Response

from fta.accounts import service, two_factor
from fta.errors import RetryLater, Unauthorized
from fta.settings import get_settings
from fta.web import pages, session_cookie
from fta.web.deps import ClientIpDep, SessionDep
from fta.web.redirects import local_target

router = pages.page_router()

PENDING_COOKIE = "fta_login_pending"
CODE_PAGE = "/login/2fa"
NextQuery = Annotated[str, Query(alias="next", max_length=2000)]


def ask_for_code(pending: str, next_page: str) -> Response:
    """The answer to a right password of an account with two-factor log-in."""
    target = local_target(next_page, "/app")
    response = RedirectResponse(f"{CODE_PAGE}?{urlencode({'next': target})}", status_code=303)
    response.set_cookie(
        PENDING_COOKIE,
        pending,
        max_age=two_factor.PENDING_LOGIN_SECONDS,
        path="/login",
        httponly=True,
        secure=get_settings().cookie_secure,
        samesite="strict",
    )
    return response


def _forget_pending(response: Response) -> None:
    response.delete_cookie(
        PENDING_COOKIE,
        path="/login",
        httponly=True,
        secure=get_settings().cookie_secure,
        samesite="strict",
    )


def _back_to_password(request: Request, next_page: str) -> Response:
    _ = pages.gettext_for(request)
    context = {
        "next": next_page,
        "email": "",
        "error": _("Your log-in has expired: type your e-mail address and password again."),
    }
    response = pages.render(request, "auth/login.html", context, status_code=400)
    _forget_pending(response)
    return response


@router.get(CODE_PAGE)
def code_form(request: Request, next_page: NextQuery = "/app") -> Response:
    if not request.cookies.get(PENDING_COOKIE):
        return RedirectResponse("/login", status_code=303)
    context = {"next": local_target(next_page, "/app"), "error": None}
    return pages.render(request, "account/login_code.html", context)


@router.post(CODE_PAGE)
def code(
    request: Request,
    session: SessionDep,
    ip: ClientIpDep,
    otp: Annotated[str, Form(max_length=32)],
    next_page: Annotated[str, Form(alias="next", max_length=2000)] = "/app",
) -> Response:
    _ = pages.gettext_for(request)
    pending = request.cookies.get(PENDING_COOKIE, "")
    ttl = get_settings().web_session_hours * 3600
    try:
        issued = service.login_with_code(session, pending=pending, code=otp, ip=ip, ttl=ttl)
    except two_factor.LoginExpired:
        return _back_to_password(request, next_page)
    except RetryLater:
        error = _("Too many attempts. Wait a few minutes, then try again.")
    except Unauthorized:
        error = _("Wrong code. Type the code your app shows now, or a recovery code.")
    else:
        response = RedirectResponse(local_target(next_page, "/app"), status_code=303)
        session_cookie.keep(response, issued.access_token, ttl)
        _forget_pending(response)
        return response
    context = {"next": next_page, "error": error}
    return pages.render(request, "account/login_code.html", context, status_code=400)
