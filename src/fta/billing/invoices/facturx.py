"""Factur-X (profile EN 16931): the invoice as UN/CEFACT CII XML, embedded in its PDF.

Element order follows the CII schema, which is a sequence: reordering breaks validation.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime
from decimal import Decimal
from io import BytesIO

import facturx
from pypdf import PdfReader, PdfWriter
from pypdf.generic import DecodedStreamObject, NameObject

from fta.billing.invoices.document import Document
from fta.billing.invoices.identity import Party
from fta.billing.invoices.models import Kind, VatRegime
from fta.billing.invoices.money import plain_euros

LEVEL = "en16931"
_NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}
for _prefix, _uri in _NS.items():
    ET.register_namespace(_prefix, _uri)

_TYPE_CODE = {Kind.INVOICE: "380", Kind.CREDIT_NOTE: "381"}
# VAT category (UNTDID 5305): standard rate, reverse charge, outside the scope of VAT.
_CATEGORY = {VatRegime.FRANCE: "S", VatRegime.REVERSE_CHARGE: "AE", VatRegime.OUTSIDE_EU: "O"}
_EXEMPTION_CODE = {VatRegime.REVERSE_CHARGE: "VATEX-EU-AE", VatRegime.OUTSIDE_EU: "VATEX-EU-O"}
# French billing framework (BT-23, "cadre de facturation"): services (S), an invoice to be
# paid (1) or one already paid (2).
SERVICES_TO_PAY = "S1"
SERVICES_PAID = "S2"
# Electronic address schemes (BT-34-1, BT-49-1): the French e-invoicing directory (addresses
# starting with the SIREN), and e-mail.
DIRECTORY_SCHEME = "0225"
EMAIL_SCHEME = "EM"
# Note subject codes (UNTDID 4451) French invoices must carry once each (BR-FR-05, BR-FR-06).
RECOVERY_FEE, LATE_PENALTIES, DISCOUNT = "PMT", "PMD", "AAB"
TREATMENT = "BAR"  # how the French platforms handle the invoice (BR-FR-20)
_MANDATORY_NOTES = {
    RECOVERY_FEE: "Indemnité forfaitaire",
    LATE_PENALTIES: "Pénalités de retard",
    DISCOUNT: "Pas d’escompte",
}
# The same mentions where the law does not require them: private clients, credit notes.
_NOT_APPLICABLE = {
    RECOVERY_FEE: "Indemnité forfaitaire pour frais de recouvrement : sans objet",
    LATE_PENALTIES: "Pénalités de retard : sans objet",
    DISCOUNT: "Pas d’escompte pour paiement anticipé",
}
CREATOR = "fta"
PRODUCER = "fta (fpdf2, factur-x, pypdf)"


def _tag(name: str) -> str:
    prefix, local = name.split(":")
    return f"{{{_NS[prefix]}}}{local}"


def _sub(parent: ET.Element, name: str, text: str | None = None, **attrib: str) -> ET.Element:
    element = ET.SubElement(parent, _tag(name), attrib)
    if text is not None:
        element.text = text
    return element


def _date(parent: ET.Element, name: str, day: date, kind: str = "udt") -> None:
    holder = _sub(parent, name)
    _sub(holder, f"{kind}:DateTimeString", day.strftime("%Y%m%d"), format="102")


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


def in_french_directory(party: Party) -> bool:
    """A French company: reached through the e-invoicing directory by its SIREN."""
    return party.siren is not None


def treatment(document: Document) -> str:
    """How the French platforms treat the invoice: exchanged (B2B) or e-reported."""
    if document.client.is_business:
        return "B2B" if in_french_directory(document.client) else "B2BINT"
    return "B2C" if document.client.country == "FR" else "B2CINT"


def _endpoint(party: Party, fallback_email: str) -> tuple[str, str]:
    """The party's electronic address (BT-34, BT-49) and its scheme.

    Parties outside the French directory (private clients, buyers abroad) receive their
    invoice by e-mail: theirs when known, else the seller's billing mailbox that sends it.
    """
    if in_french_directory(party):
        return str(party.siren), DIRECTORY_SCHEME
    email = getattr(party, "email", None) or fallback_email
    return email, EMAIL_SCHEME


def _party(
    parent: ET.Element, name: str, party: Party, *, endpoint: tuple[str, str], vat_id: bool
) -> None:
    element = _sub(parent, name)
    _sub(element, "ram:Name", party.name)
    if party.siren:
        legal = _sub(element, "ram:SpecifiedLegalOrganization")
        _sub(legal, "ram:ID", party.siren, schemeID="0002")
    elif party.vat_number and not vat_id:
        # A tax number that is not an EU VAT identifier: the buyer's own registration.
        _sub(_sub(element, "ram:SpecifiedLegalOrganization"), "ram:ID", party.vat_number)
    address = _sub(element, "ram:PostalTradeAddress")
    _sub(address, "ram:PostcodeCode", party.postcode)
    for tag, line in zip(("LineOne", "LineTwo", "LineThree"), party.address_lines, strict=False):
        _sub(address, f"ram:{tag}", line)
    _sub(address, "ram:CityName", party.city)
    _sub(address, "ram:CountryID", party.country)
    address_id, scheme = endpoint
    _sub(_sub(element, "ram:URIUniversalCommunication"), "ram:URIID", address_id, schemeID=scheme)
    if party.vat_number and vat_id:
        registration = _sub(element, "ram:SpecifiedTaxRegistration")
        _sub(registration, "ram:ID", party.vat_number, schemeID="VA")


def notes(document: Document) -> list[tuple[str, str | None]]:
    """The document's mentions as (content, subject code), plus the coded mentions French
    rules require on every document, stated as not applicable where the law does not ask."""
    coded: list[tuple[str, str | None]] = []
    found: set[str] = set()
    for mention in document.mentions:
        code = next(
            (c for c, prefix in _MANDATORY_NOTES.items() if mention.startswith(prefix)), None
        )
        if code is not None and code in found:
            code = None
        if code is not None:
            found.add(code)
        coded.append((mention, code))
    coded += [(text, code) for code, text in _NOT_APPLICABLE.items() if code not in found]
    coded.append((treatment(document), TREATMENT))
    return coded


def _tax(parent: ET.Element, document: Document, *, header: bool) -> None:
    tax = _sub(parent, "ram:ApplicableTradeTax")
    if header:
        _sub(tax, "ram:CalculatedAmount", plain_euros(document.totals.vat_cents))
    _sub(tax, "ram:TypeCode", "VAT")
    exemption = _EXEMPTION_CODE.get(document.vat_regime)
    if header and exemption:
        _sub(tax, "ram:ExemptionReason", document.vat_mention or "")
    if header:
        _sub(tax, "ram:BasisAmount", plain_euros(document.totals.ht_cents))
    _sub(tax, "ram:CategoryCode", _CATEGORY[document.vat_regime])
    if header and exemption:
        _sub(tax, "ram:ExemptionReasonCode", exemption)
    if document.vat_regime is not VatRegime.OUTSIDE_EU:
        _sub(tax, "ram:RateApplicablePercent", _plain(document.vat_rate))


def build_xml(document: Document) -> bytes:
    root = ET.Element(_tag("rsm:CrossIndustryInvoice"))
    paid = document.payment_ref is not None and document.kind is Kind.INVOICE
    context = _sub(root, "rsm:ExchangedDocumentContext")
    process = _sub(context, "ram:BusinessProcessSpecifiedDocumentContextParameter")
    _sub(process, "ram:ID", SERVICES_PAID if paid else SERVICES_TO_PAY)
    guideline = _sub(context, "ram:GuidelineSpecifiedDocumentContextParameter")
    _sub(guideline, "ram:ID", "urn:cen.eu:en16931:2017")

    header = _sub(root, "rsm:ExchangedDocument")
    _sub(header, "ram:ID", document.number)
    _sub(header, "ram:TypeCode", _TYPE_CODE[document.kind])
    _date(header, "ram:IssueDateTime", document.issued_on)
    for content, code in notes(document):
        note = _sub(header, "ram:IncludedNote")
        _sub(note, "ram:Content", content)
        if code is not None:
            _sub(note, "ram:SubjectCode", code)

    transaction = _sub(root, "rsm:SupplyChainTradeTransaction")
    for position, (line, cents) in enumerate(
        zip(document.lines, document.totals.line_ht_cents, strict=True), start=1
    ):
        item = _sub(transaction, "ram:IncludedSupplyChainTradeLineItem")
        _sub(_sub(item, "ram:AssociatedDocumentLineDocument"), "ram:LineID", str(position))
        _sub(_sub(item, "ram:SpecifiedTradeProduct"), "ram:Name", line.description)
        price = _sub(_sub(item, "ram:SpecifiedLineTradeAgreement"), "ram:NetPriceProductTradePrice")
        _sub(price, "ram:ChargeAmount", _plain(line.unit_price_ht))
        delivery = _sub(item, "ram:SpecifiedLineTradeDelivery")
        _sub(delivery, "ram:BilledQuantity", _plain(line.quantity), unitCode="C62")
        settlement = _sub(item, "ram:SpecifiedLineTradeSettlement")
        _tax(settlement, document, header=False)
        summation = _sub(settlement, "ram:SpecifiedTradeSettlementLineMonetarySummation")
        _sub(summation, "ram:LineTotalAmount", plain_euros(cents))

    agreement = _sub(transaction, "ram:ApplicableHeaderTradeAgreement")
    seller_email = document.seller.email
    # Outside the scope of VAT, neither party's VAT identifier may appear (BR-O-02).
    vat_ids = document.vat_regime is not VatRegime.OUTSIDE_EU
    _party(
        agreement,
        "ram:SellerTradeParty",
        document.seller,
        endpoint=_endpoint(document.seller, seller_email),
        vat_id=vat_ids,
    )
    _party(
        agreement,
        "ram:BuyerTradeParty",
        document.client,
        endpoint=_endpoint(document.client, seller_email),
        vat_id=vat_ids,
    )
    _sub(transaction, "ram:ApplicableHeaderTradeDelivery")

    settlement = _sub(transaction, "ram:ApplicableHeaderTradeSettlement")
    _sub(settlement, "ram:InvoiceCurrencyCode", "EUR")
    _tax(settlement, document, header=True)
    period = _sub(settlement, "ram:BillingSpecifiedPeriod")
    _date(period, "ram:StartDateTime", document.period_start)
    _date(period, "ram:EndDateTime", document.period_end)
    terms = _sub(settlement, "ram:SpecifiedTradePaymentTerms")
    if document.payment_terms:
        _sub(terms, "ram:Description", document.payment_terms)
    _date(terms, "ram:DueDateDateTime", document.due_on)
    totals = _sub(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    _sub(totals, "ram:LineTotalAmount", plain_euros(document.totals.ht_cents))
    _sub(totals, "ram:TaxBasisTotalAmount", plain_euros(document.totals.ht_cents))
    _sub(totals, "ram:TaxTotalAmount", plain_euros(document.totals.vat_cents), currencyID="EUR")
    _sub(totals, "ram:GrandTotalAmount", plain_euros(document.totals.ttc_cents))
    _sub(totals, "ram:TotalPrepaidAmount", plain_euros(document.totals.ttc_cents if paid else 0))
    _sub(totals, "ram:DuePayableAmount", plain_euros(0 if paid else document.totals.ttc_cents))
    if document.credits is not None:
        referenced = _sub(settlement, "ram:InvoiceReferencedDocument")
        _sub(referenced, "ram:IssuerAssignedID", document.credits.number)
        _date(referenced, "ram:FormattedIssueDateTime", document.credits.issued_on, kind="qdt")
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


_XMP = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "pdf": "http://ns.adobe.com/pdf/1.3/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "xml": "http://www.w3.org/XML/1998/namespace",
}


def _x(name: str) -> str:
    prefix, local = name.split(":")
    return f"{{{_XMP[prefix]}}}{local}"


def _xmp_packet(xmp: bytes, info: dict[str, str], moment: datetime) -> bytes:
    """The XMP packet with the document information PDF/A requires it to repeat, equal to the
    Info dictionary's (ISO 19005-3, 6.6.2.3): any earlier copy of those properties is replaced."""
    # The packet is the one factur-x just wrote, not outside input. Its own prefixes are kept:
    # the Factur-X extension schema declares "fx" by name.
    events = ET.iterparse(BytesIO(xmp), events=("start-ns",))  # noqa: S314
    for _event, (prefix, uri) in events:
        ET.register_namespace(prefix, uri)
    root = ET.fromstring(xmp)  # noqa: S314
    rdf = root.find(_x("rdf:RDF"))
    if rdf is None:
        raise RuntimeError("the Factur-X XMP packet has no rdf:RDF")
    replaced = [
        "dc:title", "dc:creator", "dc:description", "pdf:Keywords", "pdf:Producer",
        "xmp:CreatorTool", "xmp:CreateDate", "xmp:ModifyDate", "xmp:MetadataDate",
    ]  # fmt: skip
    for description in rdf.findall(_x("rdf:Description")):
        description.set(_x("rdf:about"), "")
        for name in replaced:
            for element in description.findall(_x(name)):
                description.remove(element)
        if len(description) == 0:
            rdf.remove(description)
    description = ET.SubElement(rdf, _x("rdf:Description"), {_x("rdf:about"): ""})
    for name, key in (("dc:title", "/Title"), ("dc:description", "/Subject")):
        alternatives = ET.SubElement(ET.SubElement(description, _x(name)), _x("rdf:Alt"))
        item = ET.SubElement(alternatives, _x("rdf:li"), {_x("xml:lang"): "x-default"})
        item.text = info[key]
    creators = ET.SubElement(ET.SubElement(description, _x("dc:creator")), _x("rdf:Seq"))
    ET.SubElement(creators, _x("rdf:li")).text = info["/Author"]
    stamp = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    for name, text in (
        ("pdf:Keywords", info["/Keywords"]),
        ("pdf:Producer", info["/Producer"]),
        ("xmp:CreatorTool", info["/Creator"]),
        ("xmp:CreateDate", stamp),
        ("xmp:ModifyDate", stamp),
        ("xmp:MetadataDate", stamp),
    ):
        ET.SubElement(description, _x(name)).text = text
    body = ET.tostring(root, encoding="unicode")
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        + body
        + '\n<?xpacket end="w"?>'
    ).encode("utf-8")


