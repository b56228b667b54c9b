"""The account's data page in Chromium, in French: the export downloads the account's zip."""

from __future__ import annotations

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
