"""The client's billing pages: the plan and billing status, subscribing through PayPal, the
month's usage against the allowance (per day), invoices and credit notes with their PDFs,
and the billing identity invoices are made out to.

Every page calls the services the API calls (fta.billing, fta.access), for the signed-in
client's own account only.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import cache
from typing import Annotated, Any

from babel import Locale
from babel.dates import format_date
from fastapi import Form, Query, Request
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from fta.access import usage as usage_costs
from fta.access.periods import parse_period, period_of, period_start, previous_period
from fta.access.plan_changes import change_applies_from, pending_plan
from fta.accounts.deps import PagePrincipalDep, PageTenantDep
from fta.accounts.models import BillingStatus, Tenant
from fta.accounts.service import get_tenant
from fta.billing import subscriptions
from fta.billing.api import PAYPAL_ID, PayPalDep
from fta.billing.identities import save_identity
from fta.billing.identity_api import IdentityIn, ViesDep
from fta.billing.invoices import service as invoices
from fta.billing.invoices.identity import InvalidIdentity, check_client, client_from_tenant
from fta.billing.invoices.models import Invoice, Kind
from fta.billing.invoices.paris import paris_day
from fta.billing.invoices.vat import FRENCH_RATE, treatment
from fta.billing.paypal.models import Subscription, SubscriptionStatus
from fta.billing.usage_bills import bills_by_invoice
from fta.db import utcnow
from fta.errors import Conflict, DomainError, Invalid, NotFound
from fta.plans import service as plans
from fta.plans.models import Plan
from fta.settings import get_settings
from fta.web import pages
from fta.web.deps import ClientIpDep, SessionDep
from fta.web.redirects import local_target

router = pages.page_router("/app/billing")

CENT = Decimal("0.01")
HUNDRED = Decimal(100)
# Months offered in the usage page's list, counting back from this one.
MONTHS_SHOWN = 12
# Not countries: Babel's names of regions, unions and unknown or private-use codes.
NOT_COUNTRIES = frozenset({"EU", "EZ", "QO", "UN", "XA", "XB", "XK", "ZZ"})

Gettext = Callable[[str], str]


# --- money and VAT ---


def _euros(cents: int) -> Decimal:
    return (Decimal(cents) / HUNDRED).quantize(CENT)


def _with_vat(ht: Decimal, vat_percent: Decimal) -> Decimal:
    """HT plus VAT at `vat_percent`, the VAT rounded half up to the cent (as invoiced)."""
    return ht + (ht * vat_percent / HUNDRED).quantize(CENT, ROUND_HALF_UP)


def _client_vat_percent(tenant: Tenant) -> Decimal | None:
    """The VAT the client pays on top of prices, from its billing identity (None: the
    identity is incomplete, or no invoice can be made out to it automatically)."""
    try:
        return treatment(check_client(client_from_tenant(tenant))).rate
    except Invalid:
        return None


@dataclass(frozen=True)
class PlanOffer:
    plan: Plan
    ht: Decimal
    ttc: Decimal
    current: bool  # the account's plan now
    subscribed: bool  # an active (or past due) subscription to it exists


def _offers(session: Session, tenant: Tenant, vat_percent: Decimal) -> list[PlanOffer]:
    held = {
        row.plan_code
        for row in subscriptions.list_subscriptions(session, tenant.id)
        if row.status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE)
    }
    offers = []
    for plan in plans.list_plans(session):
        if plan.price_ht_cents <= 0:
            continue  # nothing to subscribe to
        ht = _euros(plan.price_ht_cents)
        offers.append(
            PlanOffer(
                plan=plan,
                ht=ht,
                ttc=_with_vat(ht, vat_percent),
                current=plan.id == tenant.plan_id,
                subscribed=plan.code in held,
            )
        )
    return offers


def _first_day(period: str) -> datetime:
    return period_start(period)


# --- overview ---


def _best_subscription(rows: list[Subscription]) -> Subscription | None:
    """The subscription that speaks for the account: active, else past due, else pending."""
    for status in (
        SubscriptionStatus.ACTIVE,
        SubscriptionStatus.PAST_DUE,
        SubscriptionStatus.PENDING,
    ):
        found = [row for row in rows if row.status == status]
        if found:
            return found[0]  # newest first
    return None


def _overview_context(
    session: Session, tenant: Tenant, now: datetime, *, cap_error: str | None, cap_value: str
) -> dict[str, Any]:
    rows = subscriptions.list_subscriptions(session, tenant.id)
    best = _best_subscription(rows)
    vat_percent = _client_vat_percent(tenant)
    plan = tenant.plan
    if best is not None and best.plan_code == plan.code and best.price_ht_cents is not None:
        price_ht = _euros(best.price_ht_cents)
        price_vat = best.tax_percent if best.tax_percent is not None else FRENCH_RATE
    else:
        price_ht = _euros(plan.price_ht_cents)
        price_vat = vat_percent if vat_percent is not None else FRENCH_RATE
    next_times = [
        moment
        for moment in (subscriptions.next_billing_time(row) for row in rows)
        if moment is not None
    ]
    cancelled_until = [
        row.paid_through
        for row in rows
        if row.status == SubscriptionStatus.CANCELLED
        and row.paid_through is not None
        and row.paid_through > now
    ]
    cap = usage_costs.spending_cap(session, tenant.id)
    summary = usage_costs.usage_summary(session, tenant, period_of(now), now)
    pending = pending_plan(session, tenant)
    settings = get_settings()
    return {
        "tenant": tenant,
        "plan": plan,
        "price_ht": price_ht,
        "price_ttc": _with_vat(price_ht, price_vat),
        "price_vat": price_vat,
        "trial": tenant.billing_status == BillingStatus.TRIALING,
        "trial_cpu_hours": settings.trial_cpu_hours,
        "trial_job_hours": settings.trial_job_hours,
        "pending_plan": pending,
        "pending_from": (
            _first_day(tenant.pending_plan_period) if tenant.pending_plan_period else None
        ),
        "subscriptions": [
            (
                row,
                None if row.price_ht_cents is None else _euros(row.price_ht_cents),
                None if row.next_price_ht_cents is None else _euros(row.next_price_ht_cents),
            )
            for row in rows
        ],
        "plan_names": {offer.code: offer.name for offer in plans.list_plans(session)},
        "best": best,
        "next_billing": min(next_times, default=None),
        "paid_through": max(cancelled_until, default=None),
        "identity_complete": vat_percent is not None,
        "cap": cap,
        "cap_reached": usage_costs.cap_reached(session, tenant, now) is not None,
        "cap_error": cap_error,
        "cap_value": cap_value,
        "usage": summary,
    }


@router.get("")
def overview(
    request: Request,
    session: SessionDep,
    tenant_id: PageTenantDep,
    saved: Annotated[str | None, Query(max_length=16)] = None,
) -> Response:
    now = utcnow()
    tenant = get_tenant(session, tenant_id)
    cap = usage_costs.spending_cap(session, tenant.id)
    context = _overview_context(
        session,
        tenant,
        now,
        cap_error=None,
        cap_value="" if cap is None else str(cap.cap_eur_ht),
    )
    context["saved"] = saved
    return pages.render(request, "billing/overview.html", context)


def _parse_cap(text: str) -> Decimal | None:
    """A cap typed the French way or the English way: "50", "50,00", "1 000.5 €"."""
    compact = "".join(text.replace("€", "").split()).replace(",", ".")
    if not compact:
        return None
    try:
        return Decimal(compact)
    except InvalidOperation:
        raise Invalid("not a number") from None


@router.post("/spending-cap")
def set_spending_cap(
    request: Request,
    session: SessionDep,
    tenant_id: PageTenantDep,
    cap: Annotated[str, Form(max_length=40)] = "",
    remove: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    _ = pages.gettext_for(request)
    now = utcnow()
    try:
        amount = None if remove else _parse_cap(cap)
        if not remove and amount is None:
            raise Invalid("empty")
        usage_costs.set_spending_cap(session, tenant_id, amount, now)
    except Invalid:
        session.rollback()
        error = _(
            "Enter an amount in euros excluding VAT, 0 or more, with at most two decimals "
            "(for example 50 or 49,90)."
        )
        tenant = get_tenant(session, tenant_id)
        context = _overview_context(session, tenant, now, cap_error=error, cap_value=cap)
        context["saved"] = None
        return pages.render(request, "billing/overview.html", context, status_code=400)
    done = "cap-removed" if amount is None else "cap"
    return RedirectResponse(f"/app/billing?saved={done}#spending-cap", status_code=303)


# --- plans and subscribing ---


def _plans_context(
    session: Session, tenant: Tenant, now: datetime, *, error: str | None
) -> dict[str, Any]:
    vat_percent = _client_vat_percent(tenant)
    applies = change_applies_from(tenant, now)
    return {
        "tenant": tenant,
        "offers": _offers(session, tenant, vat_percent or FRENCH_RATE),
        "vat_percent": vat_percent if vat_percent is not None else FRENCH_RATE,
        "identity_complete": vat_percent is not None,
        "paying": applies != period_of(now),
        "applies_from": _first_day(applies),
        "has_subscription": any(
            row.status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE)
            for row in subscriptions.list_subscriptions(session, tenant.id)
        ),
        "pending_plan": pending_plan(session, tenant),
        "error": error,
    }


@router.get("/plans")
def plan_catalog(
    request: Request,
    session: SessionDep,
    tenant_id: PageTenantDep,
    token: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """The plans on offer; PayPal sends a buyer who gave up back here (with its token)."""
    tenant = get_tenant(session, tenant_id)
    context = _plans_context(session, tenant, utcnow(), error=None)
    context["left_paypal"] = token is not None
    return pages.render(request, "billing/plans.html", context)


@router.post("/plans")
def subscribe(
    request: Request,
    session: SessionDep,
    tenant_id: PageTenantDep,
    paypal: PayPalDep,
    plan: Annotated[str, Form(max_length=32)],
) -> Response:
    """Starts a PayPal subscription to `plan` (the API's service) and sends the browser to
    PayPal to approve it; PayPal brings it back to /app/billing/return."""
    _ = pages.gettext_for(request)
    try:
        approval_url = subscriptions.start_subscription(
            session, paypal.for_pages(), tenant_id, plan
        )
    except (NotFound, Invalid):
        error, status = _("This plan is not on offer."), 404
    except Conflict as refused:
        session.rollback()
        if "billing identity" in refused.detail:
            error = _("Fill in your billing details first: the VAT PayPal charges depends on them.")
        else:
            error = _("You already subscribe to this plan.")
        status = 409
    except DomainError as failed:
        if failed.status < 500:
            raise
        # PayPal unreachable, not configured, or answering with an error.
        session.rollback()
        error = _("PayPal cannot be reached right now. Nothing was charged: try again later.")
        status = 503
    else:
        return pages.render(request, "billing/to_paypal.html", {"approval_url": approval_url})
    session.rollback()
    tenant = get_tenant(session, tenant_id)
    context = _plans_context(session, tenant, utcnow(), error=error)
    context["left_paypal"] = False
    return pages.render(request, "billing/plans.html", context, status_code=status)


@router.get("/return")
def back_from_paypal(
    request: Request,
    session: SessionDep,
    tenant_id: PageTenantDep,
    paypal: PayPalDep,
    subscription_id: Annotated[str, Query(pattern=PAYPAL_ID)],
) -> Response:
    """Where PayPal sends the buyer after approving: the subscription is looked at again on
    PayPal (as the API's return path does), and only one this account started."""
    unreachable = False
    try:
        subscription = subscriptions.confirm_return(
            session, paypal.client, subscription_id, tenant_id
        )
    except DomainError as failed:
        if failed.status < 500:
            raise
        # PayPal unreachable or answering with an error: its notification will confirm the
        # subscription; show what is known.
        session.rollback()
        unreachable = True
        found = [
            row
            for row in subscriptions.list_subscriptions(session, tenant_id)
            if row.paypal_subscription_id == subscription_id
        ]
        if not found:
            raise NotFound(f"no subscription {subscription_id!r} was started here") from None
        subscription = found[0]
    tenant = get_tenant(session, tenant_id)
    plan = plans.get_plan(session, subscription.plan_code)
    pending = pending_plan(session, tenant)
    deferred = pending is not None and pending.code == subscription.plan_code
    return pages.render(
        request,
        "billing/returned.html",
        {
            "subscription": subscription,
            "plan": plan,
            "unreachable": unreachable,
            "deferred_from": (
                _first_day(tenant.pending_plan_period)
                if deferred and tenant.pending_plan_period
                else None
            ),
            "other_active": [
                row
                for row in subscriptions.list_subscriptions(session, tenant_id)
                if row.paypal_subscription_id != subscription.paypal_subscription_id
                and row.status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE)
            ],
        },
    )


# --- usage ---


def _months(tenant: Tenant, now: datetime) -> list[str]:
    """This month and the previous ones since the account opened, newest first."""
    current, first = period_of(now), period_of(tenant.created_at)
    months = [current]
    while months[-1] > first and len(months) < MONTHS_SHOWN:
        months.append(previous_period(months[-1]))
    return months


def _month_label(period: str, lang: str) -> str:
    """'mars 2026', 'March 2026'."""
    return format_date(period_start(period), "LLLL y", locale="fr_FR" if lang == "fr" else "en_GB")


def _chart(days: list[usage_costs.DailyUsage], today: date, _: Gettext) -> dict[str, Any]:
    """The per-day series for the chart's script (numbers rounded for display; days still
    to come have none)."""

    def series(values: list[Decimal], digits: int) -> list[float | None]:
        return [
            float(value.quantize(Decimal(10) ** -digits, ROUND_HALF_UP))
            if day.day <= today
            else None
            for day, value in zip(days, values, strict=True)
        ]

    return {
        "labels": [day.day.isoformat() for day in days],
        "datasets": [
            {
                "key": "cpu_hours",
                "label": _("CPU time (hours)"),
                "data": series([d.cpu_hours for d in days], 3),
                "axis": "hours",
            },
            {
                "key": "bot_hours",
                "label": _("Bot time (hours)"),
                "data": series([d.bot_hours for d in days], 2),
                "axis": "hours",
                "hidden": True,
            },
            {
                "key": "ram_gb_hours",
                "label": _("Memory (GB-hours)"),
                "data": series([d.ram_gb_hours for d in days], 3),
                "axis": "hours",
                "hidden": True,
            },
            {
                "key": "job_minutes",
                "label": _("Job time (minutes)"),
                "data": series([d.job_minutes for d in days], 1),
                "axis": "minutes",
            },
        ],
        "axes": {"hours": _("Hours"), "minutes": _("Job time (minutes)")},
    }


@dataclass(frozen=True)
class MonthLine:
    period: str
    label: str
    summary: usage_costs.UsageSummary


@router.get("/usage")
def usage_page(
    request: Request,
    session: SessionDep,
    tenant_id: PageTenantDep,
    period: Annotated[str | None, Query(max_length=7)] = None,
) -> Response:
    _ = pages.gettext_for(request)
    now = utcnow()
    tenant = get_tenant(session, tenant_id)
    current = period_of(now)
    month = parse_period(period) if period else current
    if month > current:
        raise NotFound(f"{month} has not started yet")
    summary = usage_costs.usage_summary(session, tenant, month, now)
    months = _months(tenant, now)
    if month not in months:
        months.append(month)
    lang = pages.locale_of(request)
    history = [
        MonthLine(m, _month_label(m, lang), usage_costs.usage_summary(session, tenant, m, now))
        for m in months
    ]
    vat_percent = _client_vat_percent(tenant)
    rate = vat_percent if vat_percent is not None else FRENCH_RATE
    included = summary.included_cpu_hours
    used = summary.consumption.cpu_hours
    cap = usage_costs.spending_cap(session, tenant.id)
    return pages.render(
        request,
        "billing/usage.html",
        {
            "period": month,
            "month_label": _month_label(month, lang),
            "is_current": month == current,
            "usage": summary,
            "vat_percent": rate,
            "overage_ttc": _with_vat(summary.overage.amount_eur, rate),
            "projected_ttc": _with_vat(summary.projected_overage.amount_eur, rate),
            "cpu_share": min(used / included, Decimal(1)) if included > 0 else None,
            "trial": tenant.billing_status == BillingStatus.TRIALING,
            "history": history,
            "cap": cap,
            "chart": _chart(
                usage_costs.daily_usage(session, tenant.id, month), now.astimezone(UTC).date(), _
            ),
        },
    )


# --- invoices ---


@dataclass(frozen=True)
class InvoiceRow:
    invoice: Invoice
    credit_note: bool
    ht: Decimal
    vat: Decimal
    ttc: Decimal
    issued_on: date
    status: str  # paid, refunded, issued, due, overdue
    status_on: date | None
    credits_number: str | None


def _invoice_rows(session: Session, tenant_id: str, today: date) -> list[InvoiceRow]:
    documents = invoices.list_invoices(session, tenant_id)
    numbers = {row.id: row.number for row in documents}
    bills = bills_by_invoice(session, tenant_id)
    rows = []
    for document in documents:
        credit_note = document.kind == Kind.CREDIT_NOTE
        sign = -1 if credit_note else 1
        status_on: date | None = None
        if credit_note:
            status = "refunded" if document.payment_ref else "issued"
        elif document.payment_ref:
            status = "paid"
        elif document.id in bills and bills[document.id].paid_at is not None:
            status = "paid"
            paid_at = bills[document.id].paid_at
            status_on = paris_day(paid_at) if paid_at is not None else None
        else:
            status = "overdue" if document.due_on < today else "due"
            status_on = document.due_on
        rows.append(
            InvoiceRow(
                invoice=document,
                credit_note=credit_note,
                ht=sign * _euros(document.total_ht_cents),
                vat=sign * _euros(document.total_vat_cents),
                ttc=sign * _euros(document.total_ttc_cents),
                issued_on=paris_day(document.issued_at),
                status=status,
                status_on=status_on,
                credits_number=(
                    numbers.get(document.credits_invoice_id)
                    if document.credits_invoice_id
                    else None
                ),
            )
        )
    return rows


@router.get("/invoices")
def invoice_list(request: Request, session: SessionDep, tenant_id: PageTenantDep) -> Response:
    rows = _invoice_rows(session, tenant_id, paris_day(utcnow()))
    babel_locale = "fr_FR" if pages.locale_of(request) == "fr" else "en_GB"

    def day(value: date) -> str:
        return format_date(value, "medium", locale=babel_locale)

    return pages.render(request, "billing/invoices.html", {"rows": rows, "day": day})


@router.get("/invoices/{invoice_id}.pdf")
def invoice_pdf(invoice_id: uuid.UUID, session: SessionDep, tenant_id: PageTenantDep) -> Response:
    """The PDF as issued, as the API serves it: another account's invoice is not found."""
    invoice = invoices.invoice_pdf(session, tenant_id, invoice_id)
    return Response(
        content=invoice.pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{invoice.number}.pdf"',
            "Cache-Control": "private, no-store",
        },
    )