def _aligned_metadata(pdf: bytes, document: Document) -> bytes:
    """The PDF whose Info dictionary and XMP packet say the same, dated at issue."""
    writer = PdfWriter(clone_from=PdfReader(BytesIO(pdf)))
    title = f"{document.title} {document.number}"
    moment = document.issued_at.astimezone(UTC).strftime("D:%Y%m%d%H%M%S+00'00'")
    info = {
        "/Title": title,
        "/Author": document.seller.name,
        "/Subject": f"{title} — {document.client.name}",
        "/Keywords": f"Factur-X, {LEVEL.upper()}, {title}",
        "/Creator": CREATOR,
        "/Producer": PRODUCER,
        "/CreationDate": moment,
        "/ModDate": moment,
    }
    current = writer.xmp_metadata
    if current is None:
        raise RuntimeError("the Factur-X PDF has no XMP metadata")
    stream = DecodedStreamObject()
    stream.set_data(_xmp_packet(bytes(current.stream.get_data()), info, document.issued_at))
    stream.update(
        {NameObject("/Type"): NameObject("/Metadata"), NameObject("/Subtype"): NameObject("/XML")}
    )
    writer.root_object[NameObject("/Metadata")] = writer._add_object(stream)
    writer.add_metadata(info)
    output = BytesIO()
    writer.write(output)
    return output.getvalue()


def embed(pdf: bytes, document: Document) -> bytes:
    """The PDF/A-3 with its Factur-X XML attached; factur-x checks the XML against the schema."""
    xml = build_xml(document)
    metadata = {
        "author": document.seller.name,
        "keywords": "Factur-X",
        "title": f"{document.title} {document.number}",
        "subject": f"{document.title} {document.number} — {document.client.name}",
    }
    result = facturx.generate_from_binary(
        pdf,
        xml,
        flavor="factur-x",
        level=LEVEL,
        check_xsd=True,
        pdf_metadata=metadata,
        lang="fr-FR",
    )
    return _aligned_metadata(bytes(result), document)
