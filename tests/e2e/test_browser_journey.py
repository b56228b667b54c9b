"""A new client's whole journey in Chromium, in French, against the stack `make up` starts
(nginx on 127.0.0.1:8080, portal, worker, socket proxy, gateway, Postgres), with the outside
services it talks to played by stand-ins on this host: a real SMTP server that keeps the
mails, and PayPal (tests/support/paypal_standin.py) under PayPal's own names
(tests/e2e/standins.compose.yml).

Sign-up, the mailed verification link, a strategy uploaded, a backtest whose logs stream and
whose equity chart and trades show, a hyperopt's best parameters, a dry-run bot started and
stopped, the month's usage, a PayPal subscription and the invoice of its first payment as a
PDF, the export of the account's data, and the account's deletion (its subscription
cancelled at PayPal, its network removed)."""

from __future__ import annotations

import json
import re
import secrets
import socket
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from aiosmtpd.controller import Controller
from playwright.sync_api import Browser, Page, Route, expect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from tests.support.browser import PageProblems, open_page
from tests.support.identities import SELLER_ENV
from tests.support.paypal_standin import PayPalStandin
from tests.support.smtp_sink import Inbox
from tests.support.stack import CONTROL_GATEWAY, PORTAL, REPO, Stack, running_stack

pytestmark = pytest.mark.docker

PASSWORD = "correct horse battery staple"  # pragma: allowlist secret
STRATEGY = REPO / "tests" / "integration" / "strategies" / "RsiHyper.py"
# PayPal's API and the host its webhook signing certificates are served from.
PAYPAL_NAMES = ("api-m.sandbox.paypal.com", "api.sandbox.paypal.com")
JOB_PAGE = re.compile(r"/app/jobs/[0-9a-f-]{36}$")
RUN_TIMEOUT_MS = 300_000


@dataclass
class Outside:
    """The stack, and the stand-ins for what it reaches outside this host."""

    stack: Stack
    paypal: PayPalStandin
    inbox: Inbox


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def outside() -> Iterator[Outside]:
    standins = Path(tempfile.mkdtemp(prefix="fta-standins-"))
    standins.chmod(0o755)
    paypal = PayPalStandin(address=CONTROL_GATEWAY, port=443, names=PAYPAL_NAMES)
    ca_file = standins / "paypal-ca.pem"
    ca_file.write_bytes(paypal.ca_pem)
    ca_file.chmod(0o644)
    smtp_port = _free_port()
    env = {
        "COMPOSE_FILE": ":".join(
            str(REPO / name) for name in ("docker-compose.yml", "tests/e2e/standins.compose.yml")
        ),
        "FTA_STANDINS_DIR": str(standins),
        "FTA_PAYPAL_CLIENT_ID": paypal.client_id,
        "FTA_PAYPAL_CLIENT_SECRET": paypal.client_secret,
        "FTA_PAYPAL_WEBHOOK_ID": paypal.webhook_id,
        "FTA_SMTP_HOST": CONTROL_GATEWAY,
        "FTA_SMTP_PORT": str(smtp_port),
        "FTA_SMTP_SECURITY": "none",
        # Payments are invoiced by the worker's billing round: soon after they arrive.
        "FTA_BILLING_CHECK_SECONDS": "5",
        # No invoice is issued without the seller's legal identity.
        **SELLER_ENV,
    }
    inbox = Inbox()
    try:
        with running_stack(**env) as stack:
            # The control network's gateway exists now: the stand-ins listen on it.
            smtp = Controller(inbox, hostname=CONTROL_GATEWAY, port=smtp_port)
            smtp.start()
            try:
                with paypal:
                    yield Outside(stack, paypal, inbox)
            finally:
                smtp.stop()
    finally:
        ca_file.unlink()
        standins.rmdir()


def _mailed_link(inbox: Inbox, address: str, path: str) -> str:
    """The link to `path` in the mail the worker hands to the SMTP server (within a minute)."""
    deadline = time.monotonic() + 60
    while not inbox.to(address):
        assert time.monotonic() < deadline, f"no mail to {address}"
        time.sleep(1)
    return inbox.link_to(address, path)


