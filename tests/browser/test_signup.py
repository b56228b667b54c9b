"""A new visitor, in French: the home page's plans, sign-up, the mailed verification link,
the dashboard, log-out and log-in again, and the language switch."""

from __future__ import annotations

import re
import secrets
from urllib.parse import urlsplit

from playwright.sync_api import Browser, expect

from fta.settings import Settings
from tests.support.browser import LivePortal, open_page
from tests.support.smtp_sink import Inbox, deliver

PASSWORD = "correct horse battery"  # pragma: allowlist secret


def test_a_visitor_signs_up_in_french_verifies_the_address_and_logs_in_again(
    browser: Browser, live_portal: LivePortal, smtp_sink: tuple[Inbox, Settings]
) -> None:
    inbox, settings = smtp_sink
    email = f"trader-{secrets.token_hex(4)}@example.com"
    page, problems = open_page(browser)

    page.goto(live_portal.url + "/")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.get_by_role("heading", name="Offres")).to_be_visible()
    # Prices before and after VAT, written the French way (comma, euro sign after).
    expect(page.locator(".plan .price").first).to_contain_text(re.compile(r"\d,\d\d\s€"))
    expect(page.locator(".plan").first).to_contain_text("TTC")

    page.get_by_role("link", name="S'inscrire").first.click()
    page.get_by_label("Nom (le vôtre ou celui de votre société)").fill("Trader SAS")
    page.get_by_label("Adresse e-mail").fill(email)
    page.get_by_label("Mot de passe (10 caractères ou plus)").fill(PASSWORD)
    page.get_by_label("J'accepte les").check()
    page.get_by_role("button", name="Créer mon compte").click()

    expect(page).to_have_url(live_portal.url + "/app")
    expect(page.get_by_role("heading", name="Bonjour Trader SAS")).to_be_visible()
    expect(page.locator(".alert.warning")).to_contain_text(email)

    assert deliver(settings) >= 1
    link = urlsplit(inbox.link_to(email, "/verify-email?token="))
    page.goto(f"{live_portal.url}{link.path}?{link.query}")
    expect(page.get_by_role("heading", name="Adresse vérifiée")).to_be_visible()
    page.get_by_role("link", name="Aller au tableau de bord").click()
    expect(page.locator(".alert.warning")).to_have_count(0)

    page.get_by_role("button", name="Se déconnecter").click()
    expect(page).to_have_url(live_portal.url + "/")
    page.goto(live_portal.url + "/app")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fapp$"))
    page.get_by_label("Adresse e-mail").fill(email)
    page.get_by_label("Mot de passe").fill("not the password")
    page.get_by_role("button", name="Se connecter").last.click()
    expect(page.get_by_role("alert")).to_have_text("Adresse e-mail ou mot de passe incorrect.")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").last.click()
    expect(page).to_have_url(live_portal.url + "/app")

    page.get_by_label("Langue").select_option("en")
    expect(page.get_by_role("heading", name="Hello Trader SAS")).to_be_visible()
    expect(page.get_by_role("link", name="Dashboard")).to_be_visible()
    assert problems.clean(), problems
