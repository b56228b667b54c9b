"""The console's operations page (/admin/operations): workers, the candle cache, accounts'
disks, running jobs and bots with their kill switches, queues, and billing's open alerts."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from fta.access import disks
from fta.accounts.deps import PageAdminDep
from fta.billing.alerts import service as billing_alerts
from fta.db import utcnow
from fta.errors import Conflict, Invalid, NotFound
from fta.operators import operations, service
from fta.portal.views.admin import names
from fta.web import pages
from fta.web.deps import ClientIpDep, SessionDep

router = pages.page_router("/admin")


@router.get("/operations")
def operations_page(request: Request, session: SessionDep, admin: PageAdminDep) -> Response:
    return _operations_page(request, session)


def _operations_page(
    request: Request, session: SessionDep, *, error: str | None = None, status_code: int = 200
) -> Response:
    now = utcnow()
    context = {
        "ops": operations.operations(session, now),
        "now": now,
        "error": error,
        "disk_percent": disks.used_percent,
        "nearly_full_percent": disks.NEARLY_FULL_PERCENT,
    }
    return names.render(request, "admin/operations.html", context, status_code=status_code)


@router.post("/jobs/{job_id}/cancel")
def kill_job(
    request: Request, session: SessionDep, admin: PageAdminDep, ip: ClientIpDep, job_id: uuid.UUID
) -> Response:
    _ = pages.gettext_for(request)
    try:
        service.kill_job(session, job_id, operator=admin, ip=ip)
    except (NotFound, Conflict):
        error = _("This job has already ended.")
        return _operations_page(request, session, error=error, status_code=409)
    return RedirectResponse("/admin/operations", status_code=303)


@router.post("/bots/{bot_id}/stop")
def stop_bot(
    request: Request, session: SessionDep, admin: PageAdminDep, ip: ClientIpDep, bot_id: uuid.UUID
) -> Response:
    _ = pages.gettext_for(request)
    try:
        service.stop_bot(session, bot_id, operator=admin, ip=ip)
    except NotFound:
        error = _("This bot no longer exists.")
        return _operations_page(request, session, error=error, status_code=404)
    return RedirectResponse("/admin/operations", status_code=303)


@router.post("/alerts/{alert_id}/resolve")
def resolve_alert(
    request: Request,
    session: SessionDep,
    admin: PageAdminDep,
    alert_id: int,
    resolution: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    _ = pages.gettext_for(request)
    try:
        billing_alerts.resolve(
            session,
            alert_id,
            by=f"admin:{admin.user_id}",
            resolution=resolution.strip(),
            now=utcnow(),
        )
    except Invalid:
        error = _("Say what was done about it: the billing round then tries the item again.")
        return _operations_page(request, session, error=error, status_code=400)
    except (NotFound, Conflict):
        error = _("This alert is already resolved.")
        return _operations_page(request, session, error=error, status_code=409)
    return RedirectResponse("/admin/operations#alerts", status_code=303)
