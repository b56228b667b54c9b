"""The account page: who is signed in, and a password change that ends every session."""

from __future__ import annotations

import httpx
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, expect

from tests.support.api import sign_up
from tests.support.browser import LivePortal, log_in, open_page

NEW_PASSWORD = "another long passphrase"  # pragma: allowlist secret


def test_a_client_changes_the_password_and_every_session_ends(
    browser: Browser, live_portal: LivePortal, http: TestClient
) -> None:
    client = sign_up(http, "Profile")
    page, problems = open_page(browser)
    log_in(page, live_portal, client.email, client.password)
    page.get_by_role("link", name="Compte").click()
    expect(page.get_by_role("heading", name="Profil")).to_be_visible()
    expect(page.locator("main")).to_contain_text(client.email)

    page.locator("#current_password").fill("not my password")
    page.locator("#new_password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Changer le mot de passe").click()
    expect(page.get_by_role("alert")).to_have_text("Le mot de passe actuel est incorrect.")

    page.locator("#current_password").fill(client.password)
    page.locator("#new_password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Changer le mot de passe").click()
    expect(page.get_by_role("status")).to_contain_text("Votre mot de passe a été changé")
    # The API token of before is revoked as well.
    old = httpx.get(f"{live_portal.url}/api/v1/strategies", headers=client.auth, timeout=30)
    assert old.status_code == 401
    log_in(page, live_portal, client.email, NEW_PASSWORD)
    assert problems.clean(), problems
