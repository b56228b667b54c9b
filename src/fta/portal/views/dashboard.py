"""The client's home: running bots with their profit, recent jobs, this month's usage against
the allowance, and what needs the client's attention."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from fta.access.periods import period_of
from fta.access.quotas import override_in_force
from fta.access.usage import usage_summary
from fta.accounts.deps import PagePrincipalDep
from fta.accounts.models import User
from fta.accounts.service import get_tenant
from fta.db import utcnow
from fta.jobs import service as jobs
from fta.portal.views import bots as bot_pages
from fta.portal.views import jobs as job_pages
from fta.web import pages
from fta.web.deps import SessionDep

router = pages.page_router("/app")

RECENT_JOBS = 8


@router.get("")
def dashboard(request: Request, session: SessionDep, principal: PagePrincipalDep) -> Response:
    tenant_id = principal.tenant_id
    if tenant_id is None:  # an administrator: the operator's console is the home
        return RedirectResponse("/admin", status_code=303)
    now = utcnow()
    tenant = get_tenant(session, tenant_id)
    user = session.get(User, principal.user_id)
    summary = usage_summary(session, tenant, period_of(now), now)
    included = summary.included_cpu_hours
    used = summary.consumption.cpu_hours
    _ = pages.gettext_for(request)
    context = {
        **bot_pages.listing(request, session, tenant_id),
        "kind_names": {str(kind): name for kind, name in job_pages.kind_names(_).items()},
        "status_names": {str(status): name for status, name in job_pages.status_names(_).items()},
        "tenant": tenant,
        "email_verified": user is not None and user.email_verified_at is not None,
        "email": user.email if user is not None else "",
        "jobs": jobs.list_jobs(session, tenant_id, limit=RECENT_JOBS),
        "usage": summary,
        "override": override_in_force(session, tenant_id, now),
        "cpu_share": min(used / included, 1) if included > 0 else None,
    }
    return pages.render(request, "app/dashboard.html", context)
