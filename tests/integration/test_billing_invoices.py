"""Invoices against the real database: gapless numbering under concurrency, credit notes,
immutability, the PDFs (pdftotext, pdftoppm) and Factur-X, and the API."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import threading
import uuid
from datetime import date
from decimal import Decimal
from pathlib import Path

import facturx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError

from fta.accounts.models import Tenant
from fta.billing.invoices import (
    ClientIdentity,
    CustomerType,
    Line,
    Period,
    client_from_tenant,
    issue_credit_note,
    issue_invoice,
)
from fta.billing.invoices.journal import missing_numbers
from fta.billing.invoices.models import Invoice, InvoiceCounter, Kind
from fta.billing.invoices.paris import paris_day
from fta.db import get_sessionmaker, session_scope
from fta.errors import Conflict, Invalid
from tests.support.api import sign_up
from tests.support.identities import (
    CLIENT_SIREN,
    FRENCH_BUSINESS,
    FRENCH_PRIVATE,
    SELLER_SIREN,
    french_vat,
)

PERIOD = Period(date(2026, 11, 1), date(2026, 11, 30))
PAID_ON = date(2026, 11, 3)
LINES = [
    Line("Abonnement Pro — novembre 2026", Decimal(1), Decimal("24.9917")),
    Line("Dépassement CPU (heures)", Decimal("3.3333"), Decimal("0.0450")),
]


def artifacts() -> Path:
    default = Path(__file__).resolve().parents[2] / ".cache" / "test-artifacts"
    path = Path(os.environ.get("FTA_TEST_ARTIFACTS", default))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def tenant(http: TestClient) -> str:
    return sign_up(http, "Invoiced").tenant_id


def _issue(tenant_id: str, client: ClientIdentity = FRENCH_PRIVATE, **kwargs: object) -> Invoice:
    if "payment_ref" in kwargs:
        kwargs.setdefault("paid_on", PAID_ON)
    kwargs.setdefault("lines", LINES)
    kwargs.setdefault("period", PERIOD)
    with session_scope() as session:
        return issue_invoice(
            session,
            tenant_id=tenant_id,
            client=client,
            **kwargs,  # type: ignore[arg-type]
        )


def _pdf(invoice_id: uuid.UUID) -> bytes:
    with session_scope() as session:
        return session.execute(select(Invoice.pdf).where(Invoice.id == invoice_id)).scalar_one()


def _text(pdf: bytes, name: str) -> str:
    path = artifacts() / f"{name}.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(path), "-"], check=True, capture_output=True
    )
    return " ".join(out.stdout.decode().split())


def test_concurrent_invoices_get_consecutive_numbers(tenant: str) -> None:
    count = 6
    barrier = threading.Barrier(count)
    numbers: list[tuple[int, object]] = []
    errors: list[BaseException] = []

    def issue() -> None:
        try:
            barrier.wait()
            invoice = _issue(tenant)
            numbers.append((invoice.sequence, invoice.issued_at))
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=issue) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    sequences = sorted(sequence for sequence, _ in numbers)
    assert sequences == list(range(sequences[0], sequences[0] + count))
    # Numbers and issue times follow the same order.
    by_number = [issued for _, issued in sorted(numbers, key=lambda pair: pair[0])]
    assert by_number == sorted(by_number)  # type: ignore[type-var]


def test_a_rolled_back_issue_leaves_no_gap(tenant: str) -> None:
    first = _issue(tenant)
    session = get_sessionmaker()()
    try:
        abandoned = issue_invoice(
            session, tenant_id=tenant, lines=LINES, period=PERIOD, client=FRENCH_PRIVATE
        )
        assert abandoned.sequence == first.sequence + 1
        # A concurrent issuer waits for this transaction; on rollback it takes the same number.
        results: list[Invoice] = []
        waiting = threading.Thread(target=lambda: results.append(_issue(tenant)))
        waiting.start()
        session.rollback()
    finally:
        session.close()
    waiting.join()
    assert results[0].sequence == first.sequence + 1
    assert results[0].number == f"F-{first.year}-{first.sequence + 1:06d}"


def test_invoices_are_immutable(tenant: str, owner_engine: Engine) -> None:
    invoice = _issue(tenant)
    statements = [
        "UPDATE invoices SET total_ttc_cents = 0 WHERE id = :id",
        "DELETE FROM invoices WHERE id = :id",
        "UPDATE invoice_lines SET line_ht_cents = 0 WHERE invoice_id = :id",
        "DELETE FROM invoice_lines WHERE invoice_id = :id",
    ]
    for statement in statements:
        # The application's role holds no such right; the schema's owner meets the trigger.
        with pytest.raises(DBAPIError, match="permission denied"), session_scope() as session:
            session.execute(text(statement), {"id": invoice.id})
        with pytest.raises(DBAPIError, match="immutable"), owner_engine.begin() as connection:
            connection.execute(text(statement), {"id": invoice.id})
    with session_scope() as session:
        stored = session.get(Invoice, invoice.id)
        assert stored is not None
        assert stored.total_ttc_cents == invoice.total_ttc_cents
        assert len(stored.lines) == 2


def test_totals_are_exact(tenant: str) -> None:
    invoice = _issue(tenant)
    # 24.9917 → 24.99; 3.3333 × 0.045 = 0.1499985 → 0.15; VAT 20 % of 25.14 = 5.028 → 5.03.
    assert [line.line_ht_cents for line in invoice.lines] == [2499, 15]
    assert (invoice.total_ht_cents, invoice.total_vat_cents, invoice.total_ttc_cents) == (
        2514,
        503,
        3017,
    )


def test_private_client_pdf_carries_the_mandatory_mentions(tenant: str) -> None:
    invoice = _issue(tenant, payment_ref=f"PAY-{uuid.uuid4().hex[:12]}")
    assert not invoice.facturx
    content = _text(_pdf(invoice.id), "invoice-private")
    issued = paris_day(invoice.issued_at).strftime("%d/%m/%Y")
    for mention in [
        f"Facture n° {invoice.number}",
        f"Date d’émission : {issued}",
        "Période de service : du 01/11/2026 au 30/11/2026",
        "Bots Hébergés SAS",
        "1 place de la Bourse",
        f"SIREN : {SELLER_SIREN}",
        f"N° TVA intracommunautaire : {french_vat(SELLER_SIREN)}",
        "Élodie Fournier",
        "12 rue de l’Église",
        "13001 Marseille",
        "Abonnement Pro — novembre 2026",
        "Prix unitaire HT",
        "24,9917 €",
        "3,3333",
        "Total HT 25,14 €",
        "TVA (20 %) 5,03 €",
        "Total TTC 30,17 €",
        f"Date d’échéance : {issued}",
        f"acquittée le 03/11/2026 par PayPal (transaction {invoice.payment_ref})",
        "Catégorie de l’opération : prestations de services",
        "SAS au capital de 1 000 € — RCS Paris",
    ]:
        assert mention in content, mention
    assert "Pénalités de retard" not in content

    png = artifacts() / "invoice-private"
    subprocess.run(
        ["pdftoppm", "-png", "-r", "60", "-singlefile", "-f", "1", png.with_suffix(".pdf"), png],
        check=True,
    )
    assert png.with_suffix(".png").stat().st_size > 0


def test_business_pdf_is_factur_x_with_business_mentions(tenant: str) -> None:
    invoice = _issue(tenant, client=FRENCH_BUSINESS)
    assert invoice.facturx
    pdf = _pdf(invoice.id)
    content = _text(pdf, "invoice-business-facturx")
    for mention in [
        f"Facture n° {invoice.number}",
        "Quantique Façades SARL",
        "Bâtiment B",
        f"SIREN : {CLIENT_SIREN}",
        f"N° TVA intracommunautaire : {french_vat(CLIENT_SIREN)}",
        f"Date d’échéance : {invoice.due_on.strftime('%d/%m/%Y')} — conditions de paiement",
        "à 30 jours",
        "Pénalités de retard : trois fois le taux d’intérêt légal",
        "Indemnité forfaitaire pour frais de recouvrement de 40 €",
        "Total TTC 30,17 €",
    ]:
        assert mention in content, mention
    filename, xml = facturx.get_facturx_xml_from_pdf(pdf, check_xsd=False)
    assert filename == "factur-x.xml"
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    assert f"<ram:ID>{invoice.number}</ram:ID>".encode() in xml
    assert b"<ram:GrandTotalAmount>30.17</ram:GrandTotalAmount>" in xml
    png = artifacts() / "invoice-business-facturx"
    subprocess.run(
        ["pdftoppm", "-png", "-r", "60", "-singlefile", "-f", "1", png.with_suffix(".pdf"), png],
        check=True,
    )
    assert png.with_suffix(".png").stat().st_size > 0


def test_eu_business_is_billed_ht_with_the_reverse_charge_mention(tenant: str) -> None:
    german = ClientIdentity(
        name="Rechenwerk GmbH",
        address_lines=("Hauptstraße 5",),
        postcode="10115",
        city="Berlin",
        country="DE",
        vat_number="DE136695976",
        customer_type=CustomerType.BUSINESS,
    )
    invoice = _issue(tenant, client=german)
    assert (invoice.vat_regime, invoice.total_vat_cents, invoice.total_ttc_cents) == (
        "reverse_charge",
        0,
        2514,
    )
    content = _text(_pdf(invoice.id), "invoice-reverse-charge")
    assert "article 283-2 du CGI et article 196 de la directive 2006/112/CE" in content
    assert "lieu de la prestation : article 259-1° du CGI" in content


def test_a_refund_yields_a_credit_note_referencing_the_invoice(tenant: str) -> None:
    invoice = _issue(tenant, client=FRENCH_BUSINESS, payment_ref=f"PAY-{uuid.uuid4().hex[:12]}")
    refund = f"REF-{uuid.uuid4().hex[:12]}"
    with session_scope() as session:
        note = issue_credit_note(
            session, invoice_id=invoice.id, reason="remboursement", payment_ref=refund
        )
    assert note.kind == Kind.CREDIT_NOTE
    assert note.number.startswith(f"A-{note.year}-")
    assert note.credits_invoice_id == invoice.id
    assert note.total_ttc_cents == invoice.total_ttc_cents
    # The refund webhook delivered twice yields one credit note.
    with session_scope() as session:
        again = issue_credit_note(
            session, invoice_id=invoice.id, reason="remboursement", payment_ref=refund
        )
    assert again.id == note.id
    # Nothing is left to credit.
    with pytest.raises(Conflict, match="exceed"), session_scope() as session:
        issue_credit_note(session, invoice_id=invoice.id, reason="encore", lines=LINES[1:])
    content = _text(_pdf(note.id), "credit-note")
    assert f"Avoir n° {note.number}" in content
    assert f"Avoir sur la facture n° {invoice.number}" in content
    assert "motif : remboursement" in content
    _, xml = facturx.get_facturx_xml_from_pdf(_pdf(note.id), check_xsd=True)
    assert b"<ram:TypeCode>381</ram:TypeCode>" in xml
    assert f"<ram:IssuerAssignedID>{invoice.number}</ram:IssuerAssignedID>".encode() in xml


def test_a_partial_credit_note_and_the_same_payment_invoiced_once(tenant: str) -> None:
    payment = f"PAY-{uuid.uuid4().hex[:12]}"
    invoice = _issue(tenant, payment_ref=payment)
    assert _issue(tenant, payment_ref=payment).id == invoice.id
    with session_scope() as session:
        note = issue_credit_note(
            session, invoice_id=invoice.id, reason="geste commercial", lines=LINES[1:]
        )
    assert (note.total_ht_cents, note.total_vat_cents, note.total_ttc_cents) == (15, 3, 18)
    with pytest.raises(Invalid, match="only invoices"), session_scope() as session:
        issue_credit_note(session, invoice_id=note.id, reason="non")


def test_invalid_client_numbers_are_refused(tenant: str) -> None:
    for identity, message in [
        (ClientIdentity(**{**FRENCH_BUSINESS.__dict__, "siren": "123456789"}), "invalid SIREN"),
        (
            ClientIdentity(**{**FRENCH_BUSINESS.__dict__, "vat_number": "FR00000000000"}),
            "invalid VAT",
        ),
    ]:
        with pytest.raises(Invalid, match=message), session_scope() as session:
            issue_invoice(session, tenant_id=tenant, lines=LINES, period=PERIOD, client=identity)


def test_the_tenant_billing_identity_is_snapshotted(tenant: str) -> None:
    with session_scope() as session:
        row = session.get(Tenant, tenant)
        assert row is not None
        with pytest.raises(Invalid, match="no complete billing address"):
            client_from_tenant(row)
        row.customer_type = "business"
        row.legal_name = "Quantique Façades SARL"
        row.address_line1, row.postcode, row.city, row.country = (
            "8 avenue Foch",
            "69006",
            "Lyon",
            "FR",
        )
        row.siren, row.vat_number = CLIENT_SIREN, french_vat(CLIENT_SIREN)
        client = client_from_tenant(row)
    invoice = _issue(tenant, client=client)
    assert invoice.facturx
    assert invoice.client["name"] == "Quantique Façades SARL"
    with session_scope() as session:
        row = session.get(Tenant, tenant)
        assert row is not None
        row.address_line1 = "1 rue Neuve"
    with session_scope() as session:
        stored = session.get(Invoice, invoice.id)
        assert stored is not None
        assert stored.client["address_lines"] == ["8 avenue Foch"]


def test_api_lists_own_invoices_and_serves_their_pdf(http: TestClient) -> None:
    alice, bob = sign_up(http, "Alice"), sign_up(http, "Bob")
    invoice = _issue(alice.tenant_id, client=FRENCH_BUSINESS)
    listed = http.get("/api/v1/invoices", headers=alice.auth)
    assert listed.status_code == 200
    assert [entry["number"] for entry in listed.json()] == [invoice.number]
    assert listed.json()[0]["total_ttc_cents"] == 3017
    response = http.get(listed.json()[0]["pdf_url"], headers=alice.auth)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert http.get("/api/v1/invoices", headers=bob.auth).json() == []
    other = http.get(f"/api/v1/invoices/{invoice.id}.pdf", headers=bob.auth)
    assert other.status_code == 404
    assert other.headers["content-type"] == "application/problem+json"
    assert http.get(f"/api/v1/invoices/{invoice.id}.pdf").status_code == 401
    assert http.get("/api/v1/invoices/not-a-uuid.pdf", headers=alice.auth).status_code == 422


def _first_page_png(pdf: bytes, name: str) -> Path:
    """Page 1 of `pdf` as a PNG in the artifacts folder (scripts/invoice-samples.sh copies
    these into docs/billing/)."""
    path = artifacts() / f"{name}.pdf"
    path.write_bytes(pdf)
    png = path.with_suffix("")
    subprocess.run(
        ["pdftoppm", "-png", "-r", "80", "-singlefile", "-f", "1", str(path), str(png)],
        check=True,
    )
    return png.with_suffix(".png")


def test_sample_documents_render(tenant: str) -> None:
    """A consumer's subscription invoice, a business's usage invoice (one line per metered
    quantity) and a credit note for a partial refund, rendered as the client gets them."""
    subscription = Line(
        "Abonnement fta Pro, du 01/12/2026 au 31/12/2026", Decimal(1), Decimal("79.00")
    )
    consumer = _issue(
        tenant,
        lines=[subscription],
        period=(date(2026, 12, 1), date(2026, 12, 31)),
        payment_ref=f"5UX{uuid.uuid4().hex[:14].upper()}",
        paid_on=date(2026, 12, 1),
    )
    usage = [
        Line(
            "Heures CPU au-delà du forfait Pro, 2026-11 : 62,50 h consommées, 50 h incluses",
            Decimal("12.5"),
            Decimal("0.04"),
        ),
        Line(
            "Mémoire (Go·h) au-delà du forfait Pro, 2026-11 : 250 Go·h consommés, dont la part "
            "au-delà du forfait (20 %)",
            Decimal(50),
            Decimal("0.008"),
        ),
        Line(
            "Minutes de tâches au-delà du forfait Pro, 2026-11 : 3 000 min consommées, dont la "
            "part au-delà du forfait (20 %)",
            Decimal(600),
            Decimal("0.0015"),
        ),
    ]
    with session_scope() as session:
        business = issue_invoice(
            session,
            tenant_id=tenant,
            lines=usage,
            period=(date(2026, 11, 1), date(2026, 11, 30)),
            client=FRENCH_BUSINESS,
        )
        credit = issue_credit_note(
            session,
            invoice_id=consumer.id,
            reason=f"Remboursement PayPal 7SR93451G2170124X de la facture {consumer.number}",
            refunded_ttc_cents=999,
            payment_ref=f"refund:{uuid.uuid4().hex[:12]}",
        )
    assert (credit.total_ht_cents, credit.total_vat_cents, credit.total_ttc_cents) == (
        833,
        166,
        999,
    )
    assert [line.line_ht_cents for line in business.lines] == [50, 40, 90]
    for name, document in (
        ("consumer-invoice", consumer),
        ("business-invoice", business),
        ("credit-note", credit),
    ):
        assert _first_page_png(_pdf(document.id), f"sample-{name}").stat().st_size > 0


def test_the_sales_journal_lists_the_months_documents_for_the_accountant(tenant: str) -> None:
    invoice = _issue(tenant, client=FRENCH_BUSINESS)
    with session_scope() as session:
        credit = issue_credit_note(
            session,
            invoice_id=invoice.id,
            reason="geste commercial",
            refunded_ttc_cents=1000,
            payment_ref=f"refund:{uuid.uuid4().hex[:12]}",
        )
    month = paris_day(credit.issued_at).strftime("%Y-%m")
    result = subprocess.run(
        [sys.executable, "-m", "fta.cli", "sales-journal", "--month", month],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rows = {row["number"]: row for row in csv.DictReader(io.StringIO(result.stdout))}
    issued = paris_day(invoice.issued_at).isoformat()
    assert rows[invoice.number] | {"tenant_id": "", "payment_ref": ""} == {
        "number": invoice.number,
        "kind": "invoice",
        "issued_on": issued,
        "tenant_id": "",
        "client_name": "Quantique Façades SARL",
        "client_country": "FR",
        "client_vat_number": french_vat(CLIENT_SIREN),
        "vat_regime": "fr",
        "vat_rate": "20.00",
        "ht_eur": "25.14",
        "vat_eur": "5.03",
        "ttc_eur": "30.17",
        "credits": "",
        "payment_ref": "",
    }
    credited = rows[credit.number]
    assert (credited["ht_eur"], credited["vat_eur"], credited["ttc_eur"]) == (
        "-8.33",
        "-1.67",
        "-10.00",
    )
    assert credited["credits"] == invoice.number
    bad = subprocess.run(
        [sys.executable, "-m", "fta.cli", "sales-journal", "--month", "2026-13"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 2 and "YYYY-MM" in bad.stderr


def test_a_number_counted_without_its_document_is_reported(tenant: str) -> None:
    invoice = _issue(tenant)
    session = get_sessionmaker()()
    try:
        assert missing_numbers(session, invoice.year) == []
        # A number taken, but its document gone: what the gapless series must never show.
        counter = session.get_one(InvoiceCounter, ("F", invoice.year), with_for_update=True)
        counter.last_value += 1
        session.flush()
        assert missing_numbers(session, invoice.year) == [
            f"F-{invoice.year}-{counter.last_value:06d}"
        ]
    finally:
        session.rollback()
        session.close()
