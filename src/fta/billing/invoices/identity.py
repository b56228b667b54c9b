"""Who sells and who buys: checked identities, snapshotted into each invoice."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError
from stdnum.fr import siren as fr_siren
from stdnum.fr import tva as fr_tva

from fta.accounts.models import Tenant
from fta.billing.invoices.paris import paris_day
from fta.errors import Invalid
from fta.settings import PLACEHOLDER_MARKERS, Mode, Settings

# EU member states (ISO 3166-1 alpha-2). Monaco is in the French VAT territory.
EU_COUNTRIES = frozenset(
    {
        "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
        "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
    }
)  # fmt: skip
FRENCH_VAT_TERRITORY = frozenset({"FR", "MC"})
# French overseas departments (ISO 3166-1 codes of their own) and the postcode prefix of
# each. Outside the EU VAT territory, but French for services (docs/billing.md).
OVERSEAS_DEPARTMENTS = {"GP": "971", "MQ": "972", "GF": "973", "RE": "974", "YT": "976"}
# French postcodes outside metropolitan France, most specific first: overseas departments,
# overseas collectivities (outside the French VAT territory) and Monaco.
_OVERSEAS_POSTCODES = (
    ("97133", "BL"),
    ("97150", "MF"),
    *((prefix, code) for code, prefix in OVERSEAS_DEPARTMENTS.items()),
    ("975", "PM"),
    ("977", "BL"),
    ("978", "MF"),
    ("980", "MC"),
    ("984", "TF"),
    ("986", "WF"),
    ("987", "PF"),
    ("988", "NC"),
)
# Where a business needs a SIREN and its VAT number is French.
_SIREN_COUNTRIES = frozenset({"FR", *OVERSEAS_DEPARTMENTS})
# Greek VAT numbers carry EL, not GR.
_VAT_PREFIX_COUNTRY = {"EL": "GR"}


class VatNumberStatus(StrEnum):
    """What VIES said of a tenant's EU VAT number outside France (fta.billing.vies)."""

    VERIFIED = "verified"  # valid: reverse charge
    UNVERIFIED = "unverified"  # no answer yet: French VAT until there is one
    INVALID = "invalid"  # invalid at a re-check: French VAT, and an alert is open


class InvalidIdentity(Invalid):
    """A client identity refused because of one of its items: `item` names it as the billing
    identity's fields do (legal_name, address_line1, postcode, city, country, siren,
    vat_number) and `reason` says what is wrong (length, missing, invalid, wrong_country,
    not_of_siren, territory, unknown_to_vies), so a form can say it beside the field."""

    def __init__(self, detail: str, *, item: str, reason: str) -> None:
        super().__init__(detail)
        self.item = item
        self.reason = reason


class CustomerType(StrEnum):
    PRIVATE = "private"
    BUSINESS = "business"


@dataclass(frozen=True)
class Party:
    """A legal identity as printed on an invoice."""

    name: str
    address_lines: tuple[str, ...]
    postcode: str
    city: str
    country: str  # ISO 3166-1 alpha-2
    siren: str | None = None
    vat_number: str | None = None

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["address_lines"] = list(self.address_lines)
        return data


@dataclass(frozen=True)
class SellerIdentity(Party):
    legal_form: str = ""
    email: str = ""
    share_capital: str = ""  # as printed, e.g. "10 000 €"
    registry: str = ""  # the trade or crafts register and its city, e.g. "RCS Paris"

    @property
    def legal_line(self) -> str:
        """Legal form, share capital and registration, as the code de commerce wants them
        (articles R123-237 and R123-238)."""
        return (
            f"{self.legal_form} au capital de {self.share_capital} — "
            f"{self.registry} {self.siren or ''}".strip()
        )


@dataclass(frozen=True)
class ClientIdentity(Party):
    customer_type: CustomerType = CustomerType.PRIVATE
    email: str | None = field(default=None)
    # An EU VAT number that VIES has not confirmed (yet): French VAT applies. Identities read
    # from a tenant carry it (client_from_tenant); a caller building one vouches for it.
    vat_number_unconfirmed: bool = False
    # The VIES check that confirmed the VAT number: "VIES <date> <consultation number>".
    vat_number_check: str | None = None

    @property
    def is_business(self) -> bool:
        return self.customer_type is CustomerType.BUSINESS

    @property
    def territory(self) -> str:
        return vat_territory(self.country, self.postcode)


