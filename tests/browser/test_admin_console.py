"""The operator's console in Chromium, in French: an administrator logs in with a second
factor, finds a client, suspends the account with a reason; the client sees that reason on the
dashboard and when a job is refused, rendered as text; the suspension is lifted. A quota
override reaches the client's next job. A row changed behind fta's back is flagged in the
audit log viewer where its chain breaks. A stuck job is stopped from the operations page."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, expect
from sqlalchemy.engine import Engine

from tests.support.admins import create_admin
from tests.support.api import leave_nothing_waiting, sign_up, subscribe, upload_strategy
from tests.support.audit import forge_audit_row
from tests.support.browser import LivePortal, PageProblems, log_in, open_page
from tests.support.jobs import wait_for_job
from tests.support.sandbox import Sandbox

JOB_PAGE = re.compile(r"/app/jobs/[0-9a-f-]{36}$")
# Markup in the reason: shown as text on both sides, never run.
REASON = 'Trop de requêtes vers l\'échange <img src=x onerror="alert(1)">'


def _admin_page(browser: Browser, live_portal: LivePortal) -> tuple[Page, PageProblems]:
    admin = create_admin()
    page, problems = open_page(browser)
    page.goto(live_portal.url + "/login")
    page.get_by_label("Adresse e-mail").fill(admin.email)
    page.get_by_label("Mot de passe").fill(admin.password)
    page.get_by_role("button", name="Se connecter").last.click()
    expect(page).to_have_url(re.compile(r"/login/2fa"))
    page.get_by_label("Code de vérification").fill(admin.recovery_codes.pop())
    page.get_by_role("button", name="Se connecter").last.click()
    expect(page).to_have_url(live_portal.url + "/admin")
    return page, problems


def test_an_administrator_suspends_a_client_who_sees_why_no_job_starts(
    browser: Browser, live_portal: LivePortal, http: TestClient
) -> None:
    client = subscribe(sign_up(http, "Abuser"))
    strategy_id = upload_strategy(client, "RsiHyper")
    try:
        admin, admin_problems = _admin_page(browser, live_portal)
        expect(admin.get_by_role("heading", name="Comptes clients")).to_be_visible()
        admin.get_by_label("Identifiant, nom ou e-mail").fill(client.email)
        admin.get_by_role("button", name="Rechercher").click()
        admin.get_by_role("link", name="Abuser").click()
        expect(admin).to_have_url(f"{live_portal.url}/admin/tenants/{client.tenant_id}")
        admin.locator("#suspension").get_by_label("Motif que le client lira").fill(REASON)
        admin.get_by_role("button", name="Suspendre le compte").click()
        expect(admin.locator(".suspension-reason")).to_have_text(REASON)

        trader, trader_problems = open_page(browser)
        log_in(trader, live_portal, client.email, client.password)
        banner = trader.locator("#suspension")
        expect(banner).to_contain_text("Votre compte est suspendu par fta")
        expect(banner.locator(".suspension-reason")).to_have_text(REASON)
        assert trader.locator("#suspension img").count() == 0

        trader.goto(f"{live_portal.url}/app/jobs/new?strategy={strategy_id}")
        trader.locator("#pairs").select_option(["BTC/USDT"])
        trader.get_by_label("Premier jour").fill("2024-01-01")
        trader.get_by_label("Dernier jour").fill("2024-01-03")
        trader.get_by_role("button", name="Lancer le job").click()
        expect(trader.get_by_role("alert")).to_have_text(
            f"Votre compte est suspendu par fta ({REASON}) : aucun job ne peut démarrer. "
            "Contactez le support."
        )

        admin.get_by_role("button", name="Lever la suspension").click()
        expect(admin.get_by_role("button", name="Suspendre le compte")).to_be_visible()
        trader.goto(live_portal.url + "/app")
        expect(trader.get_by_role("heading", name="Bonjour Abuser")).to_be_visible()
        expect(trader.locator("#suspension")).to_have_count(0)
        assert admin_problems.clean(), admin_problems
        assert trader_problems.clean(), trader_problems
    finally:
        leave_nothing_waiting(client)


def test_an_administrators_quota_override_reaches_the_clients_next_job(
    browser: Browser, live_portal: LivePortal, http: TestClient
) -> None:
    client = subscribe(sign_up(http, "Hyperopter"))
    strategy_id = upload_strategy(client, "RsiHyper")
    last_day = (datetime.now(UTC) + timedelta(days=7)).date()
    try:
        admin, admin_problems = _admin_page(browser, live_portal)
        admin.goto(f"{live_portal.url}/admin/tenants/{client.tenant_id}")
        quotas = admin.locator("#quotas")
        quotas.get_by_text("Déroger aux quotas pour un temps").click()
        quotas.get_by_label("Durée maximale d'un job (minutes)").fill("600")
        quotas.get_by_label("Dernier jour").fill(last_day.isoformat())
        quotas.get_by_label("Motif que le client lira").fill("Campagne d'hyperopt longue")
        quotas.get_by_role("button", name="Appliquer la dérogation").click()
        expect(admin.locator(".override-reason")).to_have_text("Campagne d'hyperopt longue")
        longest = admin.locator("#quotas tbody tr").filter(has_text="Durée maximale")
        expect(longest.locator("td").nth(1)).to_have_text("600")

        trader, trader_problems = open_page(browser)
        log_in(trader, live_portal, client.email, client.password)
        expect(trader.locator("#quota-override .override-reason")).to_have_text(
            "Campagne d'hyperopt longue"
        )
        trader.goto(f"{live_portal.url}/app/jobs/new?strategy={strategy_id}")
        expect(trader.locator("#max_minutes")).to_have_attribute("max", "600")
        trader.locator("#pairs").select_option(["BTC/USDT"])
        trader.get_by_label("Premier jour").fill("2024-01-01")
        trader.get_by_label("Dernier jour").fill("2024-01-03")
        trader.locator("#max_minutes").fill("500")
        trader.get_by_role("button", name="Lancer le job").click()
        expect(trader).to_have_url(JOB_PAGE)
        job_id = trader.url.rsplit("/", 1)[1]
        job = client.http.get(f"/api/v1/jobs/{job_id}", headers=client.auth).json()
        assert job["max_seconds"] == 500 * 60

        admin.get_by_role("button", name="Mettre fin à la dérogation").click()
        expect(admin.locator(".override-reason")).to_have_count(0)
        assert admin_problems.clean(), admin_problems
        assert trader_problems.clean(), trader_problems
    finally:
        leave_nothing_waiting(client)


def test_a_tampered_audit_row_is_flagged_where_the_chain_breaks(
    browser: Browser, live_portal: LivePortal, http: TestClient, owner_engine: Engine
) -> None:
    client = sign_up(http, "Audited")
    http.post("/api/v1/auth/logout", headers=client.auth)
    forge_audit_row(owner_engine, client.tenant_id, 2, "ip", "203.0.113.9")

    admin, problems = _admin_page(browser, live_portal)
    admin.get_by_role("link", name="Journal d'audit").click()
    expect(admin.locator("#chain-status")).to_be_visible()  # the platform's, first
    admin.get_by_label("Chaîne (platform, ou l'identifiant d'un compte)").fill(client.tenant_id)
    admin.get_by_role("button", name="Ouvrir").click()
    expect(admin.get_by_role("alert")).to_contain_text("rompue à l'événement n° 2")
    broken = admin.locator("#audit-events tr.broken")
    expect(broken).to_have_count(1)
    expect(broken.locator("td").first).to_have_text("2")
    expect(broken).to_contain_text("203.0.113.9")
    expect(broken).to_contain_text("rompue ici")
    admin.get_by_role("link", name="Vérifier toutes les chaînes").click()
    expect(admin.locator("#all-chains")).to_contain_text(client.tenant_id)
    assert problems.clean(), problems


def test_an_administrator_stops_a_running_job_from_the_operations_page(
    browser: Browser, live_portal: LivePortal, http: TestClient, sandbox: Sandbox
) -> None:
    client = subscribe(sign_up(http, "Stuck"))
    sandbox.forget_tenant(client.tenant_id)
    body = {
        "kind": "backtest",
        "strategy_id": upload_strategy(client, "Sleeper"),
        "config": {
            "exchange": "binance",
            "pairs": ["BTC/USDT"],
            "timeframe": "5m",
            "timerange": "20240101-20240103",
            "stake_amount": 100,
            "max_open_trades": 1,
        },
    }
    try:
        job_id = client.http.post("/api/v1/jobs", json=body, headers=client.auth).json()["id"]
        wait_for_job(client, job_id, {"running"}, timeout=240)
        admin, problems = _admin_page(browser, live_portal)
        admin.get_by_role("link", name="Exploitation").click()
        expect(admin.locator("#workers")).to_contain_text("répond")
        row = admin.locator(f"#running-jobs tr[data-job='{job_id}']")
        expect(row).to_contain_text("Stuck")
        row.get_by_role("button", name="Arrêter le job").click()  # confirmed
        expect(admin.locator(f"#running-jobs tr[data-job='{job_id}']")).to_contain_text(
            "arrêt demandé"
        )
        job = wait_for_job(client, job_id, {"cancelled", "failed"}, timeout=120)
        assert job["status"] == "cancelled", job
        admin.reload()
        expect(admin.locator(f"#running-jobs tr[data-job='{job_id}']")).to_have_count(0)

        # The job made the account's disk: measured, it is listed with its share used.
        sandbox.measure_disks()
        admin.reload()
        expect(admin.locator("#workers")).to_contain_text("mesurés le")
        disk = admin.locator(f"#disks tr[data-disk='{client.tenant_id}']")
        expect(disk).to_contain_text("Stuck")
        expect(disk).to_contain_text(re.compile(r"\d+ %"))
        disk.get_by_role("link", name="Stuck").click()
        expect(admin.locator("#disk")).to_contain_text(re.compile(r"occupés sur .+ \(\d+ %\)"))
        assert problems.clean(), problems
    finally:
        leave_nothing_waiting(client)


def test_the_revenue_and_operations_pages_open_in_french(
    browser: Browser, live_portal: LivePortal
) -> None:
    admin, problems = _admin_page(browser, live_portal)
    admin.get_by_role("link", name="Chiffre d'affaires").click()
    expect(
        admin.get_by_role("heading", name="Facturé et TVA collectée, par régime")
    ).to_be_visible()
    month = datetime.now(UTC).strftime("%Y-%m")
    export = admin.get_by_role("link", name="Écritures comptables (colonnes du FEC, CSV)")
    expect(export).to_have_attribute("href", f"/admin/revenue/{month}/accounting.csv")
    with admin.expect_download() as download:
        export.click()
    assert download.value.suggested_filename == f"fta-ecritures-{month}.csv"
    admin.get_by_role("link", name="Exploitation").click()
    expect(admin.get_by_role("heading", name="Jobs en cours d'exécution")).to_be_visible()
    assert problems.clean(), problems


def test_an_administrator_creates_changes_and_retires_a_plan(
    browser: Browser, live_portal: LivePortal
) -> None:
    code = f"trader-{secrets.token_hex(2)}"
    admin, problems = _admin_page(browser, live_portal)
    admin.get_by_role("link", name="Offres").click()
    admin.get_by_text("Nouvelle offre").click()
    form = admin.locator("#new-plan")
    form.get_by_label("Code (minuscules, chiffres, - ou _)").fill(code)
    form.get_by_label("Nom").fill("Trader")
    form.get_by_label("Prix mensuel (€ HT)").fill("19,90")
    form.get_by_label("Bots actifs").fill("abc")
    form.get_by_role("button", name="Créer l'offre").click()
    expect(admin.get_by_role("alert")).to_contain_text("L'offre a été refusée")
    expect(admin.locator("#new-plan").get_by_label("Prix mensuel (€ HT)")).to_have_value("19,90")
    admin.locator("#new-plan").get_by_label("Bots actifs").fill("2")
    admin.locator("#new-plan").get_by_role("button", name="Créer l'offre").click()
    expect(admin).to_have_url(f"{live_portal.url}/admin/plans/{code}")
    expect(admin.locator("#plan-status")).to_contain_text("19,90")
    expect(admin.locator("#plan-status")).to_contain_text("23,88")  # TTC

    admin.goto(live_portal.url + "/")
    expect(admin.get_by_text("Trader", exact=True)).to_have_count(1)  # on offer
    admin.goto(f"{live_portal.url}/admin/plans/{code}")
    edit = admin.locator("#edit-plan")
    edit.get_by_label("Prix mensuel (€ HT)").fill("24,90")
    edit.get_by_role("button", name="Enregistrer l'offre").click()
    expect(admin.locator("#plan-status")).to_contain_text("24,90")
    admin.get_by_role("button", name="Retirer l'offre").click()  # confirmed
    expect(admin.locator("#plan-status")).to_contain_text("retirée")
    admin.goto(live_portal.url + "/")
    expect(admin.get_by_text("Trader", exact=True)).to_have_count(0)
    assert problems.clean(), problems
