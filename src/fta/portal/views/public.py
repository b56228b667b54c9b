"""Pages anyone may see: the home page with the plans and their prices, the language switch."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from starlette.responses import RedirectResponse

from fta.accounts.deps import MaybePrincipalDep
from fta.plans import service as plans
from fta.settings import get_settings
from fta.web import i18n, pages
from fta.web.deps import SessionDep
from fta.web.redirects import local_target

router = pages.page_router()


@router.get("/")
def home(request: Request, session: SessionDep, principal: MaybePrincipalDep) -> object:
    catalog = [(plan, plans.monthly_price(plan)) for plan in plans.list_plans(session)]
    return pages.render(
        request,
        "public/home.html",
        {
            "catalog": catalog,
            "vat_rate": plans.VAT_RATE,
            "trial_days": get_settings().trial_days,
            "trial_cpu_hours": get_settings().trial_cpu_hours,
        },
    )


@router.post("/language")
def choose_language(
    language: Annotated[str, Form(max_length=8)],
    next_page: Annotated[str, Form(alias="next", max_length=2000)] = "/",
) -> RedirectResponse:
    """Keeps the visitor's language in a preference cookie (a year)."""
    response = RedirectResponse(local_target(next_page), status_code=303)
    if language in i18n.LOCALES:
        response.set_cookie(
            i18n.LANGUAGE_COOKIE,
            language,
            max_age=365 * 86_400,
            path="/",
            secure=get_settings().cookie_secure,
            httponly=True,
            samesite="lax",
        )
    return response