# --- billing identity ---


def _sort_key(name: str) -> str:
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()


@cache
def _countries(lang: str) -> list[tuple[str, str]]:
    """Every country by its name in the page's language, France first."""
    names = Locale.parse("fr_FR" if lang == "fr" else "en_GB").territories
    found = [
        (code, name)
        for code, name in names.items()
        if len(code) == 2 and code.isalpha() and code not in NOT_COUNTRIES
    ]
    found.sort(key=lambda item: (item[0] != "FR", _sort_key(item[1])))
    return found


def _identity_values(tenant: Tenant) -> dict[str, str]:
    return {
        "customer_type": tenant.customer_type,
        "legal_name": tenant.legal_name or "",
        "address_line1": tenant.address_line1 or "",
        "address_line2": tenant.address_line2 or "",
        "postcode": tenant.postcode or "",
        "city": tenant.city or "",
        "country": tenant.country or "FR",
        "siren": tenant.siren or "",
        "vat_number": tenant.vat_number or "",
    }


def _identity_page(
    request: Request,
    tenant: Tenant,
    values: dict[str, str],
    errors: dict[str, str],
    next_page: str,
    *,
    saved: bool = False,
    status_code: int = 200,
) -> Response:
    lang = pages.locale_of(request)
    return pages.render(
        request,
        "billing/identity.html",
        {
            "values": values,
            "errors": errors,
            "saved": saved,
            "next": local_target(next_page, "") if next_page else "",
            "countries": _countries(lang),
            "vat_number_status": tenant.vat_number_status,
        },
        status_code=status_code,
    )