def vat_territory(country: str, postcode: str) -> str:
    """The territory whose VAT rules apply: the country, or for FR with an overseas postcode
    the ISO code of that department or collectivity (FR 97100 is Guadeloupe, GP)."""
    country = country.strip().upper()
    if country != "FR":
        return country
    compact = "".join(postcode.split())
    for prefix, code in _OVERSEAS_POSTCODES:
        if compact.startswith(prefix):
            return code
    return "FR"


def claims_reverse_charge(client: ClientIdentity) -> bool:
    """An EU business outside France with a VAT number: billed HT once VIES confirms it."""
    return (
        client.is_business
        and bool(client.vat_number)
        and client.country in EU_COUNTRIES
        and client.country not in FRENCH_VAT_TERRITORY
    )


def _text(name: str, value: str, maximum: int, item: str) -> str:
    value = " ".join(value.split())
    if not value or len(value) > maximum:
        raise InvalidIdentity(
            f"client {name} must hold 1 to {maximum} characters", item=item, reason="length"
        )
    return value


def check_siren(value: str) -> str:
    try:
        return str(fr_siren.validate(value))
    except ValidationError:
        raise InvalidIdentity(
            f"invalid SIREN {value!r}: 9 digits with a valid check digit",
            item="siren",
            reason="invalid",
        ) from None


def check_vat_number(value: str, country: str) -> str:
    """An EU VAT number valid for `country`, returned compact with its country prefix."""
    try:
        number = str(eu_vat.validate(value))
    except ValidationError:
        raise InvalidIdentity(
            f"invalid VAT number {value!r}: expected the country prefix and a number whose "
            "format and check digits are valid (e.g. FR40303265045)",
            item="vat_number",
            reason="invalid",
        ) from None
    prefix = number[:2]
    if _VAT_PREFIX_COUNTRY.get(prefix, prefix) != ("FR" if country == "MC" else country):
        raise InvalidIdentity(
            f"VAT number {value!r} is not a VAT number of the client's country {country}",
            item="vat_number",
            reason="wrong_country",
        )
    return number


def check_client(client: ClientIdentity) -> ClientIdentity:
    """Normalises the client identity; refuses missing or invalid mandatory items."""
    country = client.country.strip().upper()
    if len(country) != 2 or not country.isalpha():
        raise InvalidIdentity(
            "client country must be an ISO 3166-1 alpha-2 code such as FR",
            item="country",
            reason="invalid",
        )
    lines = tuple(
        _text("address line", line, 200, "address_line1" if number == 0 else "address_line2")
        for number, line in enumerate(line for line in client.address_lines if line)
    )
    if not lines:
        raise InvalidIdentity(
            "client address needs at least one line", item="address_line1", reason="missing"
        )
    postcode = _text("postcode", client.postcode, 16, "postcode")
    _check_overseas(country, postcode)
    siren: str | None = None
    vat_number: str | None = None
    if client.is_business:
        if country in _SIREN_COUNTRIES:
            if not client.siren:
                raise InvalidIdentity(
                    "a business client in France needs its SIREN", item="siren", reason="missing"
                )
            siren = check_siren(client.siren)
            if client.vat_number:
                vat_number = check_vat_number(client.vat_number, "FR")
                if fr_tva.to_siren(vat_number) != siren:
                    raise InvalidIdentity(
                        f"VAT number {client.vat_number!r} does not belong to SIREN {siren}",
                        item="vat_number",
                        reason="not_of_siren",
                    )
        elif country in EU_COUNTRIES or country in FRENCH_VAT_TERRITORY:
            if client.vat_number:
                vat_number = check_vat_number(client.vat_number, country)
        elif client.vat_number:
            # Outside the EU the number is printed as given; no checksum is known for it.
            vat_number = _text("tax number", client.vat_number, 40, "vat_number")
    return ClientIdentity(
        name=_text("name", client.name, 200, "legal_name"),
        address_lines=lines,
        postcode=postcode,
        city=_text("city", client.city, 100, "city"),
        country=country,
        siren=siren,
        vat_number=vat_number,
        customer_type=CustomerType(client.customer_type),
        email=client.email,
        vat_number_unconfirmed=client.vat_number_unconfirmed,
        vat_number_check=client.vat_number_check,
    )


