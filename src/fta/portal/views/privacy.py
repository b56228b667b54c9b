"""The account's data: download everything it holds as one zip (the same export as
GET /api/v1/account/export)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from sqlalchemy.orm import Session
from starlette.responses import Response

from fta.accounts.deps import PagePrincipalDep, PageTenantDep, page_principal, page_tenant
from fta.accounts.models import User
from fta.accounts.service import Principal, get_tenant
from fta.db import session_scope, utcnow
from fta.privacy import export
from fta.privacy.api import zip_response
from fta.web import pages
from fta.web.deps import ClientIpDep, SessionDep

router = pages.page_router("/app/account/data")


def _data_page(
    request: Request,
    session: Session,
    principal: Principal,
    tenant_id: str,
    *,
    export_error: str | None = None,
    status_code: int = 200,
) -> Response:
    user = session.get(User, principal.user_id)
    context: dict[str, Any] = {
        "tenant": get_tenant(session, tenant_id),
        "email": user.email if user is not None else "",
        "export_error": export_error,
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
