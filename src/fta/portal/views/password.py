"""A forgotten password: asking for a reset link by e-mail, and choosing a new password with
it. The first answers alike whether an account has the address or not."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Query, Request
from starlette.responses import Response

from fta.accounts import password_reset, service
from fta.db import utcnow
from fta.errors import Invalid, RetryLater
from fta.web import pages, session_cookie
from fta.web.deps import ClientIpDep, SessionDep

router = pages.page_router()

TokenField = Annotated[str, Form(max_length=200)]
PasswordField = Annotated[str, Form(max_length=200)]
# The link's token is in these pages: kept by no cache.
NO_STORE = {"Cache-Control": "no-store"}


@router.get(password_reset.FORGOT_PAGE)
def forgot_form(request: Request) -> Response:
    return pages.render(request, "password/forgot.html", {"email": "", "error": None})


@router.post(password_reset.FORGOT_PAGE)
def forgot(
    request: Request,
    session: SessionDep,
    ip: ClientIpDep,
    email: Annotated[str, Form(max_length=254)],
) -> Response:
    _ = pages.gettext_for(request)
    email = email.strip()
    if not email:
        error = _("Type the e-mail address of your account.")
        context = {"email": email, "error": error}
        return pages.render(request, "password/forgot.html", context, status_code=400)
    try:
        password_reset.request_reset(session, email, utcnow(), ip)
    except RetryLater:
        error = _(
            "Several links were asked for this address or from your network within the hour: "
            "check your inbox and spam folder, or try again later."
        )
        context = {"email": email, "error": error}
        return pages.render(request, "password/forgot.html", context, status_code=429)
    return pages.render(request, "password/sent.html", {"email": email})


def _reset_form(
    request: Request, token: str, error: str | None = None, status_code: int = 200
) -> Response:
    context = {
        "token": token,
        "error": error,
        "min_length": service.MIN_PASSWORD_LENGTH,
    }
    return pages.render(
        request, "password/reset.html", context, status_code=status_code, headers=NO_STORE
    )


def _dead_link(request: Request) -> Response:
    return pages.render(request, "password/invalid.html", status_code=400, headers=NO_STORE)


@router.get(password_reset.RESET_PAGE)
def reset_form(
    request: Request, session: SessionDep, token: Annotated[str, Query(max_length=200)] = ""
) -> Response:
    try:
        password_reset.check(session, token, utcnow())
    except Invalid:
        return _dead_link(request)
    return _reset_form(request, token)


@router.post(password_reset.RESET_PAGE)
def reset(
    request: Request,
    session: SessionDep,
    ip: ClientIpDep,
    token: TokenField,
    password: PasswordField,
    password_again: PasswordField,
) -> Response:
    _ = pages.gettext_for(request)
    if len(password) < service.MIN_PASSWORD_LENGTH:
        error = _("The password must be at least %(n)d characters long.") % {
            "n": service.MIN_PASSWORD_LENGTH
        }
        return _reset_form(request, token, error, 400)
    if password != password_again:
        return _reset_form(request, token, _("The two passwords differ: type them again."), 400)
    try:
        password_reset.reset(session, token, password, utcnow(), ip)
    except Invalid:
        return _dead_link(request)
    except RetryLater:
        return _reset_form(request, token, _("The portal is busy: try again in a moment."), 503)
    response = pages.render(request, "password/done.html", headers=NO_STORE)
    # Every session was revoked: this browser's too.
    session_cookie.forget(response)
    return response
