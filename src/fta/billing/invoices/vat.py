"""Which VAT applies to a client, and the legal mention that goes with it.

Services supplied electronically by a seller established in France:
- client in France (or Monaco), private or business: French VAT, 20 %;
- business elsewhere in the EU with a valid VAT number: no French VAT, the client self-assesses
  it (reverse charge);
- private client (or business without a VAT number) elsewhere in the EU: French VAT while the
  seller's cross-border EU sales to private clients stay under the 10 000 EUR yearly threshold;
  beyond it the client country's rate applies through the OSS return (not supported: see
  docs/billing.md);
- client outside the EU: the place of supply is the client's country, no French VAT.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from fta.billing.invoices.identity import EU_COUNTRIES, FRENCH_VAT_TERRITORY, ClientIdentity
from fta.billing.invoices.models import VatRegime

FRENCH_RATE = Decimal("20.00")
ZERO_RATE = Decimal("0.00")
REVERSE_CHARGE_MENTION = (
    "Autoliquidation : TVA due par le preneur — article 283-2 du CGI et article 196 de la "
    "directive 2006/112/CE ; lieu de la prestation : article 259-1° du CGI"
)
OUTSIDE_EU_MENTION = (
    "TVA non applicable — article 259-1° du CGI (preneur assujetti établi hors de l’UE)"
)
OUTSIDE_EU_PRIVATE_MENTION = (
    "TVA non applicable — article 259 B du CGI (preneur non assujetti établi hors de l’UE)"
)


@dataclass(frozen=True)
class VatTreatment:
    regime: VatRegime
    rate: Decimal
    mention: str | None


def treatment(client: ClientIdentity) -> VatTreatment:
    """The VAT treatment of a checked client identity."""
    if client.country in FRENCH_VAT_TERRITORY:
        return VatTreatment(VatRegime.FRANCE, FRENCH_RATE, None)
    if client.country in EU_COUNTRIES:
        if client.is_business and client.vat_number:
            return VatTreatment(VatRegime.REVERSE_CHARGE, ZERO_RATE, REVERSE_CHARGE_MENTION)
        return VatTreatment(VatRegime.FRANCE, FRENCH_RATE, None)
    mention = OUTSIDE_EU_MENTION if client.is_business else OUTSIDE_EU_PRIVATE_MENTION
    return VatTreatment(VatRegime.OUTSIDE_EU, ZERO_RATE, mention)
