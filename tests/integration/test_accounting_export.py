"""The operator's accounting export for a month: each invoice and credit note booked in the
FEC's columns, balanced, and adding up to the invoices' own totals, per account, for a month
with a document in every VAT regime (French VAT at 20 % and overseas at 8.5 %, an EU business
under reverse charge, a client outside the EU) and a credit note; the revenue page's VAT table
says the same."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from fta.billing.invoices import ClientIdentity, Line, issue_credit_note, issue_invoice
from fta.billing.invoices.identity import CustomerType
from fta.billing.invoices.models import Invoice, Kind
from fta.billing.invoices.paris import PARIS, paris_day
from fta.db import session_scope
from fta.operators.revenue import CLIENTS_ACCOUNT, FEC_COLUMNS, SALES_ACCOUNTS, VAT_ACCOUNT
from tests.support.admins import admin_headers, create_admin
from tests.support.api import sign_up

API = "/api/v1/admin/revenue"
ADDRESS = {"address_lines": ("1 rue de la Paix",), "city": "Ville"}
CLIENTS = {
    "fr": ClientIdentity(name="Client Paris", postcode="75002", country="FR", **ADDRESS),
    # A business: a private client overseas is invoiced by hand (docs/billing.md).
    "fr-overseas": ClientIdentity(
        name="Atelier Guadeloupe SARL",
        postcode="97110",
        country="FR",
        siren="732829320",
        customer_type=CustomerType.BUSINESS,
        **ADDRESS,
    ),
    "reverse_charge": ClientIdentity(
        name="Rechenwerk GmbH",
        postcode="10115",
        country="DE",
        vat_number="DE136695976",
        customer_type=CustomerType.BUSINESS,
        **ADDRESS,
    ),
    "outside_eu": ClientIdentity(name="Client Quebec", postcode="H2X 1Y4", country="CA", **ADDRESS),
}


@pytest.fixture(scope="module")
def admin(http: TestClient) -> dict[str, str]:
    return admin_headers(http, create_admin())


def _cents(text: str) -> int:
    whole, _, rest = text.partition(",")
    return int(whole) * 100 + int(rest)


def _month_totals(month_start: date) -> dict[str, int]:
    """The invoices' own totals for the month (credit notes negative), from their rows."""
    start = datetime.combine(month_start, time(), PARIS)
    end = datetime.combine((month_start + timedelta(days=32)).replace(day=1), time(), PARIS)
    totals: dict[str, int] = defaultdict(int)
    with session_scope() as session:
        rows = session.execute(
            select(Invoice.kind, Invoice.vat_regime, func.sum(Invoice.total_ht_cents),
                   func.sum(Invoice.total_vat_cents), func.sum(Invoice.total_ttc_cents))
            .where(Invoice.issued_at >= start, Invoice.issued_at < end)
            .group_by(Invoice.kind, Invoice.vat_regime)
        ).all()  # fmt: skip
    for kind, regime, ht, vat, ttc in rows:
        sign = -1 if kind == Kind.CREDIT_NOTE else 1
        totals["ttc"] += sign * ttc
        totals["vat"] += sign * vat
        totals[f"ht:{regime}"] += sign * ht
    return totals


def test_the_export_adds_up_to_the_invoices_in_every_vat_regime(
    http: TestClient, admin: dict[str, str]
) -> None:
    tenant_id = sign_up(http, "Ledger").tenant_id
    with session_scope() as session:
        issued = {
            name: issue_invoice(
                session,
                tenant_id=tenant_id,
                lines=[Line("Abonnement Pro", Decimal(1), Decimal("29.90"))],
                period=(date(2026, 11, 1), date(2026, 11, 30)),
                client=client,
            )
            for name, client in CLIENTS.items()
        }
        credit = issue_credit_note(
            session, invoice_id=issued["fr"].id, reason="Geste commercial", refunded_ttc_cents=1000
        )
        numbers = {name: invoice.number for name, invoice in issued.items()}
        numbers["credit"] = credit.number
        regimes = {name: invoice.vat_regime for name, invoice in issued.items()}
        day = paris_day(credit.issued_at)
    assert regimes == {
        "fr": "fr",
        "fr-overseas": "fr",
        "reverse_charge": "reverse_charge",
        "outside_eu": "outside_eu",
    }
    month = day.strftime("%Y-%m")

    export = http.get(f"{API}/{month}/accounting.csv", headers=admin)
    assert export.status_code == 200, export.text
    assert export.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(export.text), delimiter=";"))
    assert tuple(rows[0]) == FEC_COLUMNS
    assert {row["PieceRef"] for row in rows} >= set(numbers.values())

    debit = sum(_cents(row["Debit"]) for row in rows)
    credit_total = sum(_cents(row["Credit"]) for row in rows)
    assert debit == credit_total  # balanced
    by_account: dict[str, int] = defaultdict(int)  # credit less debit
    for row in rows:
        by_account[row["CompteNum"]] += _cents(row["Credit"]) - _cents(row["Debit"])
    totals = _month_totals(day.replace(day=1))
    assert -by_account[CLIENTS_ACCOUNT[0]] == totals["ttc"]
    assert by_account[VAT_ACCOUNT[0]] == totals["vat"]
    for regime, (account, _) in SALES_ACCOUNTS.items():
        assert by_account[account] == totals[f"ht:{regime}"], regime

    # The credit note is booked the other way round: the client's account credited.
    credit_rows = [row for row in rows if row["PieceRef"] == numbers["credit"]]
    client_row = next(r for r in credit_rows if r["CompteNum"] == CLIENTS_ACCOUNT[0])
    assert (_cents(client_row["Credit"]), _cents(client_row["Debit"])) == (1000, 0)
    assert client_row["CompAuxNum"] == tenant_id and client_row["EcritureLib"].startswith("Avoir")

    # The revenue figures say the same per regime.
    figures = http.get(f"{API}/{month}", headers=admin).json()
    assert figures["invoiced"]["ttc_cents"] == totals["ttc"]
    assert figures["invoiced"]["vat_cents"] == totals["vat"]
    rates = {(row["regime"], row["rate"]) for row in figures["vat"]}
    assert {
        ("fr", "20.00"),
        ("fr", "8.50"),
        ("reverse_charge", "0.00"),
        ("outside_eu", "0.00"),
    } <= rates
    journal = http.get(f"{API}/{month}/sales-journal.csv", headers=admin)
    assert journal.status_code == 200 and numbers["credit"] in journal.text


def test_a_month_that_is_not_one_is_refused(http: TestClient, admin: dict[str, str]) -> None:
    for month in ("2026-13", "2026-00"):
        refused = http.get(f"{API}/{month}/accounting.csv", headers=admin)
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
    assert http.get(f"{API}/2026-1", headers=admin).status_code == 422
