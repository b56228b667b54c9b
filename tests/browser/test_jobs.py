"""A client's jobs in Chromium, run by the real worker (sandbox): a backtest submitted with the
form whose logs arrive live, then its figures, equity chart and trades; a hyperopt's best
parameters; two backtests compared; what a strategy wrote shown as text; the form's mistakes
explained in French with what was typed kept."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, expect

from fta.db import session_scope, utcnow
from fta.jobs import service as jobs
from fta.jobs.models import Job, JobStatus
from fta.jobs.summary import DataFingerprint, DataPairRow, DataSummary
from tests.integration.strategies import source
from tests.support.api import (
    Client,
    leave_nothing_waiting,
    sign_up,
    subscribe,
    upload_strategy,
)
from tests.support.browser import LivePortal, PageProblems, log_in, open_page
from tests.support.jobs import wait_for_job
from tests.support.sandbox import Sandbox

# Two days of 5-minute candles: a backtest takes seconds once its container runs.
START, END = "2024-01-01", "2024-01-03"
CONFIG = {
    "exchange": "binance",
    "timeframe": "5m",
    "timerange": "20240101-20240103",
    "stake_amount": 100,
    "max_open_trades": 2,
}
# What the MarkupWriter strategy writes in its logs and as its trades' entry tag.
MARKUP = '<img src=x onerror="alert(document.domain)"><script>alert(1)</script>'
JOB_PAGE = re.compile(r"/app/jobs/[0-9a-f-]{36}$")
RUN_TIMEOUT_MS = 240_000
# How many pixels of a canvas were drawn on.
DRAWN_PIXELS = """(id) => {
  const canvas = document.getElementById(id);
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let drawn = 0;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i]) drawn += 1;
  return drawn;
}"""


@dataclass
class Trader:
    client: Client
    rsi: str
    markup: str


@pytest.fixture(scope="module")
def trader(http: TestClient, sandbox: Sandbox) -> Iterator[Trader]:
    """A verified, paying client (two jobs at once) whose jobs the sandbox's worker runs."""
    client = subscribe(sign_up(http, "Trader"))
    sandbox.forget_tenant(client.tenant_id)
    yield Trader(
        client, upload_strategy(client, "RsiHyper"), upload_strategy(client, "MarkupWriter")
    )
    leave_nothing_waiting(client)


def _signed_in(
    browser: Browser, live_portal: LivePortal, client: Client
) -> tuple[Page, PageProblems]:
    page, problems = open_page(browser)
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_portal, client.email, client.password)
    return page, problems


def _submitted(client: Client, strategy_id: str, **config: object) -> str:
    body = {"kind": "backtest", "strategy_id": strategy_id, "config": {**CONFIG, **config}}
    response = client.http.post("/api/v1/jobs", json=body, headers=client.auth)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def _sees_live_logs_then_results(page: Page, wanted: str) -> None:
    """The page shows log lines as the job writes them (server-sent events, in this very
    document), then reloads itself with the results once the job has ended."""
    page.evaluate("() => { window.sameDocument = true; }")
    log = page.locator("#job-log[data-streamed]")
    expect(log).to_contain_text(wanted, timeout=RUN_TIMEOUT_MS)
    assert page.evaluate("() => window.sameDocument === true"), "the lines came with a reload"
    expect(page.locator("#summary-cards")).to_be_visible(timeout=RUN_TIMEOUT_MS)
    assert page.evaluate("() => window.sameDocument === undefined")


