"""A client's billing in French, in Chromium: this month's usage with its chart, the billing
identity (an error shown on its field, nothing typed lost), subscribing through PayPal (the
stand-in's approval, then back to the portal), the plan active, the invoice PayPal's payment
gives and its PDF."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, Route, expect
from sqlalchemy import select

from fta.billing import metering
from fta.billing.api import get_paypal
from fta.billing.payment_invoices import invoice_payments
from fta.billing.paypal.models import Payment, Subscription
from fta.db import session_scope, utcnow
from tests.support.api import Client, sign_up
from tests.support.browser import LivePortal, log_in, open_page
from tests.support.paypal_standin import PayPalStandin


@pytest.fixture(scope="module")
def standin() -> Iterator[PayPalStandin]:
    with PayPalStandin() as standin:
        yield standin


@pytest.fixture
def paypal(live_portal: LivePortal, standin: PayPalStandin) -> Iterator[PayPalStandin]:
    """The live portal talks to the stand-in; buyers come back to its own pages."""
    facade = standin.facade(f"{live_portal.url}/api/v1/billing/return", portal_url=live_portal.url)
    live_portal.app.dependency_overrides[get_paypal] = lambda: facade
    try:
        yield standin
    finally:
        live_portal.app.dependency_overrides.pop(get_paypal, None)


def _used_today(client: Client) -> None:
    """A job of 1.5 CPU-hours that ended just now."""
    now = utcnow()
    with session_scope() as session:
        metering.record_usage_event(
            session,
            tenant_id=client.tenant_id,
            event_key=f"job:{uuid.uuid4()}",
            subject_kind="job",
            subject_id=uuid.uuid4(),
            cpu_seconds=Decimal(5400),
            ram_gb_seconds=Decimal(3600),
            running_seconds=Decimal(2400),
            occurred_at=now - timedelta(seconds=1),
            now=now,
        )


def _approve_through_the_standin(page: Page, standin: PayPalStandin) -> None:
    """PayPal's approval page, for the browser: the stand-in answers (its TLS certificate is
    its own CA's, which Chromium does not know, so the request is passed on to it here) and
    sends the browser back to the return URL, as PayPal does."""

    def approve(route: Route) -> None:
        with standin.http_client() as http:
            answer = http.get(route.request.url, follow_redirects=False)
        assert answer.status_code == 302, answer.text
        route.fulfill(status=302, headers={"location": answer.headers["location"]})

    page.route(f"{standin.url}/**", approve)


def _pay(live_portal: LivePortal, standin: PayPalStandin, client: Client) -> str:
    """PayPal collects the first month and tells us by webhook; the worker's billing round
    invoices it. Returns the subscription's id."""
    with session_scope() as session:
        subscription_id = session.scalars(
            select(Subscription.paypal_subscription_id).where(
                Subscription.tenant_id == client.tenant_id
            )
        ).one()
    event = standin.cycle_paid(subscription_id, utcnow())
    delivered = standin.send_webhook(live_portal.url, event)
    assert delivered.status_code == 200 and delivered.json()["outcome"] == "applied"
    invoice_payments(session_scope, utcnow())
    with session_scope() as session:
        invoiced = session.scalar(
            select(Payment.invoice_ref).where(Payment.paypal_id == event["resource"]["id"])
        )
    assert invoiced is not None, "the billing round did not invoice the sale"
    return subscription_id


