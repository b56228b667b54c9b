"""The operator's console (/admin): clients' accounts, found and looked over, suspended
with a reason the client reads, and reactivated. For administrators with two-factor log-in
only; a client is told no such page exists."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Form, Path, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from fta.access import disks
from fta.access.periods import period_of
from fta.accounts.deps import PageAdminDep
from fta.accounts.service import Principal
from fta.audit.models import PLATFORM_CHAIN
from fta.billing.alerts import service as billing_alerts
from fta.billing.api import PayPalDep
from fta.billing.invoices.journal import journal, journal_csv
from fta.billing.paypal import PayPal, PayPalError
from fta.db import utcnow
from fta.errors import Conflict, Invalid, NotFound
from fta.operators import audit_view, operations, plans, revenue, service
from fta.plans import service as catalog
from fta.plans.models import Plan
from fta.web import pages
from fta.web.deps import ClientIpDep, SessionDep
from fta.web.downloads import csv_attachment

router = pages.page_router("/admin")

TenantId = Annotated[str, Path(min_length=1, max_length=8, pattern="^[a-z2-7]+$")]
QuotaField = Annotated[str, Form(max_length=20)]
MonthPath = Annotated[str, Path(pattern=r"^[0-9]{4}-[0-9]{2}$")]
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


@router.get("/audit")
def audit_chain(
    request: Request,
    session: SessionDep,
    admin: PageAdminDep,
    chain: Annotated[str, Query(max_length=16)] = PLATFORM_CHAIN,
    verify_all: Annotated[bool, Query(alias="all")] = False,
) -> Response:
    """A chain's verification and latest events (the platform's unless `chain` names an
    account); with `all`, every chain verified and those that break listed."""
    name = chain.strip().lower()
    context = {
        "chain": name,
        "view": audit_view.chain_view(session, name),
        "broken": audit_view.broken_chains(session) if verify_all else None,
    }
    return pages.render(request, "admin/audit.html", context)


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
    return pages.render(request, "admin/operations.html", context, status_code=status_code)


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


@router.get("/revenue")
def revenue_page(
    request: Request,
    session: SessionDep,
    admin: PageAdminDep,
    month: Annotated[str, Query(max_length=7)] = "",
) -> Response:
    _ = pages.gettext_for(request)
    chosen = month or period_of(utcnow())
    try:
        figures = revenue.revenue(session, chosen)
    except Invalid:
        error = _("Choose a month, as 2026-11.")
        refused: dict[str, object] = {"month": chosen, "figures": None, "error": error}
        return pages.render(request, "admin/revenue.html", refused, status_code=400)
    context: dict[str, object] = {"month": chosen, "figures": figures, "error": None}
    return pages.render(request, "admin/revenue.html", context)


@router.get("/revenue/{month}/accounting.csv", response_class=Response)
def accounting_export(session: SessionDep, admin: PageAdminDep, month: MonthPath) -> Response:
    text = revenue.accounting_csv(session, month)
    return csv_attachment(text, f"fta-ecritures-{month}.csv")


@router.get("/revenue/{month}/sales-journal.csv", response_class=Response)
def sales_journal(session: SessionDep, admin: PageAdminDep, month: MonthPath) -> Response:
    first_day, last_day = revenue.month_days(month)
    return csv_attachment(
        journal_csv(journal(session, first_day, last_day)), f"fta-journal-des-ventes-{month}.csv"
    )


# The plan form's fields, as typed: a price in euros, durations in minutes.
PLAN_FORM = (
    "name", "price_eur", "cpu", "memory_mb", "pids", "disk_mb", "max_concurrent_jobs",
    "max_queued_jobs", "max_bots", "max_job_minutes", "included_cpu_hours",
    "overage_cpu_hour_eur", "overage_ram_gb_hour_eur", "overage_job_minute_eur",
)  # fmt: skip
PlanCode = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]


def _plan_typed(plan: Plan) -> dict[str, str]:
    """A plan as its form shows it."""
    typed = {name: str(getattr(plan, name)) for name in PLAN_FORM if hasattr(plan, name)}
    typed["price_eur"] = str(Decimal(plan.price_ht_cents) / 100)
    typed["max_job_minutes"] = str(plan.max_job_seconds // 60)
    return typed


def _plan_fields(form: dict[str, str]) -> plans.PlanFields:
    """The form's fields checked as the API checks them (ValidationError, InvalidOperation)."""
    values: dict[str, object] = {}
    for name in PLAN_FORM:
        text = form.get(name, "").strip()
        if not text:
            continue
        if name == "name":
            values["name"] = text
        elif name == "price_eur":
            values["price_ht_cents"] = _cents_of(text)
        elif name == "max_job_minutes":
            values["max_job_seconds"] = int(_decimal(text)) * 60
        else:
            values[name] = _decimal(text)
    return plans.PlanFields.model_validate(values)


