"""The printable invoice: an A4 PDF with an embedded TrueType font (accents, €)."""

from __future__ import annotations

from pathlib import Path

from fpdf import FPDF
from fpdf.enums import Align, OutputIntentSubType, XPos, YPos
from fpdf.output import PDFICCProfile

from fta.billing.invoices.document import Document, french_date
from fta.billing.invoices.identity import Party
from fta.billing.invoices.money import decimal_fr, euros

FONT = "DejaVu"
_FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}
_COLUMNS = (80, 22, 32, 18, 30)  # mm; 182 = A4 width less the margins
_LINE = 5.0
# PDF/A needs an OutputIntent naming the colour space the page colours mean: sRGB.
SRGB_PROFILE = Path(__file__).with_name("sRGB.icc")
SRGB = "sRGB IEC61966-2.1"


def _load_fonts(pdf: FPDF, font_dir: str) -> None:
    for style, name in _FONT_FILES.items():
        path = Path(font_dir) / name
        if not path.is_file():
            raise RuntimeError(
                f"invoice font {path} is missing: install fonts-dejavu-core or point "
                "FTA_INVOICE_FONT_DIR at a folder holding DejaVuSans.ttf and DejaVuSans-Bold.ttf"
            )
        pdf.add_font(FONT, style, str(path))


def _party_lines(party: Party, *, with_ids: bool) -> list[str]:
    lines = [party.name, *party.address_lines, f"{party.postcode} {party.city}", party.country]
    if with_ids and party.siren:
        lines.append(f"SIREN : {party.siren}")
    if with_ids and party.vat_number:
        lines.append(f"N° TVA intracommunautaire : {party.vat_number}")
    return lines


def _block(pdf: FPDF, x: float, y: float, heading: str, lines: list[str]) -> float:
    pdf.set_xy(x, y)
    pdf.set_font(FONT, "B", 10)
    pdf.cell(88, _LINE, heading, new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_font(FONT, "", 9)
    for line in lines:
        pdf.multi_cell(88, _LINE, line, align=Align.L, new_x=XPos.LEFT, new_y=YPos.NEXT)
    return pdf.get_y()


def render(document: Document, font_dir: str) -> bytes:
    pdf = FPDF(format="A4", unit="mm")
    pdf.set_margins(14, 14, 14)
    pdf.set_auto_page_break(auto=True, margin=16)
    _load_fonts(pdf, font_dir)
    pdf.set_title(f"{document.title} {document.number}")
    pdf.set_author(document.seller.name)
    pdf.set_lang("fr-FR")
    pdf.set_creation_date(document.issued_at)
    pdf.add_output_intent(
        OutputIntentSubType.PDFA,
        output_condition_identifier=SRGB,
        output_condition=SRGB,
        registry_name="http://www.color.org",
        dest_output_profile=PDFICCProfile(
            contents=SRGB_PROFILE.read_bytes(), n=3, alternate="DeviceRGB"
        ),
        info=SRGB,
    )
    pdf.add_page()

    pdf.set_font(FONT, "B", 16)
    pdf.cell(0, 9, f"{document.title} n° {document.number}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(FONT, "", 10)
    issued = french_date(document.issued_on)
    pdf.cell(0, _LINE, f"Date d’émission : {issued}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    period = (
        f"Période de service : du {french_date(document.period_start)} "
        f"au {french_date(document.period_end)}"
    )
    pdf.cell(0, _LINE, period, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if document.credits is not None:
        credited = (
            f"Facture d’origine : n° {document.credits.number} du "
            f"{french_date(document.credits.issued_on)}"
        )
        pdf.cell(0, _LINE, credited, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(4)

    top = pdf.get_y()
    seller = _party_lines(document.seller, with_ids=True)
    if document.seller.legal_form:
        seller.insert(1, document.seller.legal_line)
    if document.seller.email:
        seller.append(document.seller.email)
    bottom_left = _block(pdf, 14, top, "Vendeur", seller)
    client = _party_lines(document.client, with_ids=document.client.is_business)
    bottom_right = _block(pdf, 108, top, "Client", client)
    pdf.set_xy(14, max(bottom_left, bottom_right) + 6)

    pdf.set_font(FONT, "", 9)
    with pdf.table(
        col_widths=_COLUMNS,
        text_align=("LEFT", "RIGHT", "RIGHT", "RIGHT", "RIGHT"),
        line_height=_LINE + 1,
        width=sum(_COLUMNS),
        first_row_as_headings=True,
    ) as table:
        table.row(("Désignation", "Quantité", "Prix unitaire HT", "TVA", "Montant HT"))
        rate = f"{decimal_fr(document.vat_rate)} %"
        for line, cents in zip(document.lines, document.totals.line_ht_cents, strict=True):
            table.row(
                (
                    line.description,
                    decimal_fr(line.quantity),
                    f"{decimal_fr(line.unit_price_ht)} €",
                    rate,
                    euros(cents),
                )
            )
    pdf.ln(4)

    totals = (
        ("Total HT", document.totals.ht_cents),
        (f"TVA ({decimal_fr(document.vat_rate)} %)", document.totals.vat_cents),
        ("Total TTC", document.totals.ttc_cents),
    )
    for label, cents in totals:
        pdf.set_font(FONT, "B" if label == "Total TTC" else "", 10)
        pdf.set_x(14 + sum(_COLUMNS) - 70)
        pdf.cell(40, _LINE + 1, label, align=Align.L)
        pdf.cell(30, _LINE + 1, euros(cents), align=Align.R, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(6)

    pdf.set_font(FONT, "", 8)
    for mention in document.mentions:
        pdf.multi_cell(0, 4.2, mention, align=Align.L, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())