def test_a_backtest_from_the_form_streams_its_logs_then_shows_its_results(
    browser: Browser, live_portal: LivePortal, trader: Trader
) -> None:
    page, problems = _signed_in(browser, live_portal, trader.client)
    page.goto(f"{live_portal.url}/app/jobs/new?strategy={trader.rsi}")
    expect(page.locator("#strategy_id")).to_have_value(trader.rsi)
    expect(page.locator("input[name=kind][value=backtest]")).to_be_checked()
    # Hyperopt's options are shown only for a hyperopt.
    expect(page.locator("#epochs")).to_be_hidden()
    page.locator("#pairs").select_option(["BTC/USDT", "ETH/USDT"])
    page.get_by_label("Unité de temps").select_option("5m")
    page.get_by_label("Premier jour").fill(START)
    page.get_by_label("Dernier jour").fill(END)
    page.get_by_label("Mise par trade").fill("100")
    page.get_by_label("Trades ouverts au maximum").fill("2")
    page.get_by_role("button", name="Lancer le job").click()

    expect(page).to_have_url(JOB_PAGE)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Backtest · RsiHyper")
    _sees_live_logs_then_results(page, "freqtrade")
    expect(page.locator("#job-status")).to_contain_text("Terminé")
    cards = page.locator("#summary-cards")
    for name in ("Profit total", "Taux de réussite", "Repli maximal", "Ratio de Sharpe"):
        expect(cards).to_contain_text(name)
    trades = int(cards.locator(".metric", has_text="Trades").locator(".metric-value").inner_text())
    assert trades > 0

    page.wait_for_function(
        "() => window.Chart && window.Chart.getChart(document.getElementById('equity-chart'))"
    )
    points = page.evaluate(
        "() => Chart.getChart(document.getElementById('equity-chart')).data.datasets[0].data.length"
    )
    assert points == trades + 1  # the starting balance, then one point per closed trade
    assert page.evaluate(DRAWN_PIXELS, "equity-chart") > 1000
    assert page.evaluate(DRAWN_PIXELS, "drawdown-chart") > 500
    expect(page.locator("#trades-table tbody tr")).to_have_count(trades)
    expect(page.locator(".pairs-table tbody tr")).to_have_count(2)
    with page.expect_download() as download:
        page.get_by_role("link", name="Télécharger le fichier de résultat").click()
    assert download.value.suggested_filename.endswith(".zip")
    assert problems.clean(), problems


def test_a_hyperopt_shows_its_best_parameters_and_its_epochs(
    browser: Browser, live_portal: LivePortal, trader: Trader
) -> None:
    page, problems = _signed_in(browser, live_portal, trader.client)
    page.goto(f"{live_portal.url}/app/jobs/new?strategy={trader.rsi}")
    page.locator("input[name=kind][value=hyperopt]").check()
    page.locator("#pairs").select_option(["BTC/USDT", "ETH/USDT"])
    page.get_by_label("Premier jour").fill(START)
    page.get_by_label("Dernier jour").fill(END)
    page.get_by_label("Époques").fill("5")
    page.locator("input[name=spaces][value=default]").uncheck()
    page.locator("input[name=spaces][value=buy]").check()
    page.locator("input[name=spaces][value=sell]").check()
    page.get_by_label("Fonction de perte").select_option("SharpeHyperOptLoss")
    page.get_by_role("button", name="Lancer le job").click()

    expect(page).to_have_url(JOB_PAGE)
    _sees_live_logs_then_results(page, "freqtrade")
    best = page.locator("#best-params")
    expect(best).to_contain_text("buy_rsi")
    expect(best).to_contain_text("sell_rsi")
    expect(page.locator("#summary-cards")).to_contain_text("sur 5")
    rows = page.locator("#epochs-table tbody tr")
    expect(rows).to_have_count(5)
    # Sorted by loss, the best first.
    expect(rows.first).to_have_class(re.compile(r"\bbest\b"))
    with page.expect_download() as download:
        best.get_by_role("link", name="Télécharger RsiHyper.json").click()
    assert download.value.suggested_filename == "RsiHyper.json"
    parameters = json.loads(Path(download.value.path()).read_text())
    assert parameters["strategy_name"] == "RsiHyper"
    assert set(parameters["params"]["buy"]) == {"buy_rsi"}
    shown = best.locator("table.params", has_text="buy").locator("td").first.inner_text()
    assert shown == str(parameters["params"]["buy"]["buy_rsi"])
    assert problems.clean(), problems


