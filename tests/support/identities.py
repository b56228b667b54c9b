"""Fictional parties for the test suite: the seller (invoices need a real-looking legal
identity in every mode) and sample clients. Their numbers have valid check digits without
being any company's."""

from __future__ import annotations

from stdnum import luhn

from fta.billing.invoices.identity import ClientIdentity, CustomerType


def fictional_siren(stem: str) -> str:
    """A SIREN with a valid check digit built from an 8-digit stem."""
    return stem + luhn.calc_check_digit(stem)


def french_vat(siren: str) -> str:
    return f"FR{(12 + 3 * (int(siren) % 97)) % 97:02d}{siren}"


SELLER_SIREN = fictional_siren("90000003")
SELLER_ENV = {
    "FTA_SELLER_NAME": "Bots Hébergés SAS",
    "FTA_SELLER_ADDRESS": "1 place de la Bourse",
    "FTA_SELLER_POSTCODE": "75002",
    "FTA_SELLER_CITY": "Paris",
    "FTA_SELLER_SIREN": SELLER_SIREN,
    "FTA_SELLER_VAT_NUMBER": french_vat(SELLER_SIREN),
    "FTA_SELLER_LEGAL_FORM": "SAS",
    "FTA_SELLER_SHARE_CAPITAL": "1 000 €",
    "FTA_SELLER_REGISTRY": "RCS Paris",
    "FTA_SELLER_EMAIL": "factures@example.com",
}

CLIENT_SIREN = fictional_siren("90000004")
FRENCH_PRIVATE = ClientIdentity(
    name="Élodie Fournier",
    address_lines=("12 rue de l’Église",),
    postcode="13001",
    city="Marseille",
    country="FR",
)
FRENCH_BUSINESS = ClientIdentity(
    name="Quantique Façades SARL",
    address_lines=("8 avenue Foch", "Bâtiment B"),
    postcode="69006",
    city="Lyon",
    country="FR",
    siren=CLIENT_SIREN,
    vat_number=french_vat(CLIENT_SIREN),
    customer_type=CustomerType.BUSINESS,
)