def _sign_up_and_verify(page: Page, outside: Outside, email: str) -> None:
    page.goto(PORTAL + "/")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.locator(".plan").first).to_contain_text("TTC")
    page.get_by_role("link", name="S'inscrire").first.click()
    page.get_by_label("Nom (le vôtre ou celui de votre société)").fill("Camille Martin")
    page.get_by_label("Adresse e-mail").fill(email)
    page.get_by_label("Mot de passe (10 caractères ou plus)").fill(PASSWORD)
    page.get_by_label("J'accepte les").check()
    page.get_by_role("button", name="Créer mon compte").click()
    expect(page).to_have_url(PORTAL + "/app")
    expect(page.get_by_role("heading", name="Bonjour Camille Martin")).to_be_visible()

    link = urlsplit(_mailed_link(outside.inbox, email, "/verify-email?token="))
    assert f"{link.scheme}://{link.netloc}" == PORTAL
    page.goto(f"{PORTAL}{link.path}?{link.query}")
    expect(page.get_by_role("heading", name="Adresse vérifiée")).to_be_visible()
    page.get_by_role("link", name="Aller au tableau de bord").click()
    expect(page.locator(".alert.warning")).to_have_count(0)


def _upload_strategy(page: Page) -> None:
    page.get_by_role("link", name="Stratégies").first.click()
    page.get_by_role("link", name="Nouvelle stratégie").first.click()
    # The editor is up once the page's script ran: the file input listens from then on.
    expect(page.locator(".fta-editor")).to_be_visible()
    page.get_by_label("Ou déposez un fichier .py").set_input_files(STRATEGY)
    expect(page.get_by_label("Nom (celui de la classe de la stratégie)")).to_have_value("RsiHyper")
    page.get_by_role("button", name="Enregistrer la stratégie").click()
    expect(page.get_by_role("heading", name="RsiHyper", exact=True)).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Stratégie enregistrée")


def _new_job(page: Page, kind: str) -> None:
    page.goto(PORTAL + "/app/jobs/new")
    page.locator("#strategy_id").select_option(label="RsiHyper — v1")
    page.locator(f"input[name=kind][value={kind}]").check()
    page.locator("#pairs").select_option(["BTC/USDT", "ETH/USDT"])
    page.get_by_label("Unité de temps").select_option("5m")
    page.get_by_label("Premier jour").fill("2024-01-01")
    page.get_by_label("Dernier jour").fill("2024-01-08")


def _logs_stream_then_results(page: Page) -> None:
    """Lines arrive in this very document while the job runs, then the results show."""
    page.evaluate("() => { window.sameDocument = true; }")
    expect(page.locator("#job-log[data-streamed]")).to_contain_text(
        "freqtrade", timeout=RUN_TIMEOUT_MS
    )
    assert page.evaluate("() => window.sameDocument === true"), "the lines came with a reload"
    expect(page.locator("#summary-cards")).to_be_visible(timeout=RUN_TIMEOUT_MS)
    expect(page.locator("#job-status")).to_contain_text("Terminé")


def _backtest(page: Page) -> None:
    _new_job(page, "backtest")
    page.get_by_label("Mise par trade").fill("100")
    page.get_by_label("Trades ouverts au maximum").fill("2")
    page.get_by_role("button", name="Lancer le job").click()
    expect(page).to_have_url(JOB_PAGE)
    _logs_stream_then_results(page)
    cards = page.locator("#summary-cards")
    trades = int(cards.locator(".metric", has_text="Trades").locator(".metric-value").inner_text())
    assert trades > 0
    page.wait_for_function(
        "() => window.Chart && window.Chart.getChart(document.getElementById('equity-chart'))"
    )
    points = page.evaluate(
        "() => Chart.getChart(document.getElementById('equity-chart')).data.datasets[0].data.length"
    )
    assert points == trades + 1  # the starting balance, then one point per closed trade
    expect(page.locator("#trades-table tbody tr")).to_have_count(trades)


def _hyperopt(page: Page) -> None:
    _new_job(page, "hyperopt")
    page.get_by_label("Époques").fill("5")
    page.locator("input[name=spaces][value=default]").uncheck()
    page.locator("input[name=spaces][value=buy]").check()
    page.get_by_role("button", name="Lancer le job").click()
    expect(page).to_have_url(JOB_PAGE)
    _logs_stream_then_results(page)
    best = page.locator("#best-params")
    expect(best).to_contain_text("buy_rsi")
    expect(page.locator("#summary-cards")).to_contain_text("sur 5")
    rows = page.locator("#epochs-table tbody tr")
    expect(rows.first).to_have_class(re.compile(r"\bbest\b"))