def test_two_backtests_are_compared_side_by_side(
    browser: Browser, live_portal: LivePortal, trader: Trader
) -> None:
    both = _submitted(trader.client, trader.rsi, pairs=["BTC/USDT", "ETH/USDT"])
    one = _submitted(trader.client, trader.rsi, pairs=["BTC/USDT"], max_open_trades=1)
    for job_id in (both, one):
        assert wait_for_job(trader.client, job_id)["status"] == "succeeded"
    page, problems = _signed_in(browser, live_portal, trader.client)
    page.goto(f"{live_portal.url}/app/jobs")
    page.get_by_role("link", name="Comparer des backtests").click()
    page.get_by_label("Backtest A").select_option(both)
    page.get_by_label("Backtest B").select_option(one)
    page.get_by_role("button", name="Comparer").click()
    expect(page).to_have_url(re.compile(rf"/app/jobs/compare\?a={both}&b={one}$"))
    table = page.locator("#compare-table")
    for name in ("Profit total", "Trades", "Ratio de Sharpe", "Écart (B − A)"):
        expect(table).to_contain_text(name)
    results = {
        job_id: trader.client.http.get(
            f"/api/v1/jobs/{job_id}/result", headers=trader.client.auth
        ).json()
        for job_id in (both, one)
    }
    trades_row = table.locator("tbody tr", has_text="Trades").first.locator("td")
    expected = [results[both]["trades"], results[one]["trades"]]
    assert [int(trades_row.nth(i).inner_text()) for i in (0, 1)] == expected
    assert trades_row.nth(2).inner_text().lstrip("+") == str(expected[1] - expected[0])
    page.wait_for_function(
        "() => window.Chart && window.Chart.getChart(document.getElementById('equity-chart'))"
    )
    sizes = page.evaluate(
        "() => Chart.getChart(document.getElementById('equity-chart'))"
        ".data.datasets.map((set) => set.data.length)"
    )
    assert sizes == [expected[0] + 1, expected[1] + 1]
    assert page.evaluate(DRAWN_PIXELS, "equity-chart") > 1000
    assert problems.clean(), problems


def test_markup_a_strategy_writes_in_its_logs_and_trades_is_shown_as_text(
    browser: Browser, live_portal: LivePortal, trader: Trader
) -> None:
    assert repr(MARKUP) in source("MarkupWriter")
    job_id = _submitted(trader.client, trader.markup, pairs=["BTC/USDT"], max_open_trades=1)
    page, problems = _signed_in(browser, live_portal, trader.client)
    page.goto(f"{live_portal.url}/app/jobs/{job_id}")
    _sees_live_logs_then_results(page, MARKUP)
    log = page.locator("#job-log")
    expect(log).to_contain_text(f"BTC/USDT {MARKUP}")
    tags = page.locator("#trades-table td.tag-cell", has_text=MARKUP)
    assert tags.count() > 0
    for scope in ("#job-log", "#trades-table", "main"):
        assert page.locator(f"{scope} img, {scope} script:not([src]):not([type])").count() == 0
    assert problems.clean(), problems


def test_the_forms_mistakes_are_explained_in_french_and_what_was_typed_is_kept(
    http: TestClient, browser: Browser, live_portal: LivePortal
) -> None:
    client = sign_up(http, "Typist", verified=False)
    strategy_id = upload_strategy(client, "RsiHyper")
    page, problems = _signed_in(browser, live_portal, client)
    page.goto(f"{live_portal.url}/app/jobs/new")
    page.locator("#pairs").select_option(["BTC/USDT", "ETH/BTC"])
    page.get_by_label("Premier jour").fill("2024-02-01")
    page.get_by_label("Dernier jour").fill("2024-01-01")
    page.get_by_label("Mise par trade").fill("2500")
    page.get_by_label("Solde de départ").fill("1000")
    page.get_by_role("button", name="Lancer le job").click()

    expect(page.get_by_role("alert")).to_have_text("Vérifiez les champs signalés.")
    expect(page.locator("#error-pairs")).to_contain_text("cotées dans une seule devise")
    expect(page.locator("#error-end")).to_have_text("La fin doit venir après le début.")
    expect(page.locator("#error-stake_amount")).to_have_text(
        "La mise ne peut pas dépasser le solde de départ."
    )
    expect(page.locator("#stake_amount")).to_have_value("2500")
    expect(page.locator("#start")).to_have_value("2024-02-01")
    expect(page.locator("#strategy_id")).to_have_value(strategy_id)
    assert sorted(
        page.locator("#pairs").evaluate(
            "(select) => Array.from(select.selectedOptions).map((option) => option.value)"
        )
    ) == ["BTC/USDT", "ETH/BTC"]

    # Corrected, it is refused by the service for what only the service knows.
    page.locator("#pairs").select_option(["BTC/USDT"])
    page.get_by_label("Dernier jour").fill("2024-02-03")
    page.get_by_label("Mise par trade").fill("100")
    page.get_by_role("button", name="Lancer le job").click()
    expect(page.get_by_role("alert")).to_have_text(
        "Vérifiez d'abord votre adresse e-mail : ouvrez le lien que nous vous avons envoyé."
    )
    expect(page.locator("#end")).to_have_value("2024-02-03")
    assert client.http.get("/api/v1/jobs", headers=client.auth).json() == []
    assert problems.clean(), problems


