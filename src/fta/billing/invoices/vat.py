"""Which VAT applies to a client, and the legal mention that goes with it.

Services supplied electronically by a seller established in metropolitan France:
- client in France (or Monaco), private or business: French VAT, 20 %;
- business elsewhere in the EU whose VAT number VIES confirmed: no French VAT, the client
  self-assesses it (reverse charge); while VIES has not confirmed it, French VAT;
- private client (or business without a VAT number) elsewhere in the EU: French VAT while the
  seller's cross-border EU sales to private clients stay under the 10 000 EUR yearly threshold
  (fta.billing.vat_controls.check_oss_threshold warns the operator before it); beyond it the
  client country's rate applies through the OSS return (not supported: see docs/billing.md);
- business in Guadeloupe, Martinique or La Réunion: for services these departments are not
  third territories, the place of supply is the client's department (article 259-1° of the
  CGI) and the seller charges the department's rate, 8.5 % (article 296), no reverse charge;
- business in Guyane or Mayotte: no VAT applies there (article 294-1);
- private client in an overseas department: not settled by the tax administration's doctrine
  for electronically supplied services, so no invoice is made automatically (the identity
  raises a billing alert; issuing refuses with the reason);
- client outside the EU (overseas collectivities included): the place of supply is the
  client's country, no French VAT.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from fta.billing.invoices.identity import (
    EU_COUNTRIES,
    FRENCH_VAT_TERRITORY,
    ClientIdentity,
    claims_reverse_charge,
)
from fta.billing.invoices.models import VatRegime
from fta.errors import Invalid

FRENCH_RATE = Decimal("20.00")
# Taux normal in Guadeloupe, Martinique and La Réunion (CGI article 296, 1°, b).
OVERSEAS_RATE = Decimal("8.50")
ZERO_RATE = Decimal("0.00")
VAT_OVERSEAS = frozenset({"GP", "MQ", "RE"})
NO_VAT_OVERSEAS = frozenset({"GF", "YT"})
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
OVERSEAS_MENTION = (
    "TVA au taux applicable en Guadeloupe, en Martinique et à La Réunion — article 296 du "
    "CGI ; lieu de la prestation : article 259-1° du CGI (preneur assujetti établi dans ce "
    "département)"
)
NO_VAT_OVERSEAS_MENTION = (
    "TVA non applicable — article 294-1 du CGI (preneur assujetti établi en Guyane ou à "
    "Mayotte) ; lieu de la prestation : article 259-1° du CGI"
)


@dataclass(frozen=True)
class VatTreatment:
    regime: VatRegime
    rate: Decimal
    mention: str | None


def refusal(client: ClientIdentity) -> str | None:
    """Why no invoice can be made out to this client automatically, if none can."""
    territory = client.territory
    if not client.is_business and territory in VAT_OVERSEAS | NO_VAT_OVERSEAS:
        return (
            f"private client in an overseas department ({territory}): whether French VAT at "
            "20 %, the department's rate or none applies to electronically supplied services "
            "is not settled, so fta makes no invoice automatically; the operator invoices by "
            "hand on an accountant's advice (docs/billing.md, overseas departments)"
        )
    return None


def treatment(client: ClientIdentity) -> VatTreatment:
    """The VAT treatment of a checked client identity; Invalid when it cannot be decided
    automatically (`refusal`)."""
    reason = refusal(client)
    if reason:
        raise Invalid(reason)
    territory = client.territory
    if territory in FRENCH_VAT_TERRITORY:
        return VatTreatment(VatRegime.FRANCE, FRENCH_RATE, None)
    if territory in VAT_OVERSEAS:
        return VatTreatment(VatRegime.FRANCE, OVERSEAS_RATE, OVERSEAS_MENTION)
    if territory in NO_VAT_OVERSEAS:
        return VatTreatment(VatRegime.OUTSIDE_EU, ZERO_RATE, NO_VAT_OVERSEAS_MENTION)
    if territory in EU_COUNTRIES:
        if claims_reverse_charge(client) and not client.vat_number_unconfirmed:
            return VatTreatment(VatRegime.REVERSE_CHARGE, ZERO_RATE, REVERSE_CHARGE_MENTION)
        return VatTreatment(VatRegime.FRANCE, FRENCH_RATE, None)
    mention = OUTSIDE_EU_MENTION if client.is_business else OUTSIDE_EU_PRIVATE_MENTION
    return VatTreatment(VatRegime.OUTSIDE_EU, ZERO_RATE, mention)
