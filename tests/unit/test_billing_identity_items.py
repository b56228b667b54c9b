"""A refused client identity names the item at fault and why, as the billing identity's
fields are named, so a form shows the error beside its field."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from fta.billing.invoices.identity import InvalidIdentity, check_client
from fta.errors import Invalid
from tests.support.identities import CLIENT_SIREN, FRENCH_BUSINESS, FRENCH_PRIVATE


@pytest.mark.parametrize(
    ("changes", "item", "reason"),
    [
        ({"name": "  "}, "legal_name", "length"),
        ({"address_lines": ()}, "address_line1", "missing"),
        ({"address_lines": ("1 rue X", "B" * 201)}, "address_line2", "length"),
        ({"postcode": ""}, "postcode", "length"),
        ({"city": "C" * 101}, "city", "length"),
        ({"country": "France"}, "country", "invalid"),
        ({"postcode": "98800"}, "country", "territory"),
        ({"country": "GP", "postcode": "97200"}, "postcode", "territory"),
        ({"siren": None}, "siren", "missing"),
        ({"siren": "123456789"}, "siren", "invalid"),
        ({"vat_number": "FR00123"}, "vat_number", "invalid"),
        ({"vat_number": "DE136695976"}, "vat_number", "wrong_country"),
        ({"vat_number": "FR40303265045"}, "vat_number", "not_of_siren"),
    ],
)
def test_the_item_at_fault_is_named(changes: dict[str, Any], item: str, reason: str) -> None:
    base = FRENCH_PRIVATE if item in ("legal_name", "city") else FRENCH_BUSINESS
    with pytest.raises(InvalidIdentity) as refused:
        check_client(replace(base, **changes))
    assert (refused.value.item, refused.value.reason) == (item, reason)
    # Still the same 422 for the API.
    assert isinstance(refused.value, Invalid) and refused.value.status == 422


def test_a_valid_identity_passes() -> None:
    assert check_client(FRENCH_BUSINESS).siren == CLIENT_SIREN
