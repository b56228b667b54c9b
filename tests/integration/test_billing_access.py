"""Access follows payment: a trial that ended or used its CPU-hours starts nothing (402,
saying why and where to pay); a failed payment leaves a grace, then suspension stops the
account's bots and refuses new jobs; reactivation restores access."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from fta.access.service import PAY_AT
from fta.accounts.models import BillingStatus, Tenant, TenantStatus
from fta.billing import account_states, metering
from fta.billing.account_states import apply_billing_state
from fta.bots import service as bots
from fta.bots.models import ActualState, Bot, DesiredState
from fta.db import session_scope, utcnow
from tests.support.api import Client, leave_nothing_waiting, sign_up, upload_strategy

API = "/api/v1"
PROBLEM_JSON = "application/problem+json"
JOB = {
    "kind": "backtest",
    "config": {
        "exchange": "binance",
        "pairs": ["BTC/USDT"],
        "timeframe": "5m",
        "timerange": "20240101-20240105",
        "stake_amount": 100,
        "max_open_trades": 1,
    },
}
BOT_CONFIG = {
    "exchange": "binance",
    "pairs": ["BTC/USDT"],
    "timeframe": "5m",
    "stake_amount": 100,
    "max_open_trades": 1,
    "dry_run_wallet": 1000,
}


@pytest.fixture
def client(http: TestClient) -> Iterator[Client]:
    client = sign_up(http)
    yield client
    # Leave nothing queued or wanting to run for a worker that may run later.
    leave_nothing_waiting(client)


def _bot(http: TestClient, client: Client, strategy_id: str) -> str:
    response = http.post(
        f"{API}/bots",
        json={"name": "gated", "strategy_id": strategy_id, "config": BOT_CONFIG},
        headers=client.auth,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _submit(http: TestClient, client: Client, strategy_id: str) -> tuple[int, str]:
    response = http.post(
        f"{API}/jobs", json={**JOB, "strategy_id": strategy_id}, headers=client.auth
    )
    if response.status_code == 402:
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.json()["title"] == "Payment required"
    return response.status_code, response.json().get("detail", "")


def _start(http: TestClient, client: Client, bot_id: str, action: str = "start") -> tuple[int, str]:
    response = http.post(f"{API}/bots/{bot_id}/{action}", headers=client.auth)
    return response.status_code, response.json().get("detail", "")


def _tenant(session_tenant_id: str) -> Tenant:
    with session_scope() as session:
        tenant = session.get(Tenant, session_tenant_id)
        assert tenant is not None
        session.expunge(tenant)
        return tenant


def _set_billing(tenant_id: str, status: BillingStatus, **shift: float) -> None:
    with session_scope() as session:
        tenant = session.get(Tenant, tenant_id)
        assert tenant is not None
        apply_billing_state(session, tenant, status, utcnow() + timedelta(**shift))


def test_a_new_account_is_on_a_trial_of_the_default_plan(http: TestClient, client: Client) -> None:
    tenant = _tenant(client.tenant_id)
    assert tenant.billing_status == "trialing" and tenant.plan.is_default
    assert tenant.trial_ends_at is not None
    assert timedelta(days=13, hours=23) < tenant.trial_ends_at - utcnow() <= timedelta(days=14)
    strategy_id = upload_strategy(client)
    assert _submit(http, client, strategy_id)[0] == 202


def test_an_ended_trial_refuses_jobs_and_bots_until_paid(http: TestClient, client: Client) -> None:
    strategy_id = upload_strategy(client)
    bot_id = _bot(http, client, strategy_id)
    with session_scope() as session:
        session.execute(
            update(Tenant)
            .where(Tenant.id == client.tenant_id)
            .values(trial_ends_at=utcnow() - timedelta(seconds=1))
        )
    for status, detail in (_submit(http, client, strategy_id), _start(http, client, bot_id)):
        assert status == 402
        assert "free trial ended" in detail and PAY_AT in detail

    # The worker's check suspends the account; its users still log in, to pay.
    with session_scope() as session:
        assert client.tenant_id in account_states.advance_billing_states(session, utcnow())
    tenant = _tenant(client.tenant_id)
    assert (tenant.billing_status, tenant.status) == ("suspended", "suspended")
    status, detail = _submit(http, client, strategy_id)
    assert status == 402 and "suspended for lack of payment" in detail and PAY_AT in detail
    assert http.get(f"{API}/usage", headers=client.auth).status_code == 200

    _set_billing(client.tenant_id, BillingStatus.ACTIVE)
    assert _tenant(client.tenant_id).status == TenantStatus.ACTIVE
    assert _submit(http, client, strategy_id)[0] == 202
    assert _start(http, client, bot_id)[0] == 202


def test_a_trial_that_used_its_cpu_hours_starts_nothing(http: TestClient, client: Client) -> None:
    strategy_id = upload_strategy(client)
    now = utcnow()
    with session_scope() as session:
        metering.record_usage_event(
            session,
            tenant_id=client.tenant_id,
            event_key="job:heavy",
            subject_kind="job",
            subject_id=uuid.uuid4(),
            cpu_seconds=Decimal(5 * 3600),
            ram_gb_seconds=Decimal(0),
            running_seconds=Decimal(5 * 3600),
            occurred_at=now,
            now=now,
        )
    status, detail = _submit(http, client, strategy_id)
    assert status == 402 and "CPU-hours are used up" in detail and PAY_AT in detail


def test_grace_then_suspension_stops_the_bot_and_refuses_jobs_until_reactivated(
    http: TestClient, client: Client
) -> None:
    strategy_id = upload_strategy(client)
    bot_id = _bot(http, client, strategy_id)
    _set_billing(client.tenant_id, BillingStatus.ACTIVE)
    assert _start(http, client, bot_id)[0] == 202
    with session_scope() as session:  # the worker's part: the bot runs
        bot = bots.lock_bot(session, uuid.UUID(bot_id))
        assert bot is not None
        bots.advance(bot, ActualState.STARTING)
        bots.advance(bot, ActualState.RUNNING)

    # A failed payment: a grace of 7 days, access kept; a second failure does not extend it.
    _set_billing(client.tenant_id, BillingStatus.PAST_DUE)
    grace_until = _tenant(client.tenant_id).grace_until
    assert grace_until is not None
    assert timedelta(days=6, hours=23) < grace_until - utcnow() <= timedelta(days=7)
    _set_billing(client.tenant_id, BillingStatus.PAST_DUE, days=3)
    assert _tenant(client.tenant_id).grace_until == grace_until
    assert _submit(http, client, strategy_id)[0] == 202

    # Past the grace: suspended; the bot supervisor stops the bot, new jobs are refused.
    with session_scope() as session:
        assert client.tenant_id not in account_states.advance_billing_states(session, utcnow())
        assert client.tenant_id in account_states.advance_billing_states(
            session, grace_until + timedelta(seconds=1)
        )
    with session_scope() as session:
        wanted = {
            str(bot.id): bots.wanted_state(bot, status)
            for bot, status in bots.bots_needing_action(session)
        }
    assert wanted[bot_id] is DesiredState.STOPPED
    status, detail = _submit(http, client, strategy_id)
    assert status == 402 and "grace period ended" in detail and PAY_AT in detail
    assert _start(http, client, bot_id, "restart")[0] == 402

    # Paid again: the bot is wanted running again and jobs are accepted.
    _set_billing(client.tenant_id, BillingStatus.ACTIVE)
    tenant = _tenant(client.tenant_id)
    assert (tenant.billing_status, tenant.status, tenant.grace_until) == ("active", "active", None)
    with session_scope() as session:
        bot = session.get(Bot, uuid.UUID(bot_id))
        assert bot is not None
        assert bots.wanted_state(bot, tenant.status) is DesiredState.RUNNING
    assert _submit(http, client, strategy_id)[0] == 202


def test_an_administrators_suspension_is_not_lifted_by_a_payment(
    http: TestClient, client: Client
) -> None:
    with session_scope() as session:
        session.execute(
            update(Tenant)
            .where(Tenant.id == client.tenant_id)
            .values(status=TenantStatus.SUSPENDED)
        )
    _set_billing(client.tenant_id, BillingStatus.ACTIVE)
    assert _tenant(client.tenant_id).status == TenantStatus.SUSPENDED
    assert http.get(f"{API}/usage", headers=client.auth).status_code == 200  # it still reads
    with session_scope() as session:
        session.execute(
            update(Tenant).where(Tenant.id == client.tenant_id).values(status=TenantStatus.ACTIVE)
        )