def _ended(
    client: Client, strategy_id: str | None, kind: str, status: JobStatus, **fields: Any
) -> str:
    """A job of the client's as the worker leaves it when it ends `status`."""
    config = {**CONFIG, "pairs": ["BTC/USDT"]}
    if kind == "download-data":
        config = {key: config[key] for key in ("exchange", "pairs", "timeframe", "timerange")}
    body = {"kind": kind, "strategy_id": strategy_id, "config": config}
    response = client.http.post("/api/v1/jobs", json=body, headers=client.auth)
    assert response.status_code == 202, response.text
    job_id = str(response.json()["id"])
    with session_scope() as session:
        job = session.get_one(Job, uuid.UUID(job_id))
        jobs.advance(job, JobStatus.STARTING)
        jobs.advance(job, JobStatus.RUNNING, container_id="c" * 64)
        jobs.append_log(session, job.id, 1, f"{MARKUP}\nfreqtrade 2026.9\n")
        jobs.advance(job, status, **fields)
    return job_id


def test_a_job_that_failed_was_pruned_or_downloaded_data_has_its_page_in_both_languages(
    http: TestClient, browser: Browser, live_portal: LivePortal
) -> None:
    client = subscribe(sign_up(http, "States"))
    strategy_id = upload_strategy(client, "RsiHyper")
    failed = _ended(
        client, strategy_id, "backtest", JobStatus.FAILED, exit_code=2, error=f"crashed: {MARKUP}"
    )
    pruned = _ended(client, strategy_id, "backtest", JobStatus.TIMED_OUT, output_pruned_at=utcnow())
    data = _ended(client, None, "download-data", JobStatus.SUCCEEDED, exit_code=0)
    with session_scope() as session:
        jobs.store_result(
            session,
            uuid.UUID(data),
            DataSummary(
                kind="download-data",
                exchange="binance",
                timeframe="5m",
                timerange="20240101-20240103",
                data=DataFingerprint(
                    sha256="0" * 64,
                    startup_candles=0,
                    pairs=[
                        DataPairRow(
                            pair="BTC/USDT",
                            candles=577,
                            first_ms=1704067200000,
                            last_ms=1704240000000,
                        )
                    ],
                ),
            ),
        )
        jobs.store_archive(session, uuid.UUID(data), "binance-5m-20240101-20240103.zip", b"PK")
    page, problems = _signed_in(browser, live_portal, client)
    page.goto(f"{live_portal.url}/app/jobs/{failed}")
    expect(page.locator("#job-status")).to_have_text("Échec")
    expect(page.get_by_role("alert")).to_contain_text(f"crashed: {MARKUP}")
    expect(page.locator("#job-log")).to_contain_text(MARKUP)  # shown open: there is no result
    page.goto(f"{live_portal.url}/app/jobs/{pruned}")
    expect(page.locator("#job-status")).to_have_text("Temps dépassé")
    expect(page.locator("main")).to_contain_text("ont été supprimés le")
    assert page.locator("#job-log").count() == 0
    page.goto(f"{live_portal.url}/app/jobs/{data}")
    expect(page.locator("main")).to_contain_text("577")
    page.goto(f"{live_portal.url}/app/jobs?status=failed")
    expect(page.locator("table.jobs tbody tr")).to_have_count(1)
    page.goto(f"{live_portal.url}/app/jobs?kind=download-data")
    expect(page.locator("table.jobs tbody tr")).to_have_count(1)
    page.get_by_label("Langue").select_option("en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Jobs")
    expect(page.locator("table.jobs")).to_contain_text("Data download")
    for job_id, status in ((failed, "Failed"), (pruned, "Timed out"), (data, "Succeeded")):
        page.goto(f"{live_portal.url}/app/jobs/{job_id}")
        expect(page.locator("#job-status")).to_have_text(status)
    page.goto(f"{live_portal.url}/app/jobs/new?from={failed}")
    expect(page.locator("#strategy_id")).to_have_value(strategy_id)
    assert page.locator("main img").count() == 0
    assert problems.clean(), problems
