"""The account's data: download everything it holds as one zip (the same export as
GET /api/v1/account/export), or delete the account (fta.privacy.erasure)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Request
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from fta.accounts.deps import PagePrincipalDep, PageTenantDep, page_principal, page_tenant
from fta.accounts.models import User
from fta.accounts.service import Principal, get_tenant
from fta.db import session_scope, utcnow
from fta.errors import Conflict, Forbidden, Invalid, RetryLater, Unauthorized
from fta.privacy import erasure, export
from fta.privacy.api import zip_response
from fta.web import pages, session_cookie
from fta.web.deps import ClientIpDep, SessionDep

router = pages.page_router("/app/account/data")


def _data_page(
    request: Request,
    session: Session,
    principal: Principal,
    tenant_id: str,
    *,
    export_error: str | None = None,
    erase_error: str | None = None,
    status_code: int = 200,
) -> Response:
    user = session.get(User, principal.user_id)
    context: dict[str, Any] = {
        "tenant": get_tenant(session, tenant_id),
        "email": user.email if user is not None else "",
        "export_error": export_error,
        "erase_error": erase_error,
    }
    return pages.render(request, "privacy/data.html", context, status_code=status_code)


@router.get("")
def data_page(
    request: Request, session: SessionDep, principal: PagePrincipalDep, tenant_id: PageTenantDep
) -> Response:
    return _data_page(request, session, principal, tenant_id)


@router.post("/export")
def export_data(request: Request, ip: ClientIpDep) -> Response:
    """The zip, as a download. No database session is held while it is sent."""
    _ = pages.gettext_for(request)
    with session_scope() as session:
        principal = page_principal(request, session)
        tenant_id = page_tenant(principal)
    error: tuple[str, int] | None = None
    try:
        lease = export.SLOTS.acquire(tenant_id)
    except export.ExportBusy:
        error = (_("An export of your account is already being made: wait for it to finish."), 429)
    else:
        try:
            with session_scope() as session:
                prepared = export.prepare_export(session, principal, tenant_id, ip, utcnow())
        except export.ExportTooLarge:
            lease.release()
            error = (_("Your account holds too much data for one export: contact support."), 409)
        except BaseException:
            lease.release()
            raise
        else:
            return zip_response(prepared, lease)
    message, status = error
    with session_scope() as session:
        return _data_page(
            request, session, principal, tenant_id, export_error=message, status_code=status
        )


@router.post("/delete")
def delete_account(
    request: Request,
    session: SessionDep,
    principal: PagePrincipalDep,
    tenant_id: PageTenantDep,
    ip: ClientIpDep,
    password: Annotated[str, Form(max_length=200)] = "",
    confirmation: Annotated[str, Form(max_length=254)] = "",
) -> Response:
    """Deletes the account: refused everywhere at once, erased by the worker within minutes.
    The browser is logged out."""
    _ = pages.gettext_for(request)
    try:
        erasure.request_erasure(
            session, principal, password=password, confirmation=confirmation, ip=ip
        )
    except Invalid:
        error = _("Type your account's e-mail address exactly, to confirm.")
    except RetryLater:
        error = _("Too many attempts. Wait a few minutes, then try again.")
    except Unauthorized:
        error = _("Wrong password: your account was not deleted.")
    except (Conflict, Forbidden):
        error = _("This account cannot be deleted from here: contact support.")
    else:
        response = RedirectResponse("/app/account/data/deleted", status_code=303)
        session_cookie.forget(response)
        return response
    return _data_page(request, session, principal, tenant_id, erase_error=error, status_code=400)


@router.get("/deleted")
def account_deleted(request: Request) -> Response:
    """Where the browser lands once the account is deleted (logged out)."""
    return pages.render(request, "privacy/deleted.html")