def test_a_client_sees_its_usage_fills_its_identity_subscribes_and_downloads_its_invoice(
    browser: Browser, live_portal: LivePortal, http: TestClient, paypal: PayPalStandin
) -> None:
    client = sign_up(http, "Payeur")
    _used_today(client)
    page, problems = open_page(browser)
    log_in(page, live_portal, client.email, client.password)

    # This month's usage, against the trial's allowance, with its chart per day.
    page.get_by_role("link", name="Facturation").first.click()
    page.get_by_role("link", name="Consommation", exact=True).click()
    expect(
        page.get_by_role("heading", name=re.compile(r"^Consommation de .+ \d{4}"))
    ).to_be_visible()
    quantities = page.locator("table.quantities")
    expect(quantities.get_by_role("row", name=re.compile("^Temps CPU"))).to_contain_text("1,50")
    expect(quantities.get_by_role("row", name=re.compile("^Temps de job"))).to_contain_text("40,0")
    expect(page.locator("#allowance-title + .figure")).to_contain_text("1,50")
    page.wait_for_function(
        "() => window.Chart && Chart.getChart(document.getElementById('usage-chart'))"
    )
    drawn = page.evaluate(
        "() => Chart.getChart(document.getElementById('usage-chart')).data.datasets[0].data"
    )
    assert sum(value for value in drawn if value) == pytest.approx(1.5)

    # The billing identity: a company without its SIREN is refused on that field, with all
    # that was typed kept; as a private person it is saved.
    page.get_by_role("link", name="Coordonnées de facturation").click()
    page.get_by_label("une entreprise ou un entrepreneur individuel").check()
    page.get_by_label("Nom figurant sur les factures").fill("Camille Martin")
    page.get_by_label("Adresse", exact=True).fill("1 rue de la Paix")
    page.get_by_label("Code postal").fill("75002")
    page.get_by_label("Ville").fill("Paris")
    expect(page.get_by_label("Pays")).to_have_value("FR")
    page.get_by_role("button", name="Enregistrer mes coordonnées").click()
    siren = page.get_by_label("SIREN")
    expect(siren).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#siren-error")).to_contain_text("SIREN")
    expect(page.get_by_label("Nom figurant sur les factures")).to_have_value("Camille Martin")
    expect(page.get_by_label("Ville")).to_have_value("Paris")
    page.get_by_label("une personne physique").check()
    expect(siren).to_be_hidden()
    page.get_by_role("button", name="Enregistrer mes coordonnées").click()
    expect(page.get_by_role("status")).to_contain_text("enregistrées")

    # Subscribing: on to PayPal, approved there, back on the portal with the plan active.
    page.get_by_role("link", name="Offres", exact=True).click()
    pro = page.locator("article.plan", has=page.get_by_role("heading", name=re.compile("^Pro")))
    expect(pro).to_contain_text("79,00\xa0€ HT")
    expect(pro).to_contain_text("94,80\xa0€ TTC")
    _approve_through_the_standin(page, paypal)
    pro.get_by_role("button", name="S'abonner à Pro sur PayPal").click()
    page.wait_for_url(re.compile(re.escape(live_portal.url) + r"/app/billing/return\?"))
    expect(page.get_by_role("heading", name="Votre abonnement est actif")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Votre offre est Pro dès maintenant.")
    subscription_id = _pay(live_portal, paypal, client)

    page.get_by_role("link", name="Retour à la facturation").click()
    status = page.locator("section", has=page.get_by_role("heading", name="Statut de facturation"))
    expect(status.locator(".status-badge").first).to_have_text("Actif")
    plan = page.locator("section", has=page.get_by_role("heading", name="Votre offre"))
    expect(plan).to_contain_text("Pro")
    expect(plan).to_contain_text("79,00\xa0€ HT")
    expect(plan).to_contain_text("94,80\xa0€ TTC")
    next_payment = paypal.subscriptions[subscription_id]["billing_info"]["next_billing_time"]
    assert next_payment
    expect(status.locator("dd").last).not_to_contain_text("pas encore connu")

    # The invoice of that payment, and its PDF.
    page.get_by_role("link", name="Factures", exact=True).click()
    row = page.locator("table.invoices tbody tr").first
    expect(row.locator("td.number")).to_have_text(re.compile(r"^F-\d{4}-\d{6}$"))
    expect(row).to_contain_text("79,00\xa0€")
    expect(row).to_contain_text("15,80\xa0€")
    expect(row).to_contain_text("94,80\xa0€")
    expect(row).to_contain_text("Payée")
    with page.expect_download() as download:
        row.get_by_role("link", name=re.compile("^Télécharger F-")).click()
    saved = download.value
    assert re.fullmatch(r"F-\d{4}-\d{6}\.pdf", saved.suggested_filename)
    assert Path(saved.path()).read_bytes().startswith(b"%PDF-")
    assert problems.clean(), problems
