"""Factur-X as a French Plateforme Agréée receives it: documents issued through the service,
for every kind of client, pass the EN 16931 XSD, the EN 16931 schematron and the French BR-FR
schematron; the PDF is a PDF/A-3 with an sRGB OutputIntent whose Info and XMP agree; business
documents are handed to the PA once, through an outbox folder or its REST API."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from io import BytesIO
from pathlib import Path

import facturx
import pytest
from fastapi.testclient import TestClient
from lxml import etree
from pypdf import PdfReader
from sqlalchemy import select

from fta.billing.alerts.service import open_alerts
from fta.billing.invoices import (
    ClientIdentity,
    CustomerType,
    Line,
    Period,
    issue_credit_note,
    issue_invoice,
    service,
)
from fta.billing.invoices import facturx as fx
from fta.billing.invoices.document import Document
from fta.billing.invoices.handoff import DirectoryHandoff, InvoiceHandoff, hand_off_pending
from fta.billing.invoices.models import Invoice
from fta.db import session_scope
from fta.settings import get_settings
from tests.support.api import sign_up
from tests.support.facturx_rules import problems
from tests.support.identities import FRENCH_BUSINESS, FRENCH_PRIVATE
from tests.support.pa_standin import PlatformStandin

EU_BUSINESS = ClientIdentity(
    name="Rechenwerk GmbH",
    address_lines=("Hauptstraße 5",),
    postcode="10115",
    city="Berlin",
    country="DE",
    vat_number="DE136695976",
    customer_type=CustomerType.BUSINESS,
)
NON_EU_BUSINESS = ClientIdentity(
    name="Lattice Quant LLC",
    address_lines=("200 Park Avenue",),
    postcode="10166",
    city="New York",
    country="US",
    vat_number="12-3456789",
    customer_type=CustomerType.BUSINESS,
)
NON_EU_PRIVATE = ClientIdentity(
    name="Ada Okafor",
    address_lines=("4 King Street",),
    postcode="M5H 1A1",
    city="Toronto",
    country="CA",
)
PERIOD = Period(date(2026, 11, 1), date(2026, 11, 30))
SUBSCRIPTION = [Line("Abonnement Pro — novembre 2026", Decimal(1), Decimal("24.9917"))]
USAGE = [
    Line("Abonnement Pro — novembre 2026", Decimal(1), Decimal("24.9917")),
    Line("Dépassement CPU (heures)", Decimal("3.3333"), Decimal("0.0450")),
    Line("Stockage supplémentaire (Go·mois)", Decimal("12.5"), Decimal("0.0200")),
    Line("Bots en dry-run supplémentaires", Decimal(2), Decimal("4.1667")),
]
_CII = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
}
_XMP = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "pdf": "http://ns.adobe.com/pdf/1.3/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "pdfaid": "http://www.aiim.org/pdfa/ns/id/",
}


@pytest.fixture
def tenant(http: TestClient) -> str:
    return sign_up(http, "Factur-X").tenant_id


@pytest.fixture
def documents(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Document]]:
    """Every Document the service renders, by number: what a consumer's XML is built from."""
    rendered: dict[str, Document] = {}
    render = service.pdf.render

    def spy(document: Document, font_dir: str) -> bytes:
        rendered[document.number] = document
        return render(document, font_dir)

    monkeypatch.setattr(service.pdf, "render", spy)
    yield rendered


def _invoice(tenant_id: str, client: ClientIdentity, lines: list[Line], **paid: object) -> Invoice:
    with session_scope() as session:
        return issue_invoice(
            session,
            tenant_id=tenant_id,
            lines=lines,
            period=PERIOD,
            client=client,
            **paid,  # type: ignore[arg-type]
        )


def _credit(invoice: Invoice, lines: list[Line] | None = None) -> Invoice:
    with session_scope() as session:
        return issue_credit_note(
            session, invoice_id=invoice.id, reason="résiliation en cours de mois", lines=lines
        )


def _paid() -> dict[str, object]:
    return {"payment_ref": f"PAY-{uuid.uuid4().hex[:12]}", "paid_on": date(2026, 11, 3)}


def _pdf(invoice: Invoice) -> bytes:
    with session_scope() as session:
        return session.execute(select(Invoice.pdf).where(Invoice.id == invoice.id)).scalar_one()


def _embedded_xml(invoice: Invoice) -> bytes:
    assert invoice.facturx, f"{invoice.number} should carry Factur-X"
    _name, xml = facturx.get_xml_from_pdf(_pdf(invoice), check_xsd=False)
    assert xml, f"{invoice.number} embeds no Factur-X XML"
    return bytes(xml)


