"""The client's billing identity: checked as an invoice checks it, kept per tenant."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.support.api import sign_up
from tests.support.identities import fictional_siren, french_vat

URL = "/api/v1/billing/identity"
PRIVATE = {
    "customer_type": "private",
    "legal_name": "Camille Martin",
    "address_line1": "1 rue de la Paix",
    "postcode": "75002",
    "city": "Paris",
    "country": "fr",
}


def a_siren() -> str:
    """A SIREN with a valid check digit, made up for the test."""
    return fictional_siren("73282932")


def business(**changes: Any) -> dict[str, Any]:
    siren = a_siren()
    body = {**PRIVATE, "customer_type": "business", "legal_name": "Trading SAS"}
    return {**body, "siren": siren, "vat_number": french_vat(siren), **changes}


def test_identities_are_checked_and_kept_per_tenant(http: TestClient) -> None:
    alice, bob = sign_up(http, "Alice"), sign_up(http, "Bob")
    saved = http.put(URL, json=PRIVATE, headers=alice.auth)
    assert saved.status_code == 200, saved.text
    assert saved.json()["country"] == "FR" and saved.json()["siren"] is None
    company = http.put(URL, json=business(), headers=bob.auth)
    assert company.status_code == 200, company.text
    assert company.json()["vat_number"] == french_vat(a_siren())
    # Each reads its own.
    assert http.get(URL, headers=alice.auth).json()["legal_name"] == "Camille Martin"
    assert http.get(URL, headers=bob.auth).json()["legal_name"] == "Trading SAS"


def test_bad_identities_are_refused_with_the_cause(http: TestClient) -> None:
    client = sign_up(http)
    refused = [
        (business(siren="123456789"), "SIREN"),
        (business(vat_number="FR00123456789"), "VAT"),
        (business(siren=None, vat_number=None), "SIREN"),
        ({**PRIVATE, "address_line1": "rue\x00"}, "address_line1"),
        ({**PRIVATE, "country": "France"}, "country"),
        ({**PRIVATE, "iban": "FR76"}, "iban"),
    ]
    for body, cause in refused:
        answer = http.put(URL, json=body, headers=client.auth)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert cause in answer.text, (cause, answer.text)
    assert http.get(URL, headers=client.auth).json()["legal_name"] is None


def test_a_tax_number_outside_the_eu_is_kept_as_printed(http: TestClient) -> None:
    client = sign_up(http, "Zurich")
    swiss = business(country="CH", siren=None, vat_number="CHE-123.456.789 MWST")
    stored = http.put(URL, json=swiss, headers=client.auth)
    assert stored.status_code == 200, stored.text
    assert http.get(URL, headers=client.auth).json()["vat_number"] == "CHE-123.456.789 MWST"
    too_long = http.put(URL, json={**swiss, "vat_number": "X" * 41}, headers=client.auth)
    assert too_long.status_code == 422, too_long.text
