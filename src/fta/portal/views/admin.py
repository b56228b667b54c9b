"""The operator's console (/admin): clients' accounts, found and looked over, suspended
with a reason the client reads, and reactivated. For administrators with two-factor log-in
only; a client is told no such page exists."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Path, Query, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from fta.accounts.deps import PageAdminDep
from fta.db import utcnow
from fta.errors import Conflict, Invalid
from fta.operators import service
from fta.web import pages
from fta.web.deps import ClientIpDep, SessionDep

router = pages.page_router("/admin")

TenantId = Annotated[str, Path(min_length=1, max_length=8, pattern="^[a-z2-7]+$")]


@router.get("")
def tenants(
    request: Request,
    session: SessionDep,
    admin: PageAdminDep,
    q: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    found = service.find_tenants(session, q)
    return pages.render(request, "admin/tenants.html", {"q": q, "rows": found})


@router.get("/tenants/{tenant_id}")
def tenant(
    request: Request,
    session: SessionDep,
    admin: PageAdminDep,
    tenant_id: TenantId,
) -> Response:
    return _tenant_page(request, session, tenant_id)


def _tenant_page(
    request: Request,
    session: SessionDep,
    tenant_id: TenantId,
    *,
    error: str | None = None,
    reason: str = "",
    status_code: int = 200,
) -> Response:
    overview = service.tenant_overview(session, tenant_id, utcnow())
    context = {"o": overview, "error": error, "reason": reason, "reason_max": service.REASON_MAX}
    return pages.render(request, "admin/tenant.html", context, status_code=status_code)


@router.post("/tenants/{tenant_id}/suspend")
def suspend(
    request: Request,
    session: SessionDep,
    admin: PageAdminDep,
    ip: ClientIpDep,
    tenant_id: TenantId,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    _ = pages.gettext_for(request)
    try:
        service.suspend_tenant(session, tenant_id, reason, operator=admin, ip=ip, now=utcnow())
    except Invalid:
        error = _("Give the reason the client will read: 3 to %(n)d characters.")
        error %= {"n": service.REASON_MAX}
    except Conflict:
        error = _("This account is already suspended by an operator, or was deleted.")
    else:
        return RedirectResponse(f"/admin/tenants/{tenant_id}", status_code=303)
    return _tenant_page(request, session, tenant_id, error=error, reason=reason, status_code=400)


@router.post("/tenants/{tenant_id}/reactivate")
def reactivate(
    request: Request,
    session: SessionDep,
    admin: PageAdminDep,
    ip: ClientIpDep,
    tenant_id: TenantId,
) -> Response:
    _ = pages.gettext_for(request)
    try:
        service.reactivate_tenant(session, tenant_id, operator=admin, ip=ip, now=utcnow())
    except Conflict:
        error = _("This account is not suspended by an operator.")
        return _tenant_page(request, session, tenant_id, error=error, status_code=400)
    return RedirectResponse(f"/admin/tenants/{tenant_id}", status_code=303)
