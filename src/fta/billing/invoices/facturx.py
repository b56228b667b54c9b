"""Factur-X (profile EN 16931): the invoice as UN/CEFACT CII XML, embedded in its PDF.

Element order follows the CII schema, which is a sequence: reordering breaks validation.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date
from decimal import Decimal

import facturx

from fta.billing.invoices.document import Document
from fta.billing.invoices.identity import Party
from fta.billing.invoices.models import Kind, VatRegime

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


def _amount(cents: int) -> str:
    return str(Decimal(cents).scaleb(-2))


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _party(parent: ET.Element, name: str, party: Party) -> None:
    element = _sub(parent, name)
    _sub(element, "ram:Name", party.name)
    if party.siren:
        legal = _sub(element, "ram:SpecifiedLegalOrganization")
        _sub(legal, "ram:ID", party.siren, schemeID="0002")
    address = _sub(element, "ram:PostalTradeAddress")
    _sub(address, "ram:PostcodeCode", party.postcode)
    for tag, line in zip(("LineOne", "LineTwo", "LineThree"), party.address_lines, strict=False):
        _sub(address, f"ram:{tag}", line)
    _sub(address, "ram:CityName", party.city)
    _sub(address, "ram:CountryID", party.country)
    if party.vat_number:
        registration = _sub(element, "ram:SpecifiedTaxRegistration")
        _sub(registration, "ram:ID", party.vat_number, schemeID="VA")


def _tax(parent: ET.Element, document: Document, *, header: bool) -> None:
    tax = _sub(parent, "ram:ApplicableTradeTax")
    if header:
        _sub(tax, "ram:CalculatedAmount", _amount(document.totals.vat_cents))
    _sub(tax, "ram:TypeCode", "VAT")
    exemption = _EXEMPTION_CODE.get(document.vat_regime)
    if header and exemption:
        _sub(tax, "ram:ExemptionReason", document.vat_mention or "")
    if header:
        _sub(tax, "ram:BasisAmount", _amount(document.totals.ht_cents))
    _sub(tax, "ram:CategoryCode", _CATEGORY[document.vat_regime])
    if header and exemption:
        _sub(tax, "ram:ExemptionReasonCode", exemption)
    if document.vat_regime is not VatRegime.OUTSIDE_EU:
        _sub(tax, "ram:RateApplicablePercent", _plain(document.vat_rate))


def build_xml(document: Document) -> bytes:
    root = ET.Element(_tag("rsm:CrossIndustryInvoice"))
    context = _sub(root, "rsm:ExchangedDocumentContext")
    guideline = _sub(context, "ram:GuidelineSpecifiedDocumentContextParameter")
    _sub(guideline, "ram:ID", "urn:cen.eu:en16931:2017")

    header = _sub(root, "rsm:ExchangedDocument")
    _sub(header, "ram:ID", document.number)
    _sub(header, "ram:TypeCode", _TYPE_CODE[document.kind])
    _date(header, "ram:IssueDateTime", document.issued_at.date())
    for mention in document.mentions:
        note = _sub(header, "ram:IncludedNote")
        _sub(note, "ram:Content", mention)

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
        _sub(summation, "ram:LineTotalAmount", _amount(cents))

    agreement = _sub(transaction, "ram:ApplicableHeaderTradeAgreement")
    _party(agreement, "ram:SellerTradeParty", document.seller)
    _party(agreement, "ram:BuyerTradeParty", document.client)
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
    paid = document.payment_ref is not None and document.kind is Kind.INVOICE
    totals = _sub(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    _sub(totals, "ram:LineTotalAmount", _amount(document.totals.ht_cents))
    _sub(totals, "ram:TaxBasisTotalAmount", _amount(document.totals.ht_cents))
    _sub(totals, "ram:TaxTotalAmount", _amount(document.totals.vat_cents), currencyID="EUR")
    _sub(totals, "ram:GrandTotalAmount", _amount(document.totals.ttc_cents))
    _sub(totals, "ram:TotalPrepaidAmount", _amount(document.totals.ttc_cents if paid else 0))
    _sub(totals, "ram:DuePayableAmount", _amount(0 if paid else document.totals.ttc_cents))
    if document.credits is not None:
        referenced = _sub(settlement, "ram:InvoiceReferencedDocument")
        _sub(referenced, "ram:IssuerAssignedID", document.credits.number)
        _date(referenced, "ram:FormattedIssueDateTime", document.credits.issued_on, kind="qdt")
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


def embed(pdf: bytes, document: Document) -> bytes:
    """The PDF with its Factur-X XML attached; factur-x checks the XML against the schema."""
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
    return bytes(result)
