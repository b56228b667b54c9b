"""The content of an invoice or credit note, as rendered to PDF and Factur-X, with the
mentions French law requires."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from fta.billing.invoices.identity import ClientIdentity, SellerIdentity
from fta.billing.invoices.models import Kind, VatRegime
from fta.billing.invoices.money import Line, Totals
from fta.billing.invoices.paris import paris_day


@dataclass(frozen=True)
class CreditedInvoice:
    number: str
    issued_on: date


@dataclass(frozen=True)
class Document:
    kind: Kind
    number: str
    issued_at: datetime
    due_on: date
    period_start: date
    period_end: date
    seller: SellerIdentity
    client: ClientIdentity
    lines: tuple[Line, ...]
    totals: Totals
    vat_rate: Decimal
    vat_regime: VatRegime
    mentions: tuple[str, ...]
    vat_mention: str | None = None
    payment_terms: str | None = None
    payment_ref: str | None = None
    credits: CreditedInvoice | None = None
    reason: str | None = None

    @property
    def issued_on(self) -> date:
        """The issue date as printed: the day in France."""
        return paris_day(self.issued_at)

    @property
    def title(self) -> str:
        return "Facture" if self.kind is Kind.INVOICE else "Avoir"


def french_date(day: date) -> str:
    return day.strftime("%d/%m/%Y")


# The nature of what is sold, which invoices state from the e-invoicing reform on.
OPERATION_CATEGORY = "Catégorie de l’opération : prestations de services"


def payment_terms(
    *, paid_on: date | None, due_on: date, payment_days: int, payment_ref: str | None
) -> str:
    if payment_ref and paid_on:
        return (
            f"Date d’échéance : {french_date(due_on)} — facture acquittée le "
            f"{french_date(paid_on)} par PayPal (transaction {payment_ref})"
        )
    return (
        f"Date d’échéance : {french_date(due_on)} — conditions de paiement : "
        f"à {payment_days} jours par PayPal"
    )


def mentions(
    *,
    kind: Kind,
    client: ClientIdentity,
    due_on: date,
    terms: str | None,
    vat_mention: str | None,
    late_penalty: str,
    credits: CreditedInvoice | None,
    reason: str | None,
) -> tuple[str, ...]:
    """The legal mentions printed under the totals, in order."""
    lines: list[str] = [OPERATION_CATEGORY]
    if credits is not None:
        lines.append(
            f"Avoir sur la facture n° {credits.number} du {french_date(credits.issued_on)}"
            + (f" — motif : {reason}" if reason else "")
        )
    if vat_mention:
        lines.append(vat_mention)
    if kind is Kind.INVOICE:
        if terms:
            lines.append(terms)
        lines.append("Pas d’escompte pour paiement anticipé")
        if client.is_business:
            lines.append(
                f"Pénalités de retard : {late_penalty}, exigibles dès le lendemain de "
                "la date d’échéance"
            )
            lines.append(
                "Indemnité forfaitaire pour frais de recouvrement de 40 € "
                "(articles L441-10 et D441-5 du code de commerce)"
            )
    else:
        lines.append(f"Montant remboursé ou imputé le {french_date(due_on)}")
    return tuple(lines)