def _field_error(error: dict[str, Any], _: Gettext) -> tuple[str, str]:
    """A validation error of IdentityIn as (field, message in the page's language)."""
    location = error.get("loc") or ("",)
    field = str(location[0])
    kind = error.get("type", "")
    if field == "customer_type":
        return field, _("Choose private person or company.")
    if field == "country":
        return field, _("Choose a country.")
    if kind in ("missing", "string_too_short"):
        return field, _("This field is required.")
    if kind == "string_too_long":
        limit = (error.get("ctx") or {}).get("max_length", 0)
        return field, _("At most %(n)d characters.") % {"n": int(limit)}
    return field, _("Line breaks and control characters are not allowed here.")


def _identity_error(refused: InvalidIdentity, _: Gettext) -> str:
    messages = {
        ("siren", "missing"): _("A company in France needs its SIREN (9 digits)."),
        ("siren", "invalid"): _("This SIREN is not valid: 9 digits with a valid check digit."),
        ("vat_number", "invalid"): _(
            "This VAT number is not valid: its country prefix, then the number "
            "(for example FR40303265045)."
        ),
        ("vat_number", "wrong_country"): _(
            "This VAT number is not one of the country chosen below."
        ),
        ("vat_number", "not_of_siren"): _("This VAT number does not belong to the SIREN given."),
        ("vat_number", "unknown_to_vies"): _(
            "VIES, the EU's register of VAT numbers, does not know this number: check it, "
            "or leave it empty (French VAT then applies)."
        ),
        ("country", "territory"): _(
            "This postcode is in an overseas territory: choose that territory as the country."
        ),
        ("postcode", "territory"): _("This postcode is not one of the territory chosen."),
        ("country", "invalid"): _("Choose a country."),
    }
    return messages.get((refused.item, refused.reason), _("This field is required."))


