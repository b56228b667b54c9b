"""VAT controls on what was invoiced: the EU one-stop-shop (OSS) threshold, the payer's
country at PayPal against the declared one, and the monthly DES export of reverse-charge
services. Each works in the caller's transaction; the billing round calls the first two.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from fta.accounts.models import Tenant
from fta.billing.alerts.service import raise_alert
from fta.billing.invoices.identity import EU_COUNTRIES, vat_territory
from fta.billing.invoices.models import Invoice, Kind, VatRegime
from fta.billing.invoices.paris import PARIS

# Cross-border EU sales of electronic services to private clients, excluding tax, over which
# the client country's VAT applies (directive 2006/112/EC article 59 quater; CGI 259 D).
OSS_THRESHOLD_CENTS = 1_000_000
OSS_WARNING_CENTS = OSS_THRESHOLD_CENTS * 80 // 100


def _signed_ht() -> Any:
    """An invoice's amount excluding tax, negative for a credit note."""
    return case(
        (Invoice.kind == Kind.CREDIT_NOTE.value, -Invoice.total_ht_cents),
        else_=Invoice.total_ht_cents,
    )


@dataclass(frozen=True)
class OssTotals:
    year: int
    cents: int


def oss_sales(session: Session, year: int) -> int:
    """The calendar year's cross-border EU sales billed with French VAT (private clients,
    and businesses whose VAT number is missing or unconfirmed), in cents excluding tax:
    invoices issued that year minus their credit notes."""
    country = Invoice.client["country"].astext
    total = session.scalar(
        select(func.coalesce(func.sum(_signed_ht()), 0)).where(
            Invoice.vat_regime == VatRegime.FRANCE.value,
            country.in_(sorted(EU_COUNTRIES - {"FR"})),
            Invoice.year == year,
        )
    )
    return int(total or 0)


def check_oss_threshold(session: Session, now: datetime) -> list[OssTotals]:
    """Alerts the operator (kind 'oss-threshold') when the previous or the current calendar
    year's cross-border EU sales to private clients reach 80 % of the 10 000 EUR threshold,
    and again when they reach it. Returns both years' totals."""
    totals = [OssTotals(year, oss_sales(session, year)) for year in (now.year - 1, now.year)]
    for total in totals:
        if total.cents >= OSS_THRESHOLD_CENTS:
            level, what = "reached", "has reached"
        elif total.cents >= OSS_WARNING_CENTS:
            level, what = "80pct", "is at 80 % of"
        else:
            continue
        raise_alert(
            session,
            key=f"oss-threshold:{total.year}:{level}",
            kind="oss-threshold",
            now=now,
            message=(
                f"Cross-border EU sales to private clients in {total.year}: "
                f"{Decimal(total.cents) / 100:.2f} EUR excluding tax, which {what} the "
                "10 000 EUR threshold. Past it, those clients owe their own country's VAT, "
                "declared through the OSS: register for the OSS (impots.gouv.fr) and have the "
                "client-country rates added to fta. fta still invoices them French VAT."
            ),
        )
    return totals


def paypal_payer_countries(paypal_state: Mapping[str, Any]) -> set[str]:
    """The countries a PayPal subscription (GET /v1/billing/subscriptions/{id}) gives for its
    payer: subscriber.address, the card's billing address, subscriber.shipping_address."""

    def at(path: tuple[str, ...]) -> str | None:
        node: Any = paypal_state
        for part in path:
            node = node.get(part) if isinstance(node, Mapping) else None
        return node.upper() if isinstance(node, str) and len(node) == 2 else None

    paths = (
        ("subscriber", "address", "country_code"),
        ("subscriber", "payment_source", "card", "billing_address", "country_code"),
        ("subscriber", "shipping_address", "address", "country_code"),
    )
    return {country for country in map(at, paths) if country}


def check_payer_country(
    session: Session, tenant_id: str, paypal_state: Mapping[str, Any], now: datetime
) -> bool:
    """Alerts the operator (kind 'payer-country') when the country PayPal gives for the
    payer differs from the client's declared one, which decides its VAT. Returns whether
    they agree (True when either is unknown)."""
    tenant = session.get(Tenant, tenant_id)
    paid_from = paypal_payer_countries(paypal_state)
    if tenant is None or not tenant.country or not paid_from:
        return True
    declared = {tenant.country, vat_territory(tenant.country, tenant.postcode or "")}
    if declared & paid_from:
        return True
    raise_alert(
        session,
        key=f"payer-country:{tenant_id}:{tenant.country}:{','.join(sorted(paid_from))}",
        kind="payer-country",
        tenant_id=tenant_id,
        now=now,
        message=(
            f"tenant {tenant_id} declares its billing address in {tenant.country} but pays "
            f"from a PayPal account in {', '.join(sorted(paid_from))}: the declared country "
            "decides the VAT on its invoices; check it with the client."
        ),
    )
    return False


@dataclass(frozen=True)
class DesLine:
    vat_number: str
    client_name: str
    ht_cents: int

    @property
    def euros(self) -> Decimal:
        return Decimal(self.ht_cents) / 100


def des_lines(session: Session, month: date) -> list[DesLine]:
    """The month's services to EU businesses under reverse charge, per client VAT number:
    invoices minus credit notes issued that month (Europe/Paris), excluding tax."""
    start = datetime(month.year, month.month, 1, tzinfo=PARIS)
    end = datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=PARIS)
    vat_number = Invoice.client["vat_number"].astext
    rows = session.execute(
        select(vat_number, func.max(Invoice.client["name"].astext), func.sum(_signed_ht()))
        .where(
            Invoice.vat_regime == VatRegime.REVERSE_CHARGE.value,
            Invoice.issued_at >= start,
            Invoice.issued_at < end,
        )
        .group_by(vat_number)
        .order_by(vat_number)
    ).all()
    return [DesLine(str(number), str(name), int(cents)) for number, name, cents in rows]


def des_csv(lines: list[DesLine]) -> str:
    """CSV for the DES: the client's VAT number, the amount excluding tax in euros (negative
    when credit notes outweigh invoices) and rounded to the euro as the DES takes it."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["vat_number", "client_name", "amount_ht_eur", "des_amount_eur"])
    for line in lines:
        rounded = line.euros.quantize(Decimal(1), rounding=ROUND_HALF_UP)
        writer.writerow([line.vat_number, line.client_name, f"{line.euros:.2f}", rounded])
    return out.getvalue()
