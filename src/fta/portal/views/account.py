"""The account's own page: who is signed in, the password, and the way to the account's
security, API tokens and data."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from starlette.responses import RedirectResponse, Response

from fta.accounts import service
from fta.accounts.deps import PagePrincipalDep, PageTenantDep
from fta.accounts.models import User
from fta.errors import Invalid, RetryLater, Unauthorized
from fta.web import pages, session_cookie
from fta.web.deps import ClientIpDep, SessionDep

router = pages.page_router("/app/account")


def _render(
    request: Request,
    session: SessionDep,
    principal: PagePrincipalDep,
    tenant_id: str,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    context = {
        "user": session.get(User, principal.user_id),
        "tenant": service.get_tenant(session, tenant_id),
        "error": error,
    }
    return pages.render(request, "account/profile.html", context, status_code=status_code)


@router.get("")
def profile(
    request: Request, session: SessionDep, principal: PagePrincipalDep, tenant_id: PageTenantDep
) -> Response:
    return _render(request, session, principal, tenant_id)


@router.post("/password")
def change_password(
    request: Request,
    session: SessionDep,
    principal: PagePrincipalDep,
    tenant_id: PageTenantDep,
    ip: ClientIpDep,
    current_password: Annotated[str, Form(max_length=200)],
    new_password: Annotated[str, Form(max_length=200)],
) -> Response:
    """Changes the password; every session ends, this one too, so the browser logs in again."""
    _ = pages.gettext_for(request)
    try:
        service.change_password(
            session, principal, current=current_password, new=new_password, ip=ip
        )
    except RetryLater:
        error = _("Too many attempts. Wait a few minutes, then try again.")
    except Unauthorized:
        error = _("The current password is wrong.")
    except Invalid:
        error = _("The password must be at least %(n)d characters long.") % {
            "n": service.MIN_PASSWORD_LENGTH
        }
    else:
        response = RedirectResponse("/login?changed=1", status_code=303)
        session_cookie.forget(response)
        return response
    return _render(request, session, principal, tenant_id, error, status_code=400)