def _bot_websocket(email: str, bot_id: str) -> None:
    """The bot's own freqtrade websocket through nginx, as FreqUI opens it: the whitelist
    asked for comes back (once freqtrade's API server is up, moments after the bot runs)."""
    token = httpx.post(
        f"{PORTAL}/api/v1/auth/token", json={"email": email, "password": PASSWORD}, timeout=30
    ).json()["access_token"]
    url = f"ws{PORTAL.removeprefix('http')}/bots/{bot_id}/api/v1/message/ws?token={token}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with ws_connect(url, proxy=None, open_timeout=30) as bot_socket:
                bot_socket.send(json.dumps({"type": "whitelist"}))
                while (message := json.loads(bot_socket.recv(timeout=30)))["type"] != "whitelist":
                    pass
            break
        except ConnectionClosed:
            assert time.monotonic() < deadline, "the bot's websocket never answered"
            time.sleep(3)
    assert message == {"type": "whitelist", "data": ["BTC/USDT"]}


def _bot_started_and_stopped(page: Page, email: str) -> None:
    page.get_by_role("link", name="Bots", exact=True).click()
    page.get_by_role("link", name="Créer mon premier bot").click()
    page.get_by_label("Nom", exact=True).fill("rsi-dry-run")
    page.get_by_label("Stratégie").select_option(label="RsiHyper (v1)")
    page.get_by_label("Devise de mise").select_option("USDT")
    page.get_by_label("BTC/USDT").check()
    page.get_by_label("Unité de temps").select_option("5m")
    page.get_by_label("Trades ouverts au plus").fill("1")
    page.get_by_label("Mise par trade").fill("100")
    page.get_by_label("Portefeuille de départ (simulé)").fill("1 000")
    page.get_by_role("button", name="Créer le bot").click()
    expect(page).to_have_url(re.compile(r"/app/bots/[0-9a-f-]{36}$"))
    page.get_by_role("button", name="Démarrer", exact=True).click()
    expect(page.locator("h1 .state")).to_have_text("En marche", timeout=RUN_TIMEOUT_MS)
    expect(page.locator("#log span.arrived").first).to_be_attached(timeout=120_000)
    _bot_websocket(email, page.url.rsplit("/", 1)[1])
    page.get_by_role("button", name="Arrêter", exact=True).click()  # confirmed in the dialog
    expect(page.locator("h1 .state")).to_have_text("Arrêté", timeout=120_000)


def _usage(page: Page) -> None:
    page.get_by_role("link", name="Facturation").first.click()
    page.get_by_role("link", name="Consommation", exact=True).click()
    expect(
        page.get_by_role("heading", name=re.compile(r"^Consommation de .+ \d{4}"))
    ).to_be_visible()
    cpu = page.locator("table.quantities").get_by_role("row", name=re.compile("^Temps CPU"))
    expect(cpu).to_be_visible()
    page.wait_for_function(
        "() => window.Chart && Chart.getChart(document.getElementById('usage-chart'))"
    )


def _billing_identity(page: Page) -> None:
    page.get_by_role("link", name="Coordonnées de facturation").click()
    page.get_by_label("une personne physique").check()
    page.get_by_label("Nom figurant sur les factures").fill("Camille Martin")
    page.get_by_label("Adresse", exact=True).fill("1 rue de la Paix")
    page.get_by_label("Code postal").fill("75002")
    page.get_by_label("Ville").fill("Paris")
    page.get_by_role("button", name="Enregistrer mes coordonnées").click()
    expect(page.get_by_role("status")).to_contain_text("enregistrées")


def _subscribe(page: Page, paypal: PayPalStandin) -> str:
    """Subscribes to Pro: on to PayPal's approval page (the stand-in approves, as a buyer
    would there), back on the portal with the plan active. Returns the subscription's id."""

    def approve(route: Route) -> None:
        route.fulfill(status=302, headers={"location": paypal.approve(route.request.url)})

    page.route(f"https://{PAYPAL_NAMES[0]}/**", approve)
    page.get_by_role("link", name="Offres", exact=True).click()
    pro = page.locator("article.plan", has=page.get_by_role("heading", name=re.compile("^Pro")))
    pro.get_by_role("button", name="S'abonner à Pro sur PayPal").click()
    page.wait_for_url(re.compile(re.escape(PORTAL) + r"/app/billing/return\?"))
    expect(page.get_by_role("heading", name="Votre abonnement est actif")).to_be_visible()
    [subscription_id] = paypal.subscriptions
    return subscription_id


