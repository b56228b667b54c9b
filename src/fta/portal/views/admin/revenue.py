"""The console's revenue page (/admin/revenue) and the accountant's exports."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, Request
from starlette.responses import Response

from fta.access.periods import period_of
from fta.accounts.deps import PageAdminDep
from fta.billing.invoices.journal import journal, journal_csv
from fta.db import utcnow
from fta.errors import Invalid
from fta.operators import revenue
from fta.web import pages
from fta.web.deps import SessionDep
from fta.web.downloads import csv_attachment

router = pages.page_router("/admin")

MonthPath = Annotated[str, Path(pattern=r"^[0-9]{4}-[0-9]{2}$")]


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
