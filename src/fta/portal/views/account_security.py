"""The account's security pages: personal API tokens (made, listed, revoked) and two-factor
log-in (enabled with an authenticator app, recovery codes, disabled).

Secrets (a new token's value, the TOTP secret while it is being set up, recovery codes) are
shown once, on the answer to the form that made them, never stored by the browser's cache.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import segno
from fastapi import Form, Request
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from fta.accounts import personal_tokens, service, two_factor
from fta.accounts.deps import PagePrincipalDep, PageTenantDep
from fta.accounts.models import TokenScope, User
from fta.accounts.service import Principal
from fta.db import utcnow
from fta.errors import Conflict, Forbidden, Invalid, RetryLater, Unauthorized
from fta.web import pages
from fta.web.deps import ClientIpDep, SessionDep

router = pages.page_router("/app/account")

# Pages that show a secret: kept by no cache, the browser's history included.
NO_STORE = {"Cache-Control": "no-store"}
EXPIRY_DAYS = ("30", "90", "365")
NEVER = "never"
SECURITY_PAGE = "/app/account/security"
CodeField = Annotated[str, Form(max_length=32)]


def _tokens_page(
    request: Request,
    session: Session,
    principal: Principal,
    *,
    created: personal_tokens.CreatedToken | None = None,
    error: str | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    context: dict[str, Any] = {
        "tokens": personal_tokens.list_tokens(session, principal),
        "now": utcnow(),
        "created": created,
        "error": error,
        "form": form or {"name": "", "scope": TokenScope.READ.value, "expires_in_days": "90"},
        "expiry_days": EXPIRY_DAYS,
    }
    return pages.render(
        request, "account/tokens.html", context, status_code=status_code, headers=NO_STORE
    )


@router.get("/tokens")
def tokens(
    request: Request, session: SessionDep, principal: PagePrincipalDep, tenant_id: PageTenantDep
) -> Response:
    return _tokens_page(request, session, principal)


@router.post("/tokens")
def create_token(
    request: Request,
    session: SessionDep,
    principal: PagePrincipalDep,
    tenant_id: PageTenantDep,
    ip: ClientIpDep,
    name: Annotated[str, Form(max_length=200)],
    scope: Annotated[str, Form(max_length=10)] = TokenScope.READ.value,
    expires_in_days: Annotated[str, Form(max_length=10)] = "90",
) -> Response:
    _ = pages.gettext_for(request)
    form = {"name": name, "scope": scope, "expires_in_days": expires_in_days}
    error = None
    if scope not in {s.value for s in TokenScope}:
        error = _("Choose what the token may do.")
    elif expires_in_days not in (*EXPIRY_DAYS, NEVER):
        error = _("Choose when the token expires.")
    else:
        try:
            created = personal_tokens.create(
                session,
                principal,
                name=name,
                scope=TokenScope(scope),
                expires_in_days=None if expires_in_days == NEVER else int(expires_in_days),
                now=utcnow(),
                ip=ip,
            )
        except Invalid:
            error = _("Give the token a name of 1 to 100 characters.")
        except Conflict:
            error = _("You have too many active tokens: revoke those you no longer use.")
        except Forbidden:
            error = _("Log in again with your password to make a token.")
        else:
            return _tokens_page(request, session, principal, created=created)
    return _tokens_page(request, session, principal, error=error, form=form, status_code=400)


@router.post("/tokens/{token_id}/revoke")
def revoke_token(
    session: SessionDep,
    principal: PagePrincipalDep,
    tenant_id: PageTenantDep,
    ip: ClientIpDep,
    token_id: uuid.UUID,
) -> Response:
    personal_tokens.revoke(session, principal, token_id, utcnow(), ip)
    return RedirectResponse("/app/account/tokens", status_code=303)


# --- two-factor log-in ----------------------------------------------------------------------


def _user(session: Session, principal: Principal) -> User:
    user = session.get(User, principal.user_id)
    if user is None:
        raise Unauthorized("this account no longer exists")
    return user


def _security_page(
    request: Request,
    session: Session,
    principal: Principal,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    user = _user(session, principal)
    context = {
        "enabled": two_factor.enabled(user),
        "enabled_at": user.totp_enabled_at,
        "codes_left": two_factor.recovery_codes_left(session, user.id),
        "error": error,
    }
    return pages.render(request, "account/security.html", context, status_code=status_code)


def _setup_page(
    request: Request,
    enrolment: two_factor.Enrolment,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    secret = enrolment.secret
    context = {
        "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        "uri": enrolment.uri,
        "qr": segno.make(enrolment.uri, error="m").svg_data_uri(scale=5, border=2),
        "sealed": enrolment.sealed,
        "error": error,
    }
    return pages.render(
        request, "account/setup.html", context, status_code=status_code, headers=NO_STORE
    )


def _codes_page(request: Request, codes: list[str]) -> Response:
    return pages.render(request, "account/recovery_codes.html", {"codes": codes}, headers=NO_STORE)


@router.get("/security")
def security(request: Request, session: SessionDep, principal: PagePrincipalDep) -> Response:
    return _security_page(request, session, principal)


@router.get("/security/setup")
def setup(request: Request, session: SessionDep, principal: PagePrincipalDep) -> Response:
    """A new secret to set up (nothing is stored before a code confirms it)."""
    user = _user(session, principal)
    if two_factor.enabled(user):
        return RedirectResponse(SECURITY_PAGE, status_code=303)
    return _setup_page(request, two_factor.start_enrolment(user, utcnow()))


@router.post("/security/setup")
def confirm_setup(
    request: Request,
    session: SessionDep,
    principal: PagePrincipalDep,
    ip: ClientIpDep,
    enrolment: Annotated[str, Form(max_length=500)],
    otp: CodeField,
) -> Response:
    _ = pages.gettext_for(request)
    user = two_factor.locked_user(session, principal.user_id)
    if two_factor.enabled(user):
        return RedirectResponse(SECURITY_PAGE, status_code=303)
    now = utcnow()
    pending = two_factor.resume_enrolment(user, enrolment, now)
    if pending is None:
        error = _("The set-up took too long: start it again.")
        return _security_page(request, session, principal, error=error, status_code=400)
    codes = two_factor.confirm_enrolment(session, user, pending, otp, now, ip)
    if codes is None:
        error = _("Wrong code. Type the code your app shows now for fta.")
        return _setup_page(request, pending, error=error, status_code=400)
    return _codes_page(request, codes)


@router.post("/security/recovery-codes")
def renew_recovery_codes(
    request: Request,
    session: SessionDep,
    principal: PagePrincipalDep,
    ip: ClientIpDep,
    otp: CodeField,
) -> Response:
    _ = pages.gettext_for(request)
    try:
        codes = service.renew_recovery_codes(session, principal, code=otp, ip=ip)
    except Conflict:
        return RedirectResponse(SECURITY_PAGE, status_code=303)
    except RetryLater:
        error = _("Too many attempts. Wait a few minutes, then try again.")
    except Unauthorized:
        error = _("Wrong code. Type the code your app shows now, or a recovery code.")
    else:
        return _codes_page(request, codes)
    return _security_page(request, session, principal, error=error, status_code=400)


@router.post("/security/disable")
def disable(
    request: Request,
    session: SessionDep,
    principal: PagePrincipalDep,
    ip: ClientIpDep,
    password: Annotated[str, Form(max_length=200)],
    otp: CodeField,
) -> Response:
    _ = pages.gettext_for(request)
    try:
        service.turn_off_two_factor(session, principal, password=password, code=otp, ip=ip)
    except Conflict:
        return RedirectResponse(SECURITY_PAGE, status_code=303)
    except RetryLater:
        error = _("Too many attempts. Wait a few minutes, then try again.")
    except Unauthorized:
        error = _("Wrong password or code: two-factor log-in is still on.")
    else:
        return RedirectResponse(SECURITY_PAGE, status_code=303)
    return _security_page(request, session, principal, error=error, status_code=400)