def _first_payment(paypal: PayPalStandin, subscription_id: str) -> None:
    """PayPal collects the first month and says so by a signed webhook through nginx; the
    portal fetches the signing certificate from PayPal's certificate host (the stand-in)."""
    delivered = paypal.send_webhook(
        PORTAL,
        paypal.cycle_paid(subscription_id, datetime.now(UTC)),
        cert_url=paypal.cert_url(host=PAYPAL_NAMES[1]),
    )
    assert delivered.status_code == 200, delivered.text
    assert delivered.json()["outcome"] == "applied"


def _invoice_pdf(page: Page) -> None:
    """The worker's billing round invoices the payment within seconds; its PDF downloads."""
    rows = page.locator("table.invoices tbody tr")
    deadline = time.monotonic() + 90
    while True:
        page.goto(PORTAL + "/app/billing/invoices")
        if rows.count():
            break
        assert time.monotonic() < deadline, "the payment was not invoiced"
        page.wait_for_timeout(3000)
    row = rows.first
    expect(row.locator("td.number")).to_have_text(re.compile(r"^F-\d{4}-\d{6}$"))
    expect(row).to_contain_text("94,80\xa0€")
    expect(row).to_contain_text("Payée")
    with page.expect_download() as download:
        row.get_by_role("link", name=re.compile("^Télécharger F-")).click()
    assert Path(download.value.path()).read_bytes().startswith(b"%PDF-")


def _export(page: Page, tmp_path: Path) -> str:
    """Downloads the account's data; returns the tenant's id the archive is named after."""
    page.goto(PORTAL + "/app/account/data")
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Télécharger mes données (.zip)").click()
    download = download_info.value
    name = re.fullmatch(r"fta-export-([a-z0-9]+)-.+\.zip", download.suggested_filename)
    assert name, download.suggested_filename
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    with zipfile.ZipFile(saved) as archive:
        names = set(archive.namelist())
    assert {"account.json", "strategies/RsiHyper/v1.py"} <= names, names
    for folder in ("jobs/", "bots/", "invoices/"):
        assert any(n.startswith(folder) for n in names), (folder, names)
    assert any(n.endswith(".pdf") for n in names), names
    return name.group(1)


def _delete_account(page: Page, email: str) -> None:
    page.goto(PORTAL + "/app/account/data")
    page.get_by_label("Votre mot de passe").fill(PASSWORD)
    page.get_by_label("Pour confirmer, saisissez votre adresse e-mail").fill(email)
    page.get_by_role("button", name="Supprimer mon compte").click()
    expect(page).to_have_url(PORTAL + "/app/account/data/deleted")
    expect(page.get_by_role("heading", name="Compte supprimé")).to_be_visible()
    page.goto(PORTAL + "/login")
    page.locator("#email").fill(email)
    page.locator("#password").fill(PASSWORD)
    page.locator("form.stacked button[type=submit]").click()
    expect(page.get_by_role("alert")).to_have_text("Adresse e-mail ou mot de passe incorrect.")


def _erased(outside: Outside, tenant_id: str, subscription_id: str) -> None:
    """The worker's erasure round cancels the subscription at PayPal and removes the
    tenant's network and data volume (within a few rounds)."""
    deadline = time.monotonic() + 180
    while tenant_id in outside.stack.tenant_ids():
        assert time.monotonic() < deadline, f"tenant {tenant_id}'s network or volume is left"
        time.sleep(3)
    assert outside.paypal.subscriptions[subscription_id]["status"] == "CANCELLED"


def _clean(problems: PageProblems) -> None:
    assert problems.clean(), problems


def test_a_new_client_goes_from_sign_up_to_deleting_the_account(
    browser: Browser, outside: Outside, tmp_path: Path
) -> None:
    email = f"journey-{secrets.token_hex(4)}@example.com"
    page, problems = open_page(browser)
    page.set_viewport_size({"width": 1280, "height": 900})
    _sign_up_and_verify(page, outside, email)
    _upload_strategy(page)
    _backtest(page)
    _hyperopt(page)
    _bot_started_and_stopped(page, email)
    _usage(page)
    _billing_identity(page)
    subscription_id = _subscribe(page, outside.paypal)
    _first_payment(outside.paypal, subscription_id)
    _invoice_pdf(page)
    tenant_id = _export(page, tmp_path)
    _delete_account(page, email)
    _erased(outside, tenant_id, subscription_id)
    _clean(problems)
