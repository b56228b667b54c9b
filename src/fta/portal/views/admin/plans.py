"""The console's plans editor (/admin/plans): create, change and retire plans, their prices
kept in step with PayPal's catalog."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated

from fastapi import Path, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from fta.accounts.deps import PageAdminDep
from fta.accounts.service import Principal
from fta.billing.api import PayPalDep
from fta.billing.paypal import PayPal, PayPalError
from fta.errors import Conflict, Invalid
from fta.operators import plans
from fta.plans import service as catalog
from fta.plans.models import Plan
from fta.web import pages
from fta.web.deps import ClientIpDep, SessionDep

router = pages.page_router("/admin")

PLAN_FORM = (
    "name", "price_eur", "cpu", "memory_mb", "pids", "disk_mb", "max_concurrent_jobs",
    "max_queued_jobs", "max_bots", "max_job_minutes", "included_cpu_hours",
    "overage_cpu_hour_eur", "overage_ram_gb_hour_eur", "overage_job_minute_eur",
)  # fmt: skip
# The form's fields that are counts (strict integers in the API).
COUNTS = frozenset(
    {"memory_mb", "pids", "disk_mb", "max_concurrent_jobs", "max_queued_jobs", "max_bots"}
)
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
        elif name in COUNTS:
            number = _decimal(text)
            # A whole number is the count the API takes; anything else is refused as a count.
            values[name] = int(number) if number == number.to_integral_value() else number
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