@router.get("/identity")
def identity_form(
    request: Request,
    session: SessionDep,
    tenant_id: PageTenantDep,
    saved: Annotated[str | None, Query(max_length=8)] = None,
    next_page: Annotated[str, Query(alias="next", max_length=200)] = "",
) -> Response:
    tenant = get_tenant(session, tenant_id)
    values = _identity_values(tenant)
    return _identity_page(request, tenant, values, {}, next_page, saved=saved is not None)


FormText = Annotated[str, Form()]


@router.post("/identity")
def save_identity_form(
    request: Request,
    session: SessionDep,
    principal: PagePrincipalDep,
    tenant_id: PageTenantDep,
    ip: ClientIpDep,
    vies: ViesDep,
    customer_type: FormText = "private",
    legal_name: FormText = "",
    address_line1: FormText = "",
    address_line2: FormText = "",
    postcode: FormText = "",
    city: FormText = "",
    country: FormText = "",
    siren: FormText = "",
    vat_number: FormText = "",
    next_page: Annotated[str, Form(alias="next", max_length=200)] = "",
) -> Response:
    """Checks the identity as the API does (its model, then the same service); a refused
    item is shown beside its field with everything typed kept."""
    _ = pages.gettext_for(request)
    values = {
        "customer_type": customer_type,
        "legal_name": legal_name,
        "address_line1": address_line1,
        "address_line2": address_line2,
        "postcode": postcode,
        "city": city,
        "country": country,
        "siren": siren,
        "vat_number": vat_number,
    }
    business = customer_type == "business"
    wanted: dict[str, str | None] = {name: value.strip() for name, value in values.items()}
    wanted["address_line2"] = wanted["address_line2"] or None
    # A private person's SIREN or VAT number, typed before switching, is not kept.
    wanted["siren"] = (wanted["siren"] or None) if business else None
    wanted["vat_number"] = (wanted["vat_number"] or None) if business else None
    errors: dict[str, str] = {}
    try:
        body = IdentityIn.model_validate(wanted)
    except ValidationError as invalid:
        for error in invalid.errors():
            field, message = _field_error(dict(error), _)
            errors.setdefault(field, message)
    else:
        try:
            save_identity(
                session,
                tenant_id,
                body.identity(),
                actor=str(principal.user_id),
                ip=ip,
                vies=vies,
                now=utcnow(),
            )
        except InvalidIdentity as refused:
            session.rollback()
            errors[refused.item] = _identity_error(refused, _)
    if errors:
        tenant = get_tenant(session, tenant_id)
        return _identity_page(request, tenant, values, errors, next_page, status_code=400)
    target = local_target(next_page, "") if next_page else ""
    return RedirectResponse(target or "/app/billing/identity?saved=1", status_code=303)
