"""A client's bot in Chromium, end to end: created with the form, started, running on the
worker (real Docker, the replay gateway's live market) with its log arriving live over
server-sent events and its dry-run trade in the table, then stopped after the confirmation."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, expect

from tests.support.api import Client, leave_nothing_waiting, sign_up, upload_strategy
from tests.support.browser import LivePortal, log_in, open_page
from tests.support.sandbox import Sandbox

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

# freqtrade's start in a fresh container, then its first report.
START_TIMEOUT_MS = 240_000


@pytest.fixture
def trader(http: TestClient, sandbox: Sandbox) -> Iterator[Client]:
    client = sign_up(http, "Trader")
    sandbox.forget_tenant(client.tenant_id)
    upload_strategy(client, "EnterNow")
    yield client
    leave_nothing_waiting(client)


def _state(page: Page) -> str:
    return page.locator("h1 .state").inner_text()


def test_a_client_creates_starts_watches_and_stops_a_bot(
    browser: Browser, live_portal: LivePortal, trader: Client
) -> None:
    page, problems = open_page(browser)
    log_in(page, live_portal, trader.email, trader.password)

    page.get_by_role("link", name="Bots", exact=True).click()
    expect(page.get_by_role("heading", name="Bots")).to_be_visible()
    page.get_by_role("link", name="Créer mon premier bot").click()
    page.get_by_label("Nom", exact=True).fill("enter-now")
    page.get_by_label("Stratégie").select_option(label="EnterNow (v1)")
    page.get_by_label("Devise de mise").select_option("USDT")
    # The script shows the stake currency's pairs only, and filters them.
    expect(page.locator(".pair-group[data-currency='BTC']")).to_be_hidden()
    page.get_by_label("Filtrer les paires").fill("btc")
    expect(page.locator("label.pair", has_text="ETH/USDT")).to_be_hidden()
    page.get_by_label("BTC/USDT").check()
    expect(page.locator("[data-pair-count]")).to_have_text("1 sélectionnée(s)")
    page.get_by_label("Unité de temps").select_option("1m")
    page.get_by_label("Trades ouverts au plus").fill("1")
    page.get_by_label("Mise par trade").fill("100")
    page.get_by_label("Portefeuille de départ (simulé)").fill("1 000")
    page.get_by_role("button", name="Créer le bot").click()

    expect(page).to_have_url(re.compile(r"/app/bots/[0-9a-f-]{36}$"))
    expect(page.get_by_role("heading", name=re.compile("enter-now"))).to_be_visible()
    assert _state(page) == "Arrêté"
    expect(page.locator(".open-trades")).to_have_count(0)
    expect(page.get_by_text("Aucun trade ouvert.")).to_be_visible()

    page.get_by_role("button", name="Démarrer", exact=True).click()
    expect(page.locator("h1 .wanted")).to_have_text("doit tourner")
    # The page follows the worker by itself: starting, then running.
    expect(page.locator("h1 .state")).to_have_text("En marche", timeout=START_TIMEOUT_MS)
    # Lines arrive over the event stream, appended by the script as text.
    expect(page.locator("[data-log-status]")).to_have_text("en direct", timeout=30_000)
    expect(page.locator("#log span.arrived").first).to_be_attached(timeout=120_000)
    assert page.locator("#log *:not(span.arrived)").count() == 0

    # The bot's dry-run trade, once its report came in.
    _reload_until(page, "table.open-trades tbody tr", 180_000)
    row = page.locator("table.open-trades tbody tr").first
    expect(row).to_contain_text("BTC/USDT")
    expect(row).to_contain_text("USDT")

    page.get_by_role("button", name="Arrêter", exact=True).click()  # confirmed in the dialog
    expect(page.locator("h1 .state")).to_have_text("Arrêté", timeout=120_000)
    expect(page.get_by_role("button", name="Démarrer", exact=True)).to_be_visible()
    assert problems.clean(), problems


def _reload_until(page: Page, selector: str, timeout_ms: int) -> None:
    """Reloads the page every few seconds until `selector` shows, within `timeout_ms`."""
    waited = 0
    while page.locator(selector).count() == 0:
        assert waited < timeout_ms, f"{selector} never showed"
        page.wait_for_timeout(5000)
        waited += 5000
        page.reload()
