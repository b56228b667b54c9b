"""The business in figures for a month, and what the accountant takes in.

Revenue: the monthly recurring revenue of active subscriptions now, the subscriptions that
started and ended in the month, the overage billed for it, payments PayPal holds or denied,
and the VAT collected per regime and rate. The accounting export books each invoice and credit
note of the month (days in France) in the columns of the French FEC (fichier des écritures
comptables): the client's account debited with the total including VAT, the sales account of
its VAT regime credited with the amount before VAT, and collected VAT credited; a credit note
the other way round. Its totals are the invoices' by construction, and checked by the tests.
"""

from __future__ import annotations

import calendar
import csv
import io
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fta.billing.invoices.journal import JournalEntry, journal
from fta.billing.invoices.models import Kind, VatRegime
from fta.billing.invoices.paris import PARIS
from fta.billing.models import UsageBill
from fta.billing.paypal.models import (
    PaymentIssue,
    PaymentIssueKind,
    Subscription,
    SubscriptionStatus,
)
from fta.errors import Invalid

MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")
CLIENTS_ACCOUNT = ("411000", "Clients")
SALES_ACCOUNTS = {
    VatRegime.FRANCE: ("706100", "Prestations de services - France"),
    VatRegime.REVERSE_CHARGE: ("706200", "Prestations de services - UE, autoliquidation"),
    VatRegime.OUTSIDE_EU: ("706300", "Prestations de services - hors UE"),
}
VAT_ACCOUNT = ("445710", "TVA collectée")
JOURNAL = ("VT", "Ventes")
FEC_COLUMNS = (
    "JournalCode", "JournalLib", "EcritureNum", "EcritureDate", "CompteNum", "CompteLib",
    "CompAuxNum", "CompAuxLib", "PieceRef", "PieceDate", "EcritureLib", "Debit", "Credit",
    "EcritureLet", "DateLet", "ValidDate", "Montantdevise", "Idevise",
)  # fmt: skip


@dataclass(frozen=True)
class VatRow:
    regime: str
    rate: str
    documents: int
    ht_cents: int
    vat_cents: int
    ttc_cents: int


@dataclass(frozen=True)
class Revenue:
    month: str
    mrr_cents: int  # active subscriptions' monthly price before VAT, now
    active_subscriptions: int
    started: int  # subscriptions made in the month that went through
    cancelled: int  # subscriptions that ended in the month
    cancelled_mrr_cents: int
    overage_billed_cents: int  # the month's usage bills, before VAT
    overage_bills: int
    payment_issues: list[PaymentIssue]  # sales PayPal holds or denied, disputes, of the month
    vat: list[VatRow]  # invoices less credit notes issued in the month
    invoiced: VatRow  # all regimes together


@dataclass(frozen=True)
class Booking:
    """One line of the accounting export, amounts in cents."""

    number: int
    entry: JournalEntry
    account: tuple[str, str]
    debit_cents: int
    credit_cents: int
    auxiliary: bool


def month_days(month: str) -> tuple[date, date]:
    """The first and last day of `month` (YYYY-MM)."""
    found = MONTH.fullmatch(month)
    if found is None or not 1 <= int(found[2]) <= 12:
        raise Invalid("the month is written YYYY-MM, for example 2026-11")
    year, number = int(found[1]), int(found[2])
    return date(year, number, 1), date(year, number, calendar.monthrange(year, number)[1])


