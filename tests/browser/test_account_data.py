"""The account's data page in Chromium, in French: the export downloads the account's zip;
deleting the account (password and address typed, the confirmation answered) logs the browser
out, and the account cannot log in again."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from fastapi.testclient import TestClient
from playwright.sync_api import Browser, expect

from tests.support.api import sign_up, upload_strategy
from tests.support.browser import LivePortal, log_in, open_page


def test_the_export_downloads_a_zip_of_the_account(
    browser: Browser, live_portal: LivePortal, http: TestClient, tmp_path: Path
) -> None:
    client = sign_up(http, "Archiviste")
    upload_strategy(client, "Quick")
    page, problems = open_page(browser)
    log_in(page, live_portal, client.email, client.password)

    page.goto(live_portal.url + "/app/account/data")
    expect(page.get_by_role("heading", name="Vos données", exact=True)).to_be_visible()
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Télécharger mes données (.zip)").click()
    download = download_info.value
    assert download.suggested_filename.startswith(f"fta-export-{client.tenant_id}-")
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    with zipfile.ZipFile(saved) as archive:
        names = archive.namelist()
        assert {"README.txt", "account.json", "strategies/Quick/v1.py"} <= set(names)
        assert client.email in archive.read("account.json").decode()
    # The page stays as it was: a download is no navigation.
    expect(page).to_have_url(live_portal.url + "/app/account/data")
    page.screenshot(path=str(tmp_path / "data.png"), full_page=True)
    assert problems.clean(), problems


def test_deleting_the_account_logs_out_and_it_cannot_log_in_again(
    browser: Browser, live_portal: LivePortal, http: TestClient, tmp_path: Path
) -> None:
    client = sign_up(http, "Partante")
    page, problems = open_page(browser)
    log_in(page, live_portal, client.email, client.password)
    page.goto(live_portal.url + "/app/account/data")

    # A wrong password: the page says so, and the account stays.
    page.get_by_label("Votre mot de passe").fill("not the password")
    page.get_by_label("Pour confirmer, saisissez votre adresse e-mail").fill(client.email)
    page.get_by_role("button", name="Supprimer mon compte").click()
    expect(page.get_by_role("alert")).to_have_text(
        "Mot de passe incorrect : votre compte n'a pas été supprimé."
    )
    page.screenshot(path=str(tmp_path / "refused.png"), full_page=True)

    # The password and the address: the browser's confirmation is answered yes.
    page.get_by_label("Votre mot de passe").fill(client.password)
    page.get_by_label("Pour confirmer, saisissez votre adresse e-mail").fill(client.email)
    page.get_by_role("button", name="Supprimer mon compte").click()
    expect(page).to_have_url(live_portal.url + "/app/account/data/deleted")
    expect(page.get_by_role("heading", name="Compte supprimé")).to_be_visible()
    expect(page.get_by_role("button", name="Se déconnecter")).to_have_count(0)

    page.goto(live_portal.url + "/app")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fapp$"))
    page.get_by_label("Adresse e-mail").fill(client.email)
    page.get_by_label("Mot de passe").fill(client.password)
    page.get_by_role("button", name="Se connecter").last.click()
    expect(page.get_by_role("alert")).to_have_text("Adresse e-mail ou mot de passe incorrect.")
    assert problems.clean(), problems
