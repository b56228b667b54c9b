"""A client secures the account in the browser, in French: two-factor log-in set up with the
key the page shows, then asked at the next log-in; a personal API token made and used by a
script; a forgotten password reset through the mailed link."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
import pyotp
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, expect

from fta.accounts import password_reset
from fta.settings import Settings
from tests.support.api import sign_up
from tests.support.browser import LivePortal, log_in, open_page
from tests.support.smtp_sink import Inbox, deliver


def test_two_factor_log_in_is_set_up_from_the_page_then_asked_at_log_in(
    browser: Browser, live_portal: LivePortal, http: TestClient
) -> None:
    client = sign_up(http, "Secured")
    page, problems = open_page(browser)
    log_in(page, live_portal, client.email, client.password)

    page.goto(live_portal.url + "/app/account/security")
    expect(page.get_by_text("Désactivée", exact=True)).to_be_visible()
    page.get_by_role("link", name="Configurer la connexion en deux étapes").click()
    expect(page.locator("img.qr")).to_be_visible()
    uri = page.locator("#totp-uri").text_content() or ""
    assert uri.startswith("otpauth://totp/fta:")
    secret = (page.locator("#totp-secret").text_content() or "").replace(" ", "")
    assert f"secret={secret}" in uri
    totp = pyotp.TOTP(secret)

    page.get_by_label("Code de vérification").fill("000000" if totp.now() != "000000" else "111111")
    page.get_by_role("button", name="Activer la connexion en deux étapes").click()
    expect(page.get_by_role("alert")).to_contain_text("Code incorrect")
    assert (page.locator("#totp-secret").text_content() or "").replace(" ", "") == secret
    confirming = totp.now()
    page.get_by_label("Code de vérification").fill(confirming)
    page.get_by_role("button", name="Activer la connexion en deux étapes").click()
    expect(page.get_by_role("heading", name="Vos codes de secours")).to_be_visible()
    codes = page.locator("ol.codes li").all_text_contents()
    assert len(codes) == 10
    page.get_by_role("link", name="Je les ai enregistrés").click()
    expect(page.get_by_text("Activée", exact=True)).to_be_visible()
    expect(page.get_by_text("Il vous reste 10 codes de secours inutilisés.")).to_be_visible()

    page.get_by_role("button", name="Se déconnecter").click()
    page.goto(live_portal.url + "/login")
    page.get_by_label("Adresse e-mail").fill(client.email)
    page.get_by_label("Mot de passe").fill(client.password)
    page.get_by_role("button", name="Se connecter").last.click()
    expect(page).to_have_url(re.compile(r"/login/2fa\?next=%2Fapp$"))
    # The password alone opened nothing.
    page.goto(live_portal.url + "/app")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.go_back()
    expect(page).to_have_url(re.compile(r"/login/2fa"))
    page.get_by_label("Code de vérification").fill(codes[0])
    page.get_by_role("button", name="Se connecter").last.click()
    expect(page).to_have_url(live_portal.url + "/app")
    expect(page.get_by_role("heading", name="Bonjour Secured")).to_be_visible()
    assert problems.clean(), problems


def test_a_token_made_on_the_page_serves_a_script(
    browser: Browser, live_portal: LivePortal, http: TestClient
) -> None:
    client = sign_up(http, "Scripted")
    page, problems = open_page(browser)
    log_in(page, live_portal, client.email, client.password)
    page.goto(live_portal.url + "/app/account/tokens")
    expect(page.get_by_text("Aucun jeton pour le moment.")).to_be_visible()
    page.get_by_label("Nom", exact=True).fill("Mon script de backtest")
    page.get_by_label("Lecture seule").check()
    page.get_by_label("Expiration").select_option("30")
    page.get_by_role("button", name="Créer le jeton").click()
    expect(page.get_by_role("status")).to_contain_text("Copiez-le maintenant")
    value = page.locator("#new-token").text_content() or ""
    assert value.startswith("fta_pat_")
    row = page.locator("table.tokens tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Mon script de backtest")
    expect(row).to_contain_text("lecture seule")
    expect(row).to_contain_text("jamais")  # not used yet

    with httpx.Client(base_url=live_portal.url, timeout=30) as script:
        headers = {"Authorization": f"Bearer {value}"}
        listed = script.get("/api/v1/strategies", headers=headers)
        assert listed.status_code == 200, listed.text
        refused = script.post(
            "/api/v1/strategies", json={"name": "X", "source": "x = 1"}, headers=headers
        )
        assert refused.status_code == 403, refused.text

    page.goto(live_portal.url + "/app/account/tokens")
    expect(page.locator("#new-token")).to_have_count(0)  # shown once
    expect(page.locator("table.tokens tbody tr")).not_to_contain_text("jamais")
    page.get_by_role("button", name="Révoquer").click()  # its confirmation is accepted
    expect(page.get_by_text("Aucun jeton pour le moment.")).to_be_visible()
    with httpx.Client(base_url=live_portal.url, timeout=30) as script:
        gone = script.get("/api/v1/strategies", headers={"Authorization": f"Bearer {value}"})
        assert gone.status_code == 401
    assert problems.clean(), problems


def test_a_forgotten_password_is_reset_through_the_mailed_link(
    browser: Browser,
    live_portal: LivePortal,
    http: TestClient,
    smtp_sink: tuple[Inbox, Settings],
) -> None:
    inbox, settings = smtp_sink
    client = sign_up(http, "Forgetful")
    new_password = "une phrase de passe toute neuve"  # pragma: allowlist secret
    page, problems = open_page(browser)
    page.goto(live_portal.url + "/login")
    page.get_by_role("link", name="Mot de passe oublié ?").click()
    page.get_by_label("Adresse e-mail").fill(client.email)
    page.get_by_role("button", name="M'envoyer un lien").click()
    expect(page.get_by_role("heading", name="Consultez votre boîte de réception")).to_be_visible()

    assert deliver(settings) >= 1
    assert [m["Subject"] for m in inbox.to(client.email)].count(password_reset.SUBJECT) == 1
    link = urlsplit(inbox.link_to(client.email, "/password/reset?token="))
    page.goto(f"{live_portal.url}{link.path}?{link.query}")
    page.get_by_label("Nouveau mot de passe (10 caractères ou plus)").fill(new_password)
    page.get_by_label("Confirmez le nouveau mot de passe").fill(new_password)
    page.get_by_role("button", name="Changer mon mot de passe").click()
    expect(page.get_by_role("heading", name="Mot de passe modifié")).to_be_visible()

    page.goto(f"{live_portal.url}{link.path}?{link.query}")
    expect(page.get_by_role("heading", name="Ce lien ne fonctionne pas")).to_be_visible()

    log_in(page, live_portal, client.email, new_password)
    expect(page.get_by_role("heading", name="Bonjour Forgetful")).to_be_visible()
    assert problems.clean(), problems
