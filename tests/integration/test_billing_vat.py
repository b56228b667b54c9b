"""VAT controls against the real database and a VIES stand-in: VAT numbers checked before
reverse charge, overseas departments, the OSS threshold, the payer's country at PayPal,
the DES export, and the billing identity's bounds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from fta.accounts.models import Tenant
from fta.billing.alerts.models import BillingAlert
from fta.billing.identity_api import get_vies
from fta.billing.invoices import (
    ClientIdentity,
    CustomerType,
    Line,
    Period,
    client_from_tenant,
    issue_credit_note,
    issue_invoice,
)
from fta.billing.invoices.vat import (
    NO_VAT_OVERSEAS_MENTION,
    OVERSEAS_MENTION,
    OVERSEAS_RATE,
    REVERSE_CHARGE_MENTION,
    treatment,
)
from fta.billing.vat_controls import (
    OSS_THRESHOLD_CENTS,
    check_oss_threshold,
    check_payer_country,
    des_csv,
    des_lines,
    oss_sales,
)
from fta.billing.vies import ViesRestClient, recheck_unverified
from fta.cli import main
from fta.db import get_sessionmaker, session_scope, utcnow
from fta.errors import Invalid
from tests.support.api import Client, sign_up
from tests.support.identities import SELLER_ENV, fictional_siren
from tests.support.vies_standin import Registered, ViesStandin

URL = "/api/v1/billing/identity"
SELLER_VAT = SELLER_ENV["FTA_SELLER_VAT_NUMBER"]
GERMAN = {
    "customer_type": "business",
    "legal_name": "Rechenwerk GmbH",
    "address_line1": "Hauptstraße 1",
    "postcode": "10115",
    "city": "Berlin",
    "country": "DE",
    "vat_number": "DE136695976",
}
PERIOD = Period(date(2026, 11, 1), date(2026, 11, 30))


@pytest.fixture(scope="module")
def vies() -> Iterator[ViesStandin]:
    with ViesStandin() as standin:
        standin.registered["DE136695976"] = Registered(
            "RECHENWERK GMBH", "HAUPTSTR. 1\n10115 BERLIN"
        )
        yield standin


@pytest.fixture
def standin(vies: ViesStandin) -> Iterator[ViesStandin]:
    yield vies
    vies.unavailable_states.clear()
    vies.delay_seconds = 0.0


def vies_client(standin: ViesStandin) -> ViesRestClient:
    return ViesRestClient(standin.url, SELLER_VAT, timeout=0.5)


@pytest.fixture(scope="module")
def api(app_settings: None, vies: ViesStandin) -> Iterator[TestClient]:
    from fta.portal.app import create_app

    app = create_app()
    app.dependency_overrides[get_vies] = lambda: vies_client(vies)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def session(app_settings: None) -> Iterator[Session]:
    """A transaction rolled back at the end: invoices issued here leave no trace."""
    with get_sessionmaker()() as session:
        yield session
        session.rollback()


def tenant_row(client: Client) -> Tenant:
    with session_scope() as session:
        tenant = session.get_one(Tenant, client.tenant_id)
        session.expunge(tenant)
        return tenant


def open_alerts(tenant_id: str | None, kind: str) -> list[BillingAlert]:
    with session_scope() as session:
        return list(
            session.scalars(
                select(BillingAlert).where(
                    BillingAlert.tenant_id == tenant_id if tenant_id else True,
                    BillingAlert.kind == kind,
                    BillingAlert.resolved_at.is_(None),
                )
            )
        )


# --- VIES ---


def test_a_vat_number_vies_confirms_is_kept_with_the_check_as_evidence(
    api: TestClient, standin: ViesStandin
) -> None:
    client = sign_up(api, "Berlin")
    saved = api.put(URL, json=GERMAN, headers=client.auth)
    assert saved.status_code == 200, saved.text
    body = saved.json()
    assert body["vat_number_status"] == "verified"
    assert body["vat_number_check_ref"] == standin.identifiers[-1]
    assert body["vat_number_checked_at"] is not None
    # The seller named itself: that is what makes VIES give a consultation number.
    assert standin.requests[-1] == {
        "countryCode": "DE",
        "vatNumber": "136695976",
        "requesterMemberStateCode": "FR",
        "requesterNumber": SELLER_VAT[2:],
    }
    identity = client_from_tenant(tenant_row(client))
    assert treatment(identity).mention == REVERSE_CHARGE_MENTION
    assert identity.vat_number_check is not None
    assert identity.vat_number_check.endswith(standin.identifiers[-1])
    # Names and postcodes agree, accents and case aside: no alert.
    assert open_alerts(client.tenant_id, "vies-mismatch") == []


def test_a_vat_number_vies_does_not_know_is_refused(api: TestClient, standin: ViesStandin) -> None:
    client = sign_up(api, "Unknown")
    # Valid check digits, but no business holds it.
    refused = api.put(URL, json={**GERMAN, "vat_number": "DE811569869"}, headers=client.auth)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "VIES" in refused.json()["detail"]
    assert api.get(URL, headers=client.auth).json()["vat_number"] is None


@pytest.mark.parametrize("outage", ["member state down", "timeout"])
def test_without_an_answer_from_vies_french_vat_applies_until_a_recheck(
    api: TestClient, standin: ViesStandin, outage: str
) -> None:
    client = sign_up(api, "Outage")
    if outage == "timeout":
        standin.delay_seconds = 1.0
    else:
        standin.unavailable_states.add("DE")
    saved = api.put(URL, json=GERMAN, headers=client.auth)
    assert saved.status_code == 200, saved.text
    assert saved.json()["vat_number_status"] == "unverified"
    assert saved.json()["vat_number_check_ref"] is None
    unverified = treatment(client_from_tenant(tenant_row(client)))
    assert (unverified.regime.value, unverified.rate) == ("fr", Decimal(20))

    # The billing round asks again; still down, nothing changes.
    with session_scope() as session:
        assert client.tenant_id not in recheck_unverified(session, vies_client(standin), utcnow())
    standin.unavailable_states.clear()
    standin.delay_seconds = 0.0
    with session_scope() as session:
        assert client.tenant_id in recheck_unverified(session, vies_client(standin), utcnow())
    row = tenant_row(client)
    assert (row.vat_number_status, row.vat_number_check_ref) == (
        "verified",
        standin.identifiers[-1],
    )
    assert treatment(client_from_tenant(row)).regime.value == "reverse_charge"


def test_a_recheck_that_finds_the_number_invalid_alerts_and_keeps_french_vat(
    api: TestClient, standin: ViesStandin
) -> None:
    client = sign_up(api, "Lapsed")
    standin.registered["ATU13585627"] = Registered("ALPEN GMBH", "RING 1\n1010 WIEN")
    austrian = {**GERMAN, "country": "AT", "postcode": "1010", "vat_number": "ATU13585627"}
    standin.unavailable_states.add("AT")
    assert api.put(URL, json=austrian, headers=client.auth).json()["vat_number_status"] == (
        "unverified"
    )
    standin.unavailable_states.clear()
    del standin.registered["ATU13585627"]  # deregistered meanwhile
    with session_scope() as session:
        recheck_unverified(session, vies_client(standin), utcnow())
    row = tenant_row(client)
    assert row.vat_number_status == "invalid"
    assert treatment(client_from_tenant(row)).rate == Decimal(20)
    assert len(open_alerts(client.tenant_id, "vies-invalid")) == 1


def test_a_registered_name_or_postcode_that_differs_raises_an_alert_not_a_refusal(
    api: TestClient, standin: ViesStandin
) -> None:
    client = sign_up(api, "Elsewhere")
    other = {**GERMAN, "legal_name": "Zahlenfabrik AG", "postcode": "80331", "city": "München"}
    saved = api.put(URL, json=other, headers=client.auth)
    assert saved.status_code == 200, saved.text
    assert saved.json()["vat_number_status"] == "verified"
    [alert] = open_alerts(client.tenant_id, "vies-mismatch")
    assert "RECHENWERK GMBH" in alert.message and "80331" in alert.message


# --- overseas departments ---


def business(**changes: Any) -> ClientIdentity:
    siren = fictional_siren("90000005")
    values: dict[str, Any] = {
        "name": "Alizés Trading SARL",
        "address_lines": ("3 rue Schoelcher",),
        "postcode": "97110",
        "city": "Pointe-à-Pitre",
        "country": "FR",
        "siren": siren,
        "customer_type": CustomerType.BUSINESS,
    }
    return ClientIdentity(**{**values, **changes})


@pytest.mark.parametrize(
    ("identity", "rate", "mention"),
    [
        (business(), OVERSEAS_RATE, OVERSEAS_MENTION),
        (business(country="GP"), OVERSEAS_RATE, OVERSEAS_MENTION),
        (business(country="MQ", postcode="97200"), OVERSEAS_RATE, OVERSEAS_MENTION),
        (business(postcode="97400", city="Saint-Denis"), OVERSEAS_RATE, OVERSEAS_MENTION),
        (business(postcode="97300", city="Cayenne"), Decimal(0), NO_VAT_OVERSEAS_MENTION),
        (business(country="YT", postcode="97600"), Decimal(0), NO_VAT_OVERSEAS_MENTION),
    ],
)
def test_overseas_businesses_get_their_department_rate(
    session: Session, identity: ClientIdentity, rate: Decimal, mention: str
) -> None:
    tenant = session.scalars(select(Tenant).limit(1)).one()
    invoice = issue_invoice(
        session,
        tenant_id=tenant.id,
        lines=[Line("Abonnement Pro", Decimal(1), Decimal("100.00"))],
        period=PERIOD,
        client=identity,
    )
    assert (invoice.vat_rate, invoice.total_vat_cents) == (rate, int(rate * 100))
    assert mention in invoice.mentions


@pytest.mark.parametrize("country_postcode", [("FR", "97400"), ("RE", "97400"), ("GF", "97300")])
def test_private_clients_overseas_are_not_invoiced_automatically(
    api: TestClient, session: Session, country_postcode: tuple[str, str]
) -> None:
    country, postcode = country_postcode
    client = sign_up(api, "Reunion")
    private = {
        "customer_type": "private",
        "legal_name": "Maëlle Payet",
        "address_line1": "5 rue de Paris",
        "postcode": postcode,
        "city": "Saint-Denis",
        "country": country,
    }
    saved = api.put(URL, json=private, headers=client.auth)
    assert saved.status_code == 200, saved.text
    [alert] = open_alerts(client.tenant_id, "vat-territory")
    assert "overseas department" in alert.message
    with pytest.raises(Invalid, match="overseas department"):
        issue_invoice(
            session,
            tenant_id=client.tenant_id,
            lines=[Line("Abonnement Pro", Decimal(1), Decimal("10.00"))],
            period=PERIOD,
            client=client_from_tenant(session.get_one(Tenant, client.tenant_id)),
        )


@pytest.mark.parametrize(
    ("country", "postcode", "cause"),
    [
        ("FR", "97133", "declare the country BL"),  # Saint-Barthélemy
        ("FR", "98800", "declare the country NC"),  # Nouvelle-Calédonie
        ("GP", "75002", "starts with 971"),
        ("GP", "97150", "starts with 971"),  # Saint-Martin, not Guadeloupe
    ],
)
def test_overseas_addresses_must_be_declared_consistently(
    api: TestClient, country: str, postcode: str, cause: str
) -> None:
    client = sign_up(api, "Antilles")
    body = {**GERMAN, "customer_type": "private", "vat_number": None}
    answer = api.put(
        URL, json={**body, "country": country, "postcode": postcode}, headers=client.auth
    )
    assert answer.status_code == 422, answer.text
    assert cause in answer.json()["detail"]


# --- OSS threshold ---


def private_client(country: str) -> ClientIdentity:
    return ClientIdentity(
        name="Jan Kowalski",
        address_lines=("ul. Długa 1",),
        postcode="00-001",
        city="Warszawa",
        country=country,
    )


def test_the_oss_threshold_alerts_at_80_percent_and_when_reached(session: Session) -> None:
    now = utcnow()
    tenant = session.scalars(select(Tenant).limit(1)).one()
    before = oss_sales(session, now.year)

    def sell(cents: int, country: str = "PL") -> Any:
        return issue_invoice(
            session,
            tenant_id=tenant.id,
            lines=[Line("Abonnement", Decimal(1), Decimal(cents) / 100)],
            period=PERIOD,
            client=private_client(country),
        )

    def alerts() -> set[str]:
        rows = session.scalars(
            select(BillingAlert.key).where(
                BillingAlert.kind == "oss-threshold", BillingAlert.resolved_at.is_(None)
            )
        )
        return set(rows)

    if before < 790_000:
        sell(790_000 - before)
    # French, Monegasque and business clients do not count; nor does a sale below 80 %.
    sell(500_000, "FR")
    sell(500_000, "MC")
    check_oss_threshold(session, now)
    assert f"oss-threshold:{now.year}:80pct" not in alerts()
    invoice = sell(20_000)
    check_oss_threshold(session, now)
    assert f"oss-threshold:{now.year}:80pct" in alerts()
    assert f"oss-threshold:{now.year}:reached" not in alerts()
    # A credit note takes its amount back.
    issue_credit_note(session, invoice_id=invoice.id, reason="Remboursement")
    assert oss_sales(session, now.year) == max(before, 790_000)
    sell(OSS_THRESHOLD_CENTS - oss_sales(session, now.year), "IT")
    [totals_previous, totals_now] = check_oss_threshold(session, now)
    assert totals_now.cents == OSS_THRESHOLD_CENTS and totals_previous.year == now.year - 1
    assert f"oss-threshold:{now.year}:reached" in alerts()
    # Last year's sales count too: a round in January still sees this year's.
    check_oss_threshold(session, datetime(now.year + 1, 1, 5, tzinfo=UTC))
    [message] = session.scalars(
        select(BillingAlert.message).where(BillingAlert.key == f"oss-threshold:{now.year}:reached")
    )
    assert "register for the OSS" in message and "French VAT" in message


# --- payer country ---


@pytest.mark.parametrize(
    ("declared", "paypal_state", "agree"),
    [
        (("FR", "75002"), {"subscriber": {"address": {"country_code": "FR"}}}, True),
        (
            ("FR", "75002"),
            {"subscriber": {"shipping_address": {"address": {"country_code": "DE"}}}},
            False,
        ),
        (
            ("DE", "10115"),
            {
                "subscriber": {
                    "payment_source": {"card": {"billing_address": {"country_code": "BE"}}}
                }
            },
            False,
        ),
        # A Guadeloupe address declared as FR 971xx; PayPal says GP.
        (("FR", "97110"), {"subscriber": {"address": {"country_code": "GP"}}}, True),
        # PayPal gives no country: nothing to compare.
        (("FR", "75002"), {"subscriber": {"email_address": "a@example.com"}}, True),
    ],
)
def test_the_payer_country_at_paypal_is_compared_with_the_declared_one(
    session: Session, declared: tuple[str, str], paypal_state: dict[str, Any], agree: bool
) -> None:
    tenant = session.scalars(select(Tenant).limit(1)).one()
    tenant.country, tenant.postcode = declared
    now = utcnow()
    assert check_payer_country(session, tenant.id, paypal_state, now) is agree
    keys = session.scalars(
        select(BillingAlert.key).where(
            BillingAlert.tenant_id == tenant.id,
            BillingAlert.kind == "payer-country",
            BillingAlert.resolved_at.is_(None),
        )
    ).all()
    assert bool(keys) is not agree


# --- DES ---


def test_the_des_export_sums_reverse_charge_services_per_vat_number(session: Session) -> None:
    tenant = session.scalars(select(Tenant).limit(1)).one()
    german = ClientIdentity(
        name="Rechenwerk GmbH",
        address_lines=("Hauptstraße 1",),
        postcode="10115",
        city="Berlin",
        country="DE",
        vat_number="DE136695976",
        customer_type=CustomerType.BUSINESS,
    )
    dutch = ClientIdentity(
        name="Rekenaar BV",
        address_lines=("Damrak 1",),
        postcode="1012 LG",
        city="Amsterdam",
        country="NL",
        vat_number="NL004495445B01",
        customer_type=CustomerType.BUSINESS,
    )

    def sell(client: ClientIdentity, amount: str) -> Any:
        return issue_invoice(
            session,
            tenant_id=tenant.id,
            lines=[Line("Abonnement Pro", Decimal(1), Decimal(amount))],
            period=PERIOD,
            client=client,
        )

    month = utcnow().date().replace(day=1)
    before = {line.vat_number: line.ht_cents for line in des_lines(session, month)}
    first = sell(german, "100.00")
    sell(german, "50.40")
    sell(dutch, "29.99")
    issue_credit_note(session, invoice_id=first.id, reason="Remboursement")
    # French VAT invoices are no part of it.
    sell(private_client("PL"), "1000.00")
    lines = {line.vat_number: line.ht_cents for line in des_lines(session, month)}
    assert lines == {
        **before,
        "DE136695976": before.get("DE136695976", 0) + 5040,
        "NL004495445B01": before.get("NL004495445B01", 0) + 2999,
    }
    text = des_csv([line for line in des_lines(session, month) if line.vat_number[:2] == "NL"])
    if not before:
        assert text == (
            "vat_number,client_name,amount_ht_eur,des_amount_eur\n"
            "NL004495445B01,Rekenaar BV,29.99,30\n"
        )


def test_the_des_export_command_prints_csv_and_refuses_a_bad_month(
    app_settings: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["des-export", "--month", "2019-02"]) == 0
    assert capsys.readouterr().out == "vat_number,client_name,amount_ht_eur,des_amount_eur\n"
    with pytest.raises(SystemExit) as refused:
        main(["des-export", "--month", "2019-13"])
    assert refused.value.code == 2
    assert "YYYY-MM" in capsys.readouterr().err


# --- bounds of the billing identity ---

PRIVATE = {
    "customer_type": "private",
    "legal_name": "Camille Martin",
    "address_line1": "1 rue de la Paix",
    "postcode": "75002",
    "city": "Paris",
    "country": "FR",
}
SWISS = {**PRIVATE, "customer_type": "business", "country": "CH", "postcode": "8001"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**PRIVATE, "legal_name": "N" * 201}, "legal_name"),
        ({**PRIVATE, "address_line1": "A" * 201}, "address_line1"),
        ({**PRIVATE, "address_line2": "B" * 201}, "address_line2"),
        ({**PRIVATE, "postcode": "7" * 17}, "postcode"),
        ({**PRIVATE, "city": "C" * 101}, "city"),
        ({**PRIVATE, "country": "FRA"}, "country"),
        ({**PRIVATE, "customer_type": "b" * 17}, "customer_type"),
        ({**PRIVATE, "siren": "7" * 21}, "siren"),
        ({**SWISS, "vat_number": "X" * 41}, "vat_number"),
    ],
)
def test_every_identity_field_past_its_column_is_a_422_problem(
    api: TestClient, body: dict[str, Any], field: str
) -> None:
    client = sign_up(api, "Bounds")
    answer = api.put(URL, json=body, headers=client.auth)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert field in answer.text
