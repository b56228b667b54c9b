"""The console's accounts (/admin, /admin/tenants/{id}): clients' accounts found and looked
over, suspended with a reason the client reads and reactivated, their quotas overridden for a
while."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Form, Path, Query, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from fta.access import disks
from fta.accounts.deps import PageAdminDep
from fta.db import utcnow
from fta.errors import Conflict, Invalid
from fta.operators import service
from fta.portal.views.admin import names
from fta.web import pages
from fta.web.deps import ClientIpDep, SessionDep

router = pages.page_router("/admin")

TenantId = Annotated[str, Path(min_length=1, max_length=8, pattern="^[a-z2-7]+$")]
QuotaField = Annotated[str, Form(max_length=20)]
# The operator picks the last day of an override; it runs to the end of that day in France.
PARIS = ZoneInfo("Europe/Paris")


@router.get("")
def tenants(
    request: Request,
    session: SessionDep,
    admin: PageAdminDep,
    q: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    found = service.find_tenants(session, q)
    return names.render(request, "admin/tenants.html", {"q": q, "rows": found})


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
    quota_error: str | None = None,
    typed: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    overview = service.tenant_overview(session, tenant_id, utcnow())
    context = {
        "o": overview,
        "error": error,
        "reason": reason,
        "reason_max": service.REASON_MAX,
        "quota_error": quota_error,
        "typed": typed or {},
        "disk_percent": disks.used_percent,
    }
    return names.render(request, "admin/tenant.html", context, status_code=status_code)


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


@router.post("/tenants/{tenant_id}/quotas")
def override_quotas(
    request: Request,
    session: SessionDep,
    admin: PageAdminDep,
    ip: ClientIpDep,
    tenant_id: TenantId,
    reason: Annotated[str, Form(max_length=2000)] = "",
    ends_on: QuotaField = "",
    cpu: QuotaField = "",
    memory_mb: QuotaField = "",
    max_concurrent_jobs: QuotaField = "",
    max_queued_jobs: QuotaField = "",
    max_bots: QuotaField = "",
    max_job_minutes: QuotaField = "",
) -> Response:
    _ = pages.gettext_for(request)
    typed = {
        "cpu": cpu,
        "memory_mb": memory_mb,
        "max_concurrent_jobs": max_concurrent_jobs,
        "max_queued_jobs": max_queued_jobs,
        "max_bots": max_bots,
        "max_job_minutes": max_job_minutes,
        "ends_on": ends_on,
        "reason": reason,
    }
    try:
        values = {name: _number(typed[name]) for name in typed if name not in ("ends_on", "reason")}
        minutes = values.pop("max_job_minutes")
        values["max_job_seconds"] = None if minutes is None else minutes * 60
        last_day = date.fromisoformat(ends_on)
    except (InvalidOperation, ValueError):
        error = _("Type the quotas as numbers, and the last day as a date.")
    else:
        ends_at = datetime.combine(last_day + timedelta(days=1), time(), PARIS)
        try:
            service.set_quota_override(
                session,
                tenant_id,
                values,
                reason=reason,
                ends_at=ends_at,
                operator=admin,
                ip=ip,
                now=utcnow(),
            )
        except Invalid as refused:
            error = _("The override was refused: %(detail)s") % {"detail": refused.detail}
        except Conflict:
            error = _("This account was deleted by its client.")
        else:
            return RedirectResponse(f"/admin/tenants/{tenant_id}#quotas", status_code=303)
    return _tenant_page(
        request, session, tenant_id, quota_error=error, typed=typed, status_code=400
    )


@router.post("/tenants/{tenant_id}/quotas/end")
def end_quota_override(
    request: Request,
    session: SessionDep,
    admin: PageAdminDep,
    ip: ClientIpDep,
    tenant_id: TenantId,
) -> Response:
    _ = pages.gettext_for(request)
    try:
        service.end_quota_override(session, tenant_id, operator=admin, ip=ip, now=utcnow())
    except Conflict:
        error = _("No quota override is in force on this account.")
        return _tenant_page(request, session, tenant_id, quota_error=error, status_code=400)
    return RedirectResponse(f"/admin/tenants/{tenant_id}#quotas", status_code=303)


def _number(typed: str) -> Decimal | None:
    """A quota as typed (`1,5` or `1.5`); None when left empty."""
    text = typed.strip().replace(" ", "").replace(",", ".")
    return Decimal(text) if text else None