def _assert_accepted(xml: bytes) -> None:
    found = problems(xml)
    assert not found, "\n".join(found)


def _notes(xml: bytes) -> dict[str, str]:
    root = etree.fromstring(xml)
    return {
        note.findtext("ram:SubjectCode", namespaces=_CII): note.findtext(
            "ram:Content", namespaces=_CII
        )
        for note in root.iterfind("rsm:ExchangedDocument/ram:IncludedNote", _CII)
        if note.find("ram:SubjectCode", _CII) is not None
    }


Issue = Callable[[str], Invoice]
BUSINESS_CASES: dict[str, Issue] = {
    "french business": lambda t: _invoice(t, FRENCH_BUSINESS, SUBSCRIPTION),
    "french business, paid": lambda t: _invoice(t, FRENCH_BUSINESS, SUBSCRIPTION, **_paid()),
    "EU business, reverse charge": lambda t: _invoice(t, EU_BUSINESS, SUBSCRIPTION),
    "non-EU business": lambda t: _invoice(t, NON_EU_BUSINESS, SUBSCRIPTION, **_paid()),
    "usage, several lines": lambda t: _invoice(t, FRENCH_BUSINESS, USAGE),
    "full credit note": lambda t: _credit(_invoice(t, FRENCH_BUSINESS, USAGE, **_paid())),
    "partial credit note": lambda t: _credit(_invoice(t, EU_BUSINESS, USAGE), USAGE[1:3]),
}


@pytest.mark.parametrize("case", list(BUSINESS_CASES))
def test_business_documents_pass_xsd_en16931_and_french_rules(tenant: str, case: str) -> None:
    _assert_accepted(_embedded_xml(BUSINESS_CASES[case](tenant)))


@pytest.mark.parametrize(
    ("client", "lines"),
    [(FRENCH_PRIVATE, SUBSCRIPTION), (NON_EU_PRIVATE, USAGE)],
    ids=["french consumer", "non-EU consumer"],
)
def test_consumer_documents_stay_plain_pdfs_but_their_xml_passes_the_rules(
    tenant: str, documents: dict[str, Document], client: ClientIdentity, lines: list[Line]
) -> None:
    invoice = _invoice(tenant, client, lines, **_paid())
    note = _credit(invoice)
    for issued in (invoice, note):
        # B2C sales are e-reported, not exchanged: the PDF carries no XML.
        assert not issued.facturx
        _assert_accepted(fx.build_xml(documents[issued.number]))


def test_the_coded_notes_carry_the_invoice_s_own_mentions(tenant: str) -> None:
    notes = _notes(_embedded_xml(_invoice(tenant, FRENCH_BUSINESS, SUBSCRIPTION)))
    assert get_settings().invoice_late_penalty in notes["PMD"]
    assert "40 €" in notes["PMT"]
    assert notes["AAB"] == "Pas d’escompte pour paiement anticipé"
    assert notes["BAR"] == "B2B"
    abroad = _notes(_embedded_xml(_invoice(tenant, NON_EU_BUSINESS, SUBSCRIPTION)))
    assert abroad["BAR"] == "B2BINT"


def test_the_factur_x_pdf_is_pdf_a_3b_with_srgb_and_agreeing_metadata(tenant: str) -> None:
    invoice = _invoice(tenant, FRENCH_BUSINESS, USAGE)
    reader = PdfReader(BytesIO(_pdf(invoice)))
    root = reader.trailer["/Root"]

    intents = root["/OutputIntents"]
    assert len(intents) == 1
    intent = intents[0].get_object()
    assert intent["/S"] == "/GTS_PDFA1"
    assert intent["/OutputConditionIdentifier"] == "sRGB IEC61966-2.1"
    profile = intent["/DestOutputProfile"].get_object()
    icc = profile.get_data()
    assert profile["/N"] == 3
    assert (icc[12:16], icc[16:20], icc[36:40]) == (b"mntr", b"RGB ", b"acsp")
    assert b"sRGB" in icc

    xmp = etree.fromstring(root["/Metadata"].get_object().get_data())

    def xmp_text(path: str) -> str:
        values = xmp.xpath(f"//{path}//text()[normalize-space()]", namespaces=_XMP)
        assert len(values) == 1, f"{path}: {values}"
        return str(values[0]).strip()

    assert xmp_text("pdfaid:part") == "3"
    assert xmp_text("pdfaid:conformance") == "B"
    info = reader.metadata
    assert info is not None
    pairs = {
        "/Title": "dc:title",
        "/Author": "dc:creator",
        "/Subject": "dc:description",
        "/Keywords": "pdf:Keywords",
        "/Producer": "pdf:Producer",
        "/Creator": "xmp:CreatorTool",
    }
    for key, path in pairs.items():
        assert info[key] == xmp_text(path), key
    assert info["/Title"] == f"Facture {invoice.number}"
    # The same instants, the issue's, written the PDF way and the XMP way.
    issued = invoice.issued_at.replace(microsecond=0)
    assert info.creation_date == info.modification_date == issued
    for path in ("xmp:CreateDate", "xmp:ModifyDate"):
        assert xmp_text(path) == issued.strftime("%Y-%m-%dT%H:%M:%S+00:00")