def revenue(session: Session, month: str) -> Revenue:
    first_day, last_day = month_days(month)
    start = datetime.combine(first_day, time(), PARIS)
    end = datetime.combine(last_day + timedelta(days=1), time(), PARIS)
    active = SubscriptionStatus.ACTIVE
    mrr, count = session.execute(
        select(func.coalesce(func.sum(Subscription.price_ht_cents), 0), func.count()).where(
            Subscription.status == active
        )
    ).one()
    started = session.scalar(
        select(func.count()).where(
            Subscription.created_at >= start,
            Subscription.created_at < end,
            Subscription.status != SubscriptionStatus.PENDING,
        )
    )
    cancelled, cancelled_mrr = session.execute(
        select(func.count(), func.coalesce(func.sum(Subscription.price_ht_cents), 0)).where(
            Subscription.status == SubscriptionStatus.CANCELLED,
            Subscription.updated_at >= start,
            Subscription.updated_at < end,
        )
    ).one()
    bills, billed = session.execute(
        select(func.count(), func.coalesce(func.sum(UsageBill.amount_ht_cents), 0)).where(
            UsageBill.period == month, UsageBill.invoice_id.is_not(None)
        )
    ).one()
    issues = list(
        session.scalars(
            select(PaymentIssue)
            .where(PaymentIssue.occurred_at >= start, PaymentIssue.occurred_at < end)
            .where(
                (PaymentIssue.kind == PaymentIssueKind.DISPUTE)
                | PaymentIssue.status.in_(["pending", "denied"])
            )
            .order_by(PaymentIssue.occurred_at)
        )
    )
    entries = journal(session, first_day, last_day)
    return Revenue(
        month=month,
        mrr_cents=int(mrr),
        active_subscriptions=int(count),
        started=int(started or 0),
        cancelled=int(cancelled),
        cancelled_mrr_cents=int(cancelled_mrr),
        overage_billed_cents=int(billed),
        overage_bills=int(bills),
        payment_issues=issues,
        vat=vat_rows(entries),
        invoiced=_total("", "", entries),
    )


def vat_rows(entries: list[JournalEntry]) -> list[VatRow]:
    keys = sorted({(entry.vat_regime, entry.vat_rate) for entry in entries})
    return [
        _total(regime, rate, [e for e in entries if (e.vat_regime, e.vat_rate) == (regime, rate)])
        for regime, rate in keys
    ]


def _total(regime: str, rate: str, entries: list[JournalEntry]) -> VatRow:
    return VatRow(
        regime,
        rate,
        len(entries),
        sum(e.ht_cents for e in entries),
        sum(e.vat_cents for e in entries),
        sum(e.ttc_cents for e in entries),
    )


def bookings(entries: list[JournalEntry]) -> list[Booking]:
    """Each document as balanced lines: the client's account against sales and VAT."""
    return [
        line for number, entry in enumerate(entries, start=1) for line in _booked(number, entry)
    ]


def _booked(number: int, entry: JournalEntry) -> list[Booking]:
    # The journal signs credit notes negative; a booking's amounts are positive, on the
    # other side for a credit note.
    reverse = entry.kind == Kind.CREDIT_NOTE
    sides = [
        (CLIENTS_ACCOUNT, abs(entry.ttc_cents), not reverse, True),
        (SALES_ACCOUNTS[VatRegime(entry.vat_regime)], abs(entry.ht_cents), reverse, False),
    ]
    if entry.vat_cents:
        sides.append((VAT_ACCOUNT, abs(entry.vat_cents), reverse, False))
    return [
        Booking(number, entry, account, amount if debit else 0, 0 if debit else amount, aux)
        for account, amount, debit, aux in sides
    ]


def accounting_csv(session: Session, month: str) -> str:
    """The month's bookings in the FEC's columns: `;`-separated, amounts with a decimal comma,
    dates as YYYYMMDD."""
    first_day, last_day = month_days(month)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(FEC_COLUMNS)
    for line in bookings(journal(session, first_day, last_day)):
        entry = line.entry
        day = entry.issued_on.strftime("%Y%m%d")
        label = ("Avoir " if entry.kind == Kind.CREDIT_NOTE else "Facture ") + entry.number
        writer.writerow(
            [
                *JOURNAL, str(line.number), day, *line.account,
                entry.tenant_id if line.auxiliary else "",
                entry.client_name if line.auxiliary else "",
                entry.number, day, label, _comma(line.debit_cents), _comma(line.credit_cents),
                "", "", day, "", "",
            ]
        )  # fmt: skip
    return out.getvalue()


def _comma(cents: int) -> str:
    whole, rest = divmod(cents, 100)
    return f"{whole},{rest:02d}"