def _decimal(text: str) -> Decimal:
    number = Decimal(text.replace(" ", "").replace(",", "."))
    if not number.is_finite():
        raise InvalidOperation(text)
    return number


def _cents_of(text: str) -> int:
    euros = _decimal(text)
    if euros != euros.quantize(Decimal("0.01")):
        raise InvalidOperation(text)
    return int(euros * 100)


def _plans_page(
    request: Request,
    session: SessionDep,
    *,
    error: str | None = None,
    typed: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    every = catalog.list_plans(session, include_inactive=True)
    context = {
        "plans": every,
        "subscribers": plans.subscribers(session),
        "prices": {plan.code: catalog.monthly_price(plan) for plan in every},
        "error": error,
        "typed": typed or {},
        "fields": PLAN_FORM,
    }
    return pages.render(request, "admin/plans.html", context, status_code=status_code)


@router.get("/plans")
def plans_page(request: Request, session: SessionDep, admin: PageAdminDep) -> Response:
    return _plans_page(request, session)


@router.post("/plans")
async def create_plan(
    request: Request, session: SessionDep, admin: PageAdminDep, ip: ClientIpDep, paypal: PayPalDep
) -> Response:
    form = {key: str(value) for key, value in (await request.form()).items()}
    return await run_in_threadpool(_create_plan, request, session, admin, ip, paypal, form)


def _create_plan(
    request: Request,
    session: SessionDep,
    admin: Principal,
    ip: str | None,
    paypal: PayPal,
    form: dict[str, str],
) -> Response:
    _ = pages.gettext_for(request)
    code = form.get("code", "").strip()
    try:
        fields = _plan_fields(form).changes()
        plans.create_plan(session, code, fields, operator=admin, ip=ip, paypal=paypal)
    except (ValidationError, InvalidOperation, ValueError, Invalid) as refused:
        error = _("The plan was refused: %(detail)s") % {"detail": _why(refused)}
    except Conflict:
        error = _("A plan with this code exists already: change it instead.")
    except PayPalError:
        error = _("PayPal did not take the price: nothing was changed. Try again later.")
    else:
        return RedirectResponse(f"/admin/plans/{code}", status_code=303)
    session.rollback()
    return _plans_page(request, session, error=error, typed=form, status_code=400)


@router.get("/plans/{code}")
def plan_page(
    request: Request, session: SessionDep, admin: PageAdminDep, code: PlanCode
) -> Response:
    return _plan_page(request, session, catalog.get_plan(session, code))


def _plan_page(
    request: Request,
    session: SessionDep,
    plan: Plan,
    *,
    error: str | None = None,
    typed: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    context = {
        "plan": plan,
        "price": catalog.monthly_price(plan),
        "subscribers": plans.subscribers(session).get(plan.id, 0),
        "typed": typed or _plan_typed(plan),
        "fields": PLAN_FORM,
        "error": error,
    }
    return pages.render(request, "admin/plan.html", context, status_code=status_code)


@router.post("/plans/{code}")
async def edit_plan(
    request: Request,
    session: SessionDep,
    admin: PageAdminDep,
    ip: ClientIpDep,
    paypal: PayPalDep,
    code: PlanCode,
) -> Response:
    form = {key: str(value) for key, value in (await request.form()).items()}
    return await run_in_threadpool(_edit_plan, request, session, admin, ip, paypal, code, form)


def _edit_plan(
    request: Request,
    session: SessionDep,
    admin: Principal,
    ip: str | None,
    paypal: PayPal,
    code: str,
    form: dict[str, str],
) -> Response:
    _ = pages.gettext_for(request)
    plan = catalog.get_plan(session, code)
    action = form.get("action", "save")
    try:
        if action == "retire":
            changes: dict[str, object] = {"active": False}
        elif action == "offer":
            changes = {"active": True}
        else:
            changes = _plan_fields(form).changes()
        plans.edit_plan(session, code, changes, operator=admin, ip=ip, paypal=paypal)
    except (ValidationError, InvalidOperation, ValueError, Invalid) as refused:
        error = _("The plan was refused: %(detail)s") % {"detail": _why(refused)}
    except Conflict:
        error = _("The default plan of new accounts stays offered.")
    except PayPalError:
        error = _("PayPal did not take the price: nothing was changed. Try again later.")
    else:
        return RedirectResponse(f"/admin/plans/{code}", status_code=303)
    session.rollback()
    session.refresh(plan)
    typed = form if action == "save" else None
    return _plan_page(request, session, plan, error=error, typed=typed, status_code=400)


def _why(refused: Exception) -> str:
    """A refusal as the operator reads it: the field and what is wrong."""
    if isinstance(refused, ValidationError):
        return "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in refused.errors()
        )
    if isinstance(refused, Invalid):
        return refused.detail
    return "a number is not written as one"