# -- hand-off to the Plateforme Agréée --------------------------------------------------------

NOW = datetime(2026, 12, 1, 6, tzinfo=UTC)


def _drain(tmp_path: Path) -> None:
    """Hands off whatever earlier tests issued, so that only this test's documents remain."""
    outbox = DirectoryHandoff(tmp_path / "earlier")
    while True:
        with session_scope() as session:
            if hand_off_pending(session, NOW, outbox) == 0:
                return


def _handed_off(invoice: Invoice) -> InvoiceHandoff | None:
    with session_scope() as session:
        return session.get(InvoiceHandoff, invoice.id)


def test_the_outbox_gets_each_business_document_once(tenant: str, tmp_path: Path) -> None:
    tenant_id = tenant
    _drain(tmp_path)
    invoice = _invoice(tenant_id, FRENCH_BUSINESS, USAGE)
    note = _credit(invoice, USAGE[:1])
    consumer = _invoice(tenant_id, FRENCH_PRIVATE, SUBSCRIPTION)
    outbox = DirectoryHandoff(tmp_path / "outbox")
    with session_scope() as session:
        assert hand_off_pending(session, NOW, outbox) == 2
    for document in (invoice, note):
        pdf = (outbox.outbox / f"{document.number}.pdf").read_bytes()
        assert pdf == _pdf(document)
        assert (outbox.outbox / f"{document.number}.xml").read_bytes() == _embedded_xml(document)
        recorded = _handed_off(document)
        assert recorded is not None and recorded.mode == "directory"
    # B2C sales are e-reported by the PA from the seller's data, not handed off as invoices.
    assert not (outbox.outbox / f"{consumer.number}.pdf").exists()
    assert _handed_off(consumer) is None
    with session_scope() as session:
        assert hand_off_pending(session, NOW, outbox) == 0
        again = outbox.deliver(session.get_one(Invoice, invoice.id))
    assert again.reference == str(outbox.outbox / f"{invoice.number}.pdf")
    assert sorted(path.name for path in outbox.outbox.iterdir()) == sorted(
        f"{d.number}.{ext}" for d in (invoice, note) for ext in ("pdf", "xml")
    )


def test_the_platform_api_is_retried_after_an_outage_and_the_alert_settled(
    tenant: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant_id = tenant
    _drain(tmp_path)
    invoice = _invoice(tenant_id, EU_BUSINESS, SUBSCRIPTION, **_paid())
    token = "pa-token-for-tests"  # pragma: allowlist secret
    with PlatformStandin(token) as platform:
        monkeypatch.setenv("FTA_EINVOICE_HANDOFF", "api")
        monkeypatch.setenv("FTA_EINVOICE_PA_URL", platform.url)
        monkeypatch.setenv("FTA_EINVOICE_PA_TOKEN", token)
        get_settings.cache_clear()
        try:
            platform.state.fail_next = True
            with session_scope() as session:
                assert hand_off_pending(session, NOW) == 0
            key = f"einvoice-handoff:{invoice.number}"
            with session_scope() as session:
                alert = next(a for a in open_alerts(session, tenant_id) if a.key == key)
                assert "HTTP 503" in alert.message
            assert _handed_off(invoice) is None

            with session_scope() as session:
                assert hand_off_pending(session, NOW) == 1
            with session_scope() as session:
                assert key not in {a.key for a in open_alerts(session, tenant_id)}
        finally:
            monkeypatch.undo()
            get_settings.cache_clear()
        received = platform.state.documents[invoice.number]
        assert received.pdf == _pdf(invoice)
        assert received.xml == _embedded_xml(invoice)
        recorded = _handed_off(invoice)
        assert recorded is not None and (recorded.mode, recorded.receipt) == ("api", received.id)
        assert platform.state.uploads == 2
