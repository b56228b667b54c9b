"""The main pages of a client with a strategy, a finished backtest and a bot, and the
operator's console on that client, each opened in Chromium and checked to run clean; their
screenshots go to FTA_SCREENSHOTS_DIR when it is set (scripts/screenshots.sh regenerates
docs/screenshots/ that way), else to a temporary directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser

from tests.support.admins import create_admin
from tests.support.api import leave_nothing_waiting, sign_up, subscribe, upload_strategy
from tests.support.browser import LivePortal, log_in, open_page
from tests.support.jobs import run_job
from tests.support.sandbox import Sandbox

BACKTEST = {
    "exchange": "binance",
    "pairs": ["BTC/USDT", "ETH/USDT"],
    "timeframe": "5m",
    "timerange": "20240101-20240105",
    "stake_amount": 100,
    "max_open_trades": 2,
}
BOT = {
    "exchange": "binance",
    "pairs": ["BTC/USDT", "ETH/USDT"],
    "timeframe": "5m",
    "stake_amount": 100,
    "max_open_trades": 2,
    "dry_run_wallet": 1000,
}


def test_the_main_pages_run_clean_and_are_captured(
    browser: Browser, live_portal: LivePortal, http: TestClient, sandbox: Sandbox, tmp_path: Path
) -> None:
    target = Path(os.environ.get("FTA_SCREENSHOTS_DIR") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    client = subscribe(sign_up(http, "Martin"))
    sandbox.forget_tenant(client.tenant_id)
    try:
        strategy = upload_strategy(client, "RsiHyper")
        job_id, _ = run_job(client, kind="backtest", strategy_id=strategy, config=BACKTEST)
        bot = http.post(
            "/api/v1/bots",
            json={"name": "rsi-btc-eth", "strategy_id": strategy, "config": BOT},
            headers=client.auth,
        )
        assert bot.status_code == 201, bot.text
        page, problems = open_page(browser)
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(live_portal.url + "/")
        page.screenshot(path=str(target / "home.png"), full_page=True)
        log_in(page, live_portal, client.email, client.password)
        shots = {
            "dashboard": "/app",
            "strategy": f"/app/strategies/{strategy}",
            "backtest": f"/app/jobs/{job_id}",
            "bots": "/app/bots",
            "usage": "/app/billing/usage",
            "tokens": "/app/account/tokens",
        }
        for name, path in shots.items():
            page.goto(live_portal.url + path)
            page.wait_for_load_state("networkidle")
            assert page.locator("main h1").count() >= 1, name
            page.screenshot(path=str(target / f"{name}.png"), full_page=True)
        assert problems.clean(), problems
        sandbox.measure_disks()  # the console shows the client's disk as measured
        console = console_shots(browser, live_portal, client.tenant_id, target)
        assert sorted(p.name for p in target.glob("*.png")) == sorted(
            [f"{name}.png" for name in [*shots, *console]] + ["home.png"]
        )
    finally:
        leave_nothing_waiting(client)


def console_shots(
    browser: Browser, live_portal: LivePortal, tenant_id: str, target: Path
) -> list[str]:
    """The operator's console on the same client, as an administrator with a second factor
    sees it."""
    admin = create_admin()
    page, problems = open_page(browser)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(live_portal.url + "/login")
    page.locator("#email").fill(admin.email)
    page.locator("#password").fill(admin.password)
    page.locator("form.stacked button[type=submit]").click()
    page.locator("#otp").fill(admin.recovery_codes.pop())
    page.locator("form.stacked button[type=submit]").click()
    page.wait_for_url(live_portal.url + "/admin")
    shots = {
        "console-account": f"/admin/tenants/{tenant_id}",
        "console-operations": "/admin/operations",
    }
    for name, path in shots.items():
        page.goto(live_portal.url + path)
        page.wait_for_load_state("networkidle")
        assert page.locator("main h1").count() >= 1, name
        page.screenshot(path=str(target / f"{name}.png"), full_page=True)
    assert problems.clean(), problems
    return list(shots)


@pytest.fixture(autouse=True)
def _no_stale_screenshots() -> None:
    """A regeneration starts from an empty directory, so a page gone leaves no picture."""
    directory = os.environ.get("FTA_SCREENSHOTS_DIR")
    if directory:
        for old in Path(directory).glob("*.png"):
            old.unlink()
