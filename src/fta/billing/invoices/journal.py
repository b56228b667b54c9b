"""The sales journal an accountant takes in: every invoice and credit note of a period, in
number order, with the amounts to book per VAT regime, and a check that no number is
missing."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from fta.billing.invoices.models import Invoice, InvoiceCounter, Kind
from fta.billing.invoices.money import plain_euros
from fta.billing.invoices.paris import PARIS, paris_day


@dataclass(frozen=True)
class JournalEntry:
    number: str
    kind: str
    issued_on: date
    tenant_id: str
    client_name: str
    client_country: str
    client_vat_number: str
    vat_regime: str
    vat_rate: str
    # Credit notes negative: the journal adds up to the period's sales.
    ht_cents: int
    vat_cents: int
    ttc_cents: int
    credits: str
    payment_ref: str


def journal(session: Session, first_day: date, last_day: date) -> list[JournalEntry]:
    """The documents issued from `first_day` to `last_day` (days in France), by series and
    number."""
    start = datetime.combine(first_day, datetime.min.time(), PARIS)
    end = datetime.combine(last_day + timedelta(days=1), datetime.min.time(), PARIS)
    credited = aliased(Invoice)
    rows = session.execute(
        select(Invoice, credited.number)
        .outerjoin(credited, credited.id == Invoice.credits_invoice_id)
        .where(Invoice.issued_at >= start, Invoice.issued_at < end)
        .order_by(Invoice.series.desc(), Invoice.year, Invoice.sequence)
    ).all()
    entries = []
    for invoice, credited_number in rows:
        sign = -1 if invoice.kind == Kind.CREDIT_NOTE else 1
        entries.append(
            JournalEntry(
                number=invoice.number,
                kind=invoice.kind,
                issued_on=paris_day(invoice.issued_at),
                tenant_id=invoice.tenant_id,
                client_name=str(invoice.client.get("name", "")),
                client_country=str(invoice.client.get("country", "")),
                client_vat_number=str(invoice.client.get("vat_number") or ""),
                vat_regime=invoice.vat_regime,
                vat_rate=f"{invoice.vat_rate:.2f}",
                ht_cents=sign * invoice.total_ht_cents,
                vat_cents=sign * invoice.total_vat_cents,
                ttc_cents=sign * invoice.total_ttc_cents,
                credits=credited_number or "",
                payment_ref=invoice.payment_ref or "",
            )
        )
    return entries


def missing_numbers(session: Session, year: int) -> list[str]:
    """Numbers of `year` that were counted but have no document: none, unless a row was
    removed behind the database's back (the series must be continuous)."""
    missing = []
    counters = session.scalars(select(InvoiceCounter).where(InvoiceCounter.year == year))
    for counter in counters:
        used = set(
            session.scalars(
                select(Invoice.sequence).where(
                    Invoice.series == counter.series, Invoice.year == year
                )
            )
        )
        missing += [
            f"{counter.series}-{year}-{sequence:06d}"
            for sequence in range(1, counter.last_value + 1)
            if sequence not in used
        ]
    return missing


def journal_csv(entries: list[JournalEntry]) -> str:
    """CSV with amounts in euros (a decimal point, two decimals)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            "number", "kind", "issued_on", "tenant_id", "client_name", "client_country",
            "client_vat_number", "vat_regime", "vat_rate", "ht_eur", "vat_eur", "ttc_eur",
            "credits", "payment_ref",
        ]
    )  # fmt: skip
    for entry in entries:
        writer.writerow(
            [
                entry.number, entry.kind, entry.issued_on.isoformat(), entry.tenant_id,
                entry.client_name, entry.client_country, entry.client_vat_number,
                entry.vat_regime, entry.vat_rate, plain_euros(entry.ht_cents),
                plain_euros(entry.vat_cents), plain_euros(entry.ttc_cents), entry.credits,
                entry.payment_ref,
            ]
        )  # fmt: skip
    return out.getvalue()
