"""Invoice arithmetic, VAT regimes, identity checks and the Factur-X XML, without a database."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal

import facturx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fta.billing.invoices.document import CreditedInvoice, Document, mentions, payment_terms
from fta.billing.invoices.facturx import LEVEL, build_xml
from fta.billing.invoices.identity import (
    ClientIdentity,
    CustomerType,
    SellerIdentity,
    check_client,
    seller_from_settings,
)
from fta.billing.invoices.models import Kind, VatRegime
from fta.billing.invoices.money import Line, check_line, compute, euros
from fta.billing.invoices.vat import REVERSE_CHARGE_MENTION, treatment
from fta.errors import Invalid
from fta.settings import Mode, Settings
from tests.support.identities import fictional_siren, french_vat

SIREN = fictional_siren("90000001")
REAL_KEY = "k" * 48
REAL_DB = "postgresql+psycopg://fta:Zx81Qw93Lp02@postgres/fta"  # pragma: allowlist secret


def client(**overrides: object) -> ClientIdentity:
    fields: dict[str, object] = {
        "name": "Camille Dupont",
        "address_lines": ("3 rue des Lilas",),
        "postcode": "69003",
        "city": "Lyon",
        "country": "FR",
    }
    fields.update(overrides)
    return ClientIdentity(**fields)  # type: ignore[arg-type]


def business(**overrides: object) -> ClientIdentity:
    fields: dict[str, object] = {
        "name": "Quantique SARL",
        "customer_type": CustomerType.BUSINESS,
        "siren": SIREN,
        "vat_number": french_vat(SIREN),
    }
    fields.update(overrides)
    return client(**fields)


# -- money -----------------------------------------------------------------------------------


def test_each_line_is_rounded_half_up_before_the_total() -> None:
    lines = [
        Line("a", Decimal("3"), Decimal("0.3333")),  # 0.9999 → 1.00
        Line("b", Decimal("1"), Decimal("0.005")),  # 0.005 → 0.01 (half-up, not to even)
        Line("c", Decimal("0.5"), Decimal("0.0250")),  # 0.0125 → 0.01
        Line("d", Decimal("7"), Decimal("1.4285")),  # 9.9995 → 10.00
    ]
    totals = compute([check_line(line) for line in lines], Decimal("20"))
    assert totals.line_ht_cents == (100, 1, 1, 1000)
    assert totals.ht_cents == 1102
    assert totals.vat_cents == 220  # 220.4 → 220
    assert totals.ttc_cents == 1322


@pytest.mark.parametrize(
    ("ht", "vat"),
    [("0.02", 0), ("0.03", 1), ("0.025", 1), ("8.325", 167), ("9.99", 200), ("0.075", 2)],
)
def test_vat_is_the_rounded_share_of_the_rounded_total(ht: str, vat: int) -> None:
    totals = compute([Line("x", Decimal(1), Decimal(ht))], Decimal("20"))
    assert totals.vat_cents == vat
    assert totals.ht_cents + totals.vat_cents == totals.ttc_cents


@given(
    st.lists(
        st.tuples(
            st.decimals(min_value=0, max_value=10_000, places=4),
            st.decimals(min_value=0, max_value=10_000, places=4),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_totals_always_add_up(items: list[tuple[Decimal, Decimal]]) -> None:
    lines = [check_line(Line("x", q, p)) for q, p in items]
    totals = compute(lines, Decimal("20"))
    exact = sum(
        (
            (q * p).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
            for q, p in ((line.quantity, line.unit_price_ht) for line in lines)
        ),
        Decimal(0),
    )
    assert Decimal(totals.ht_cents) / 100 == exact
    assert totals.vat_cents == int(
        (exact * Decimal("0.2")).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) * 100
    )
    assert totals.ht_cents + totals.vat_cents == totals.ttc_cents


@pytest.mark.parametrize(
    ("quantity", "price", "message"),
    [
        ("-1", "1", "quantity must be between"),
        ("1", "0.00001", "more than 4 decimals"),
        ("1", "NaN", "unit_price_ht must be between"),
        ("10000001", "1", "quantity must be between"),
    ],
)
def test_bad_lines_are_refused(quantity: str, price: str, message: str) -> None:
    with pytest.raises(Invalid, match=message):
        check_line(Line("x", Decimal(quantity), Decimal(price)))


def test_euros_are_written_the_french_way() -> None:
    assert euros(123456789) == "1\u00a0234\u00a0567,89 €"
    assert euros(5) == "0,05 €"


# -- identities and VAT ----------------------------------------------------------------------


def test_vat_regimes() -> None:
    assert treatment(check_client(client())).rate == Decimal(20)
    assert treatment(check_client(business())).regime is VatRegime.FRANCE
    german = check_client(business(country="DE", siren=None, vat_number="DE 136 695 976"))
    assert german.vat_number == "DE136695976"
    reverse = treatment(german)
    assert (reverse.regime, reverse.rate) == (VatRegime.REVERSE_CHARGE, Decimal(0))
    assert reverse.mention == REVERSE_CHARGE_MENTION
    # A private client elsewhere in the EU pays French VAT (under the OSS threshold).
    assert treatment(check_client(client(country="de"))).regime is VatRegime.FRANCE
    assert treatment(check_client(business(country="BE", siren=None, vat_number=None))).rate == 20
    outside = treatment(check_client(business(country="US", siren=None, vat_number="12-3456789")))
    assert (outside.regime, outside.rate) == (VatRegime.OUTSIDE_EU, Decimal(0))


@pytest.mark.parametrize(
    ("identity", "message"),
    [
        (business(siren="123456789"), "invalid SIREN '123456789'"),
        (business(siren=None), "needs its SIREN"),
        (business(vat_number="FR00123456789"), "invalid VAT number"),
        (business(vat_number=french_vat(fictional_siren("90000002"))), "does not belong"),
        (business(country="DE", siren=None, vat_number="DE136695977"), "invalid VAT number"),
        (business(country="IT", siren=None, vat_number="DE136695976"), "not a VAT number of"),
        (client(country="France"), "ISO 3166-1"),
        (client(address_lines=()), "address"),
        (client(name="  "), "name"),
    ],
)
def test_invalid_identities_are_refused(identity: ClientIdentity, message: str) -> None:
    with pytest.raises(Invalid, match=message):
        check_client(identity)


def test_seller_placeholders_are_refused() -> None:
    """The legal identity must be real in every mode; the contact details may be
    placeholders in development and test only."""
    real = {
        "seller_name": "Bots Hébergés SAS",
        "seller_address": "1 place de la Bourse",
        "seller_postcode": "75002",
        "seller_city": "Paris",
        "seller_siren": SIREN,
        "seller_vat_number": french_vat(SIREN),
        "seller_legal_form": "SAS",
        "seller_share_capital": "1 000 €",
        "seller_registry": "RCS Paris",
        "seller_email": "factures@example.com",
    }
    placeholders = dict.fromkeys(real, "placeholder")
    legal = ("seller_legal_form", "seller_share_capital", "seller_registry", "seller_siren")

    def settings(mode: Mode, **values: str) -> Settings:
        # Every value is explicit: the environment of the test run may hold others.
        return Settings(
            mode=mode, secret_key=REAL_KEY, audit_key=REAL_KEY, database_url=REAL_DB, **values
        )  # type: ignore[arg-type]

    with pytest.raises(Invalid, match="FTA_SELLER_VAT_NUMBER, FTA_SELLER_NAME"):
        seller_from_settings(settings(Mode.PRODUCTION, **placeholders))
    for mode in (Mode.TEST, Mode.DEVELOPMENT, Mode.PRODUCTION):
        for name in (*legal, "seller_vat_number"):
            with pytest.raises(Invalid, match=f"FTA_{name.upper()}"):
                seller_from_settings(settings(mode, **{**real, name: "placeholder"}))
    contact_only = {**placeholders, **{name: real[name] for name in legal}}
    contact_only["seller_vat_number"] = real["seller_vat_number"]
    assert seller_from_settings(settings(Mode.TEST, **contact_only)).name == "placeholder"
    seller = seller_from_settings(settings(Mode.PRODUCTION, **real))
    assert seller.vat_number == french_vat(SIREN)
    assert seller.legal_line == f"SAS au capital de 1 000 € — RCS Paris {SIREN}"
    with pytest.raises(Invalid, match="invalid SIREN"):
        seller_from_settings(settings(Mode.PRODUCTION, **{**real, "seller_siren": "123456789"}))
    other_vat = french_vat(fictional_siren("90000002"))
    with pytest.raises(Invalid, match="does not belong"):
        seller_from_settings(settings(Mode.PRODUCTION, **{**real, "seller_vat_number": other_vat}))


# -- Factur-X XML ----------------------------------------------------------------------------


def _document(kind: Kind, identity: ClientIdentity) -> Document:
    identity = check_client(identity)
    vat = treatment(identity)
    lines = (Line("Abonnement Pro — novembre", Decimal(1), Decimal("29.90")),)
    issued = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    credits = (
        CreditedInvoice("F-2026-000007", date(2026, 11, 2)) if kind is Kind.CREDIT_NOTE else None
    )
    terms = (
        payment_terms(
            paid_on=issued.date(), due_on=issued.date(), payment_days=30, payment_ref="X1"
        )
        if kind is Kind.INVOICE
        else None
    )
    return Document(
        kind=kind,
        number="F-2026-000008" if kind is Kind.INVOICE else "A-2026-000001",
        issued_at=issued,
        due_on=issued.date(),
        period_start=date(2026, 11, 1),
        period_end=date(2026, 11, 30),
        seller=SellerIdentity(
            name="Bots Hébergés SAS",
            address_lines=("1 place de la Bourse",),
            postcode="75002",
            city="Paris",
            country="FR",
            siren=SIREN,
            vat_number=french_vat(SIREN),
        ),
        client=identity,
        lines=lines,
        totals=compute(list(lines), vat.rate),
        vat_rate=vat.rate,
        vat_regime=vat.regime,
        mentions=mentions(
            kind=kind,
            client=identity,
            due_on=issued.date(),
            terms=terms,
            vat_mention=vat.mention,
            late_penalty="trois fois le taux d’intérêt légal",
            credits=credits,
            reason="remboursement" if credits else None,
        ),
        vat_mention=vat.mention,
        payment_terms=terms,
        payment_ref="X1",
        credits=credits,
    )


@pytest.mark.parametrize(
    ("kind", "identity"),
    [
        (Kind.INVOICE, business()),
        (Kind.INVOICE, business(country="DE", siren=None, vat_number="DE136695976")),
        (Kind.INVOICE, business(country="CH", siren=None, vat_number=None)),
        (Kind.CREDIT_NOTE, business()),
    ],
)
def test_factur_x_xml_passes_the_schema(kind: Kind, identity: ClientIdentity) -> None:
    xml = build_xml(_document(kind, identity))
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level=LEVEL)
    text = xml.decode()
    assert ("<ram:TypeCode>381</ram:TypeCode>" in text) is (kind is Kind.CREDIT_NOTE)
    assert "<ram:GrandTotalAmount>" in text