def _check_overseas(country: str, postcode: str) -> None:
    """An overseas address is declared consistently: FR or the department's own code with
    the department's postcode; a collectivity outside the French VAT territory by its code."""
    territory = vat_territory(country, postcode)
    if country == "FR" and territory not in _SIREN_COUNTRIES | FRENCH_VAT_TERRITORY:
        raise InvalidIdentity(
            f"postcode {postcode} is in {territory}, outside the French VAT territory: "
            f"declare the country {territory}",
            item="country",
            reason="territory",
        )
    prefix = OVERSEAS_DEPARTMENTS.get(country)
    if prefix and (
        not "".join(postcode.split()).startswith(prefix) or vat_territory("FR", postcode) != country
    ):
        raise InvalidIdentity(
            f"a postcode in {country} starts with {prefix}, not {postcode!r}",
            item="postcode",
            reason="territory",
        )


def client_from_tenant(tenant: Tenant) -> ClientIdentity:
    """The tenant's current billing identity (checked when an invoice is issued)."""
    if not tenant.country or not tenant.postcode or not tenant.city or not tenant.address_line1:
        raise Invalid(
            f"tenant {tenant.id} has no complete billing address (address, postcode, city, "
            "country): no invoice can be made out to it"
        )
    client = ClientIdentity(
        name=tenant.legal_name or tenant.display_name,
        address_lines=tuple(line for line in (tenant.address_line1, tenant.address_line2) if line),
        postcode=tenant.postcode,
        city=tenant.city,
        country=tenant.country,
        siren=tenant.siren,
        vat_number=tenant.vat_number,
        customer_type=CustomerType(tenant.customer_type),
    )
    if not claims_reverse_charge(client):
        return client
    if tenant.vat_number_status != VatNumberStatus.VERIFIED or not tenant.vat_number_checked_at:
        return replace(client, vat_number_unconfirmed=True)
    checked_on = paris_day(tenant.vat_number_checked_at)
    evidence = f"VIES {checked_on:%d/%m/%Y} {tenant.vat_number_check_ref or ''}"
    return replace(client, vat_number_check=evidence.strip())


def _is_placeholder(value: str) -> bool:
    return not value.strip() or any(m in value.lower() for m in PLACEHOLDER_MARKERS)


def seller_from_settings(settings: Settings) -> SellerIdentity:
    """The seller's identity. Its legal identity (form, capital, registration, SIREN, VAT
    number) must be real in every mode: an invoice without it is not a valid invoice. The
    rest may stay a placeholder in development and test only."""
    legal = {
        "FTA_SELLER_LEGAL_FORM": settings.seller_legal_form,
        "FTA_SELLER_SHARE_CAPITAL": settings.seller_share_capital,
        "FTA_SELLER_REGISTRY": settings.seller_registry,
        "FTA_SELLER_SIREN": settings.seller_siren,
        "FTA_SELLER_VAT_NUMBER": settings.seller_vat_number,
    }
    contact = {
        "FTA_SELLER_NAME": settings.seller_name,
        "FTA_SELLER_ADDRESS": settings.seller_address,
        "FTA_SELLER_POSTCODE": settings.seller_postcode,
        "FTA_SELLER_CITY": settings.seller_city,
        "FTA_SELLER_EMAIL": settings.seller_email,
    }
    placeholders = [name for name, value in legal.items() if _is_placeholder(value)]
    if settings.mode not in (Mode.DEVELOPMENT, Mode.TEST):
        placeholders += [name for name, value in contact.items() if _is_placeholder(value)]
    if placeholders:
        raise Invalid(
            "invoices cannot be issued while the seller's identity holds placeholders: set "
            + ", ".join(placeholders)
        )
    siren = check_siren(settings.seller_siren)
    vat_number = check_vat_number(settings.seller_vat_number, "FR")
    if fr_tva.to_siren(vat_number) != siren:
        raise Invalid("FTA_SELLER_VAT_NUMBER does not belong to FTA_SELLER_SIREN")
    return SellerIdentity(
        name=settings.seller_name,
        address_lines=(settings.seller_address,),
        postcode=settings.seller_postcode,
        city=settings.seller_city,
        country="FR",
        siren=siren,
        vat_number=vat_number,
        legal_form=" ".join(settings.seller_legal_form.split()),
        email=settings.seller_email,
        share_capital=" ".join(settings.seller_share_capital.split()),
        registry=" ".join(settings.seller_registry.split()),
    )
