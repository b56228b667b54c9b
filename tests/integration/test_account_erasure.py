"""Deleting an account: refused at once everywhere, then erased by the worker (its bots stopped,
its jobs cancelled, its containers, network, data volume and disk removed, its PayPal
subscription cancelled, its rows deleted), its invoices kept and still readable by the
operator, and another account untouched. Real Docker, real PayPal stand-in, real Postgres."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from fta.accounts.models import AuthSession, BillingStatus, Tenant, TenantStatus, User
from fta.accounts.service import authenticate
from fta.audit.models import AuditEvent
from fta.billing.invoices.models import Invoice
from fta.billing.paypal import PayPal
from fta.billing.paypal.models import Subscription
from fta.billing.subscriptions import confirm_return, start_subscription
from fta.bots.models import Bot, BotLog, BotRun, BotTrade
from fta.cli import main
from fta.db import session_scope, utcnow
from fta.errors import Invalid, Unauthorized
from fta.jobs.models import Job, JobArchive, JobLogChunk, JobResult
from fta.mail.models import OutboxMail
from fta.privacy.erasure import erase_pending, request_erasure
from fta.runtime import DockerJobRunner
from fta.settings import get_settings
from fta.strategies.models import Strategy, StrategyVersion
from tests.support.api import Client, sign_up, upload_strategy
from tests.support.configs import ONE_PAIR_BOT, SHORT_BACKTEST
from tests.support.invoices import issue_test_invoice
from tests.support.jobs import wait_for_job
from tests.support.paypal_standin import PayPalStandin
from tests.support.sandbox import Sandbox

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

API = "/api/v1"
IDENTITY = {
    "customer_type": "private",
    "legal_name": "Claire Martin",
    "address_line1": "3 rue des Lilas",
    "postcode": "69003",
    "city": "Lyon",
    "country": "FR",
}


@pytest.fixture(scope="module")
def paypal(app_settings: None) -> Iterator[tuple[PayPalStandin, PayPal]]:
    with PayPalStandin() as standin:
        yield standin, standin.facade()


def _subscribe(http: TestClient, client: Client, standin: PayPalStandin, paypal: PayPal) -> str:
    """An active PayPal subscription to the plan "pro", approved by the buyer."""
    saved = http.put(f"{API}/billing/identity", json=IDENTITY, headers=client.auth)
    assert saved.status_code == 200, saved.text
    with session_scope() as session:
        approval = start_subscription(session, paypal, client.tenant_id, "pro")
    with standin.http_client() as browser:
        back = browser.get(approval, follow_redirects=False)
    assert back.status_code == 302, back.text
    subscription_id = back.headers["location"].split("subscription_id=")[1].split("&")[0]
    with session_scope() as session:
        confirm_return(session, paypal.client, subscription_id)
    assert standin.subscriptions[subscription_id]["status"] == "ACTIVE"
    return subscription_id


def _bot_with_a_container(http: TestClient, client: Client, strategy_id: str) -> str:
    created = http.post(
        f"{API}/bots",
        json={"name": "leaving", "strategy_id": strategy_id, "config": ONE_PAIR_BOT},
        headers=client.auth,
    )
    assert created.status_code == 201, created.text
    bot_id = str(created.json()["id"])
    assert http.post(f"{API}/bots/{bot_id}/start", headers=client.auth).status_code == 202
    deadline = time.monotonic() + 120
    while True:
        with session_scope() as session:
            bot = session.get(Bot, uuid.UUID(bot_id))
            if bot is not None and bot.container_id is not None:
                return bot_id
        assert time.monotonic() < deadline, "the bot never got its container"
        time.sleep(0.5)


def _erased(sandbox: Sandbox, paypal: PayPal, tenant_id: str, timeout: float = 240) -> None:
    """The worker's erasure, round after round (the sandbox's worker takes its own rounds
    too, without PayPal), until the account is erased."""
    runner = DockerJobRunner(get_settings(), extra_labels=sandbox.labels)
    deadline = time.monotonic() + timeout
    try:
        while True:
            erase_pending(runner, paypal, utcnow(), tenants={tenant_id})
            with session_scope() as session:
                if session.get_one(Tenant, tenant_id).status == TenantStatus.ERASED:
                    return
            assert time.monotonic() < deadline, "the account was not erased in time"
            time.sleep(1)
    finally:
        runner.close()


def _count(session: Any, query: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(query.subquery())))


def test_a_deleted_account_is_refused_at_once_then_erased_by_the_worker(
    http: TestClient,
    sandbox: Sandbox,
    paypal: tuple[PayPalStandin, PayPal],
    tmp_path: Path,
) -> None:
    standin, facade = paypal
    client = sign_up(http, "Partant")
    sandbox.forget_tenant(client.tenant_id)
    tenant = client.tenant_id
    other = sign_up(http, "Restant")
    other_strategy = upload_strategy(other, "Quick")
    other_invoice = issue_test_invoice(other.tenant_id)

    subscription_id = _subscribe(http, client, standin, facade)
    strategy_id = upload_strategy(client, "RsiQuick")
    job = {"kind": "backtest", "strategy_id": strategy_id, "config": SHORT_BACKTEST}
    first = http.post(f"{API}/jobs", json=job, headers=client.auth).json()["id"]
    assert wait_for_job(client, first)["status"] == "succeeded"
    bot_id = _bot_with_a_container(http, client, strategy_id)
    second = http.post(f"{API}/jobs", json=job, headers=client.auth).json()["id"]
    invoice_id = issue_test_invoice(tenant)
    pdf = http.get(f"{API}/invoices/{invoice_id}.pdf", headers=client.auth).content
    engine = docker.from_env()
    settings = get_settings()
    image = Path(settings.tenant_disk_root, "images", f"{tenant}.img")
    mount = Path(settings.tenant_disk_root, "mounts", tenant)
    assert engine.networks.get(f"fta-client-{tenant}") and image.exists()
    assert engine.volumes.get(f"fta-data-{tenant}")

    with session_scope() as session:
        principal = authenticate(session, client.token)
    # The wrong confirmation or password deletes nothing.
    for password, confirmation, refusal in (
        (client.password, "someone@example.com", Invalid),
        ("not the password", client.email, Unauthorized),
    ):
        with session_scope() as session, pytest.raises(refusal):
            request_erasure(
                session, principal, password=password, confirmation=confirmation, ip=None
            )
    with session_scope() as session:
        assert session.get_one(Tenant, tenant).status == TenantStatus.ACTIVE
        request_erasure(
            session,
            principal,
            password=client.password,
            confirmation=f" {client.email.upper()} ",
            ip="203.0.113.9",
        )

    # Refused at once: a new log-in, the token in hand.
    login = {"email": client.email, "password": client.password}
    refused = http.post(f"{API}/auth/token", json=login)
    assert refused.status_code == 401 and "deleted" in refused.json()["detail"]
    assert http.get(f"{API}/jobs", headers=client.auth).status_code == 401
    with session_scope() as session:
        assert session.get_one(Tenant, tenant).status == TenantStatus.ERASING
        assert session.get_one(Job, uuid.UUID(second)).status in (
            "cancelled",
            "running",
            "starting",
        )

    _erased(sandbox, facade, tenant)

    # Docker: no container, network, volume or disk of the account is left.
    assert engine.containers.list(all=True, filters={"label": f"fta.tenant={tenant}"}) == []
    for missing in (
        lambda: engine.networks.get(f"fta-client-{tenant}"),
        lambda: engine.volumes.get(f"fta-data-{tenant}"),
    ):
        with pytest.raises(docker.errors.NotFound):
            missing()
    assert not image.exists() and not mount.exists()
    engine.close()
    # PayPal bills it no more.
    assert standin.subscriptions[subscription_id]["status"] == "CANCELLED"

    jobs = [uuid.UUID(first), uuid.UUID(second)]
    with session_scope() as session:
        erased = session.get_one(Tenant, tenant)
        assert (erased.status, erased.billing_status) == (
            TenantStatus.ERASED,
            BillingStatus.CANCELLED,
        )
        assert erased.display_name == "" and erased.subnet_index is None
        assert (erased.legal_name, erased.address_line1, erased.city) == (None, None, None)
        for query in (
            select(Strategy).where(Strategy.tenant_id == tenant),
            select(StrategyVersion).where(StrategyVersion.strategy_id == uuid.UUID(strategy_id)),
            select(Job).where(Job.tenant_id == tenant),
            select(JobLogChunk).where(JobLogChunk.job_id.in_(jobs)),
            select(JobResult).where(JobResult.job_id.in_(jobs)),
            select(JobArchive).where(JobArchive.job_id.in_(jobs)),
            select(Bot).where(Bot.tenant_id == tenant),
            select(BotLog).where(BotLog.bot_id == uuid.UUID(bot_id)),
            select(BotTrade).where(BotTrade.bot_id == uuid.UUID(bot_id)),
            select(BotRun).where(BotRun.tenant_id == tenant),
            select(User).where(User.tenant_id == tenant),
            select(AuthSession).where(AuthSession.user_id == principal.user_id),
            select(OutboxMail).where(OutboxMail.to_address == client.email),
        ):
            assert _count(session, query) == 0, query
        subscription = session.scalars(
            select(Subscription).where(Subscription.paypal_subscription_id == subscription_id)
        ).one()
        assert subscription.status == "cancelled"
        assert set(subscription.last_state) <= {
            "id",
            "status",
            "plan_id",
            "create_time",
            "status_update_time",
        }
        invoice = session.get_one(Invoice, uuid.UUID(invoice_id))
        number = invoice.number
        actions = set(
            session.scalars(select(AuditEvent.action).where(AuditEvent.tenant_id == tenant))
        )
    assert {"account.signup", "account.erasure_requested", "account.erased"} <= actions
    # The invoice stays, and the operator still reads it as issued.
    written = tmp_path / f"{number}.pdf"
    assert main(["invoice-pdf", number, "--output", str(written)]) == 0
    assert written.read_bytes() == pdf
    assert main(["invoice-pdf", "F-1999-999999", "--output", str(tmp_path / "x.pdf")]) == 1
    # Gone for good: the address logs in nowhere.
    assert http.post(f"{API}/auth/token", json=login).status_code == 401

    # The other account is untouched.
    again = http.post(f"{API}/auth/token", json={"email": other.email, "password": other.password})
    assert again.status_code == 200
    headers = {"Authorization": f"Bearer {again.json()['access_token']}"}
    assert [s["id"] for s in http.get(f"{API}/strategies", headers=headers).json()] == [
        other_strategy
    ]
    assert http.get(f"{API}/invoices/{other_invoice}.pdf", headers=headers).status_code == 200
