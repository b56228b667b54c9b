"""Signing up, verifying the e-mail address, logging in and out, in the browser."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Query, Request
from starlette.responses import RedirectResponse, Response

from fta.accounts import service, two_factor, verification
from fta.accounts.deps import MaybePrincipalDep, PagePrincipalDep
from fta.db import utcnow
from fta.errors import Conflict, Invalid, RetryLater, Unauthorized
from fta.portal.views import second_factor
from fta.settings import get_settings
from fta.web import pages, session_cookie
from fta.web.deps import ClientIpDep, SessionDep
from fta.web.redirects import local_target

router = pages.page_router()

EmailField = Annotated[str, Form(max_length=254)]
PasswordField = Annotated[str, Form(max_length=200)]
NextField = Annotated[str, Form(alias="next", max_length=2000)]


def _signed_in(target: str, token: str, ttl: int) -> Response:
    response = RedirectResponse(local_target(target, "/app"), status_code=303)
    session_cookie.keep(response, token, ttl)
    return response


@router.get("/login")
def login_form(
    request: Request,
    principal: MaybePrincipalDep,
    next_page: Annotated[str, Query(alias="next", max_length=2000)] = "/app",
) -> Response:
    if principal is not None:
        return RedirectResponse(local_target(next_page, "/app"), status_code=303)
    return pages.render(request, "auth/login.html", {"next": next_page, "email": "", "error": None})


@router.post("/login")
def login(
    request: Request,
    session: SessionDep,
    ip: ClientIpDep,
    email: EmailField,
    password: PasswordField,
    next_page: NextField = "/app",
) -> Response:
    _ = pages.gettext_for(request)
    ttl = get_settings().web_session_hours * 3600
    try:
        issued = service.login(session, email=email, password=password, ip=ip, ttl=ttl)
    except two_factor.CodeRequired as required:
        return second_factor.ask_for_code(required.pending, next_page)
    except RetryLater:
        error = _("Too many attempts. Wait a few minutes, then try again.")
    except Unauthorized:
        error = _("Wrong e-mail address or password.")
    else:
        return _signed_in(next_page, issued.access_token, ttl)
    context = {"next": next_page, "email": email, "error": error}
    return pages.render(request, "auth/login.html", context, status_code=400)


@router.post("/logout")
def logout(principal: PagePrincipalDep, session: SessionDep, ip: ClientIpDep) -> Response:
    service.logout(session, principal, ip)
    response = RedirectResponse("/", status_code=303)
    session_cookie.forget(response)
    return response


@router.get("/signup")
def signup_form(request: Request) -> Response:
    context = {"email": "", "display_name": "", "error": None}
    return pages.render(request, "auth/signup.html", context)


@router.post("/signup")
def signup(
    request: Request,
    session: SessionDep,
    ip: ClientIpDep,
    email: EmailField,
    password: PasswordField,
    display_name: Annotated[str, Form(max_length=100)],
    accept_terms: Annotated[bool, Form()] = False,
) -> Response:
    _ = pages.gettext_for(request)
    error = None
    if not accept_terms:
        error = _("Accept the terms of service to open an account.")
    elif len(password) < service.MIN_PASSWORD_LENGTH:
        error = _("The password must be at least %(n)d characters long.") % {
            "n": service.MIN_PASSWORD_LENGTH
        }
    elif not display_name.strip():
        error = _("Give a name for your account (yours or your company's).")
    else:
        try:
            user = service.signup(
                session, email=email, password=password, display_name=display_name.strip(), ip=ip
            )
        except Conflict:
            error = _("An account already exists for this e-mail address: log in instead.")
        except RetryLater:
            error = _("Too many sign-ups from your network. Try again in an hour.")
        except Invalid as invalid:
            error = invalid.detail
        else:
            verification.send_verification(session, user, utcnow())
            ttl = get_settings().web_session_hours * 3600
            issued = service.open_session(session, user, ip=ip, ttl=ttl)
            return _signed_in("/app", issued.access_token, ttl)
    context = {"email": email, "display_name": display_name, "error": error}
    return pages.render(request, "auth/signup.html", context, status_code=400)


@router.get(verification.VERIFY_PAGE)
def verify_email(
    request: Request,
    session: SessionDep,
    ip: ClientIpDep,
    token: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    try:
        user = verification.verify(session, token, utcnow(), ip)
    except Invalid:
        return pages.render(request, "auth/verified.html", {"email": None}, status_code=400)
    return pages.render(request, "auth/verified.html", {"email": user.email})


@router.post("/verify-email/resend")
def resend_verification(
    request: Request, principal: PagePrincipalDep, session: SessionDep
) -> Response:
    _ = pages.gettext_for(request)
    try:
        user = verification.resend(session, principal, utcnow())
    except RetryLater:
        message = _("Several links were sent within the hour: check your inbox and spam folder.")
    except Conflict:
        message = _("Your e-mail address is already verified.")
    else:
        message = _("A new link was sent to %(email)s.") % {"email": user.email}
    return pages.render(request, "auth/resent.html", {"message": message})
