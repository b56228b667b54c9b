"""The worker's erasure rounds, step by step, their containers run by the in-memory runtime
(tests/support/fake_runtime.py): no Docker. A round waits for what still runs and takes the
erasure up where the last one stopped; a live PayPal subscription with PayPal unreachable
holds its end (an operator alert once it lasts); a payment that waits for its invoice keeps the
billing identity until it is invoiced. The whole path on the real engine, with the PayPal
stand-in: test_account_erasure.py."""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from fta.accounts.models import Tenant, TenantStatus, User
from fta.accounts.service import authenticate
from fta.billing.alerts.models import BillingAlert
from fta.billing.paypal.models import Payment, PaymentKind, Subscription, SubscriptionStatus
from fta.bots import service as bots
from fta.bots.models import ActualState, Bot
from fta.db import session_scope, utcnow
from fta.privacy.erasure import STUCK_AFTER, erase_pending, request_erasure
from fta.runtime import ContainerSpec, Limits
from fta.settings import get_settings
from fta.strategies.models import Strategy
from fta.worker.network_slots import take_slot
from fta.worker.warm_pool import WARM_OWNER_PREFIX
from tests.support.api import Client, sign_up, upload_strategy
from tests.support.fake_runtime import FakeRuntime

LIMITS = Limits(nano_cpus=500_000_000, memory_bytes=64 << 20, pids=64, tmpfs_bytes=1 << 20)
IDENTITY = {
    "customer_type": "private",
    "legal_name": "Jeanne Leroy",
    "address_line1": "8 quai des Chartrons",
    "postcode": "33000",
    "city": "Bordeaux",
    "country": "FR",
}
BOT_CONFIG = {
    "exchange": "binance",
    "pairs": ["BTC/USDT"],
    "timeframe": "5m",
    "stake_amount": 100,
    "max_open_trades": 1,
    "dry_run_wallet": 1000,
}


def _deleted(http: TestClient, name: str) -> Client:
    """A client with a billing identity and a network slot, then its account deleted (as on
    its page)."""
    client = sign_up(http, name)
    saved = http.put("/api/v1/billing/identity", json=IDENTITY, headers=client.auth)
    assert saved.status_code == 200, saved.text
    with session_scope() as session:
        take_slot(session, client.tenant_id, get_settings(), utcnow())
        principal = authenticate(session, client.token)
    with session_scope() as session:
        request_erasure(
            session, principal, password=client.password, confirmation=client.email, ip=None
        )
    return client


def _runner_with_network(tenant_id: str) -> tuple[FakeRuntime, str]:
    runner = FakeRuntime()
    runner.ensure_tenant_network(tenant_id, 0)
    runner.ensure_tenant_volume(tenant_id, 16 << 20)
    warm = runner.plant(
        ContainerSpec(
            tenant_id=tenant_id,
            owner_kind="job",
            owner_id=f"{WARM_OWNER_PREFIX}1",
            image="fake",
            command=["true"],
            env={},
            limits=LIMITS,
            mounts=[],
            network=f"fta-client-{tenant_id}",
        )
    )
    return runner, warm


def _status(tenant_id: str) -> str:
    with session_scope() as session:
        return session.get_one(Tenant, tenant_id).status


def test_a_round_waits_for_a_bot_still_stopping_and_the_next_one_goes_on(
    http: TestClient,
) -> None:
    client = sign_up(http, "Stopping")
    strategy_id = upload_strategy(client, "Quick")
    created = http.post(
        "/api/v1/bots",
        json={"name": "slow", "strategy_id": strategy_id, "config": BOT_CONFIG},
        headers=client.auth,
    )
    assert created.status_code == 201, created.text
    bot_id = uuid.UUID(created.json()["id"])
    with session_scope() as session:
        bot = bots.lock_bot(session, bot_id)
        assert bot is not None
        bots.advance(bot, ActualState.STARTING, container_id="c" * 12)
        bots.advance(bot, ActualState.STOPPING)
        principal = authenticate(session, client.token)
    with session_scope() as session:
        request_erasure(
            session, principal, password=client.password, confirmation=client.email, ip=None
        )
    runner, warm = _runner_with_network(client.tenant_id)

    # The bot is still stopping: nothing is removed yet, nothing erased.
    assert erase_pending(runner, None, utcnow(), tenants={client.tenant_id}) == []
    assert runner.called("remove") == [] and runner.called("remove_tenant_network") == []
    assert _status(client.tenant_id) == TenantStatus.ERASING
    with session_scope() as session:
        assert session.get(Strategy, uuid.UUID(strategy_id)) is not None

    # Stopped: the next round removes what is left and erases the rows.
    with session_scope() as session:
        bot = bots.lock_bot(session, bot_id)
        assert bot is not None
        bots.advance(bot, ActualState.STOPPED)
    erased = erase_pending(runner, None, utcnow(), tenants={client.tenant_id})
    assert erased == [client.tenant_id]
    assert runner.called("remove") == [warm]
    assert runner.called("remove_tenant_network") == [client.tenant_id]
    assert runner.called("remove_tenant_volume") == [f"fta-data-{client.tenant_id}"]
    assert runner.networks == {} and runner.volumes == {}
    with session_scope() as session:
        assert session.get(Bot, bot_id) is None
        assert session.get(Strategy, uuid.UUID(strategy_id)) is None
        assert session.get_one(Tenant, client.tenant_id).subnet_index is None
    # Erased: later rounds leave it alone.
    assert erase_pending(runner, None, utcnow(), tenants={client.tenant_id}) == []
    assert runner.called("remove_tenant_network") == [client.tenant_id]


def test_a_live_subscription_holds_the_erasures_end_while_paypal_is_unreachable(
    http: TestClient,
) -> None:
    client = _deleted(http, "Subscribed")
    paypal_id = f"I-{secrets.token_hex(6).upper()}"
    with session_scope() as session:
        session.add(
            Subscription(
                tenant_id=client.tenant_id,
                paypal_subscription_id=paypal_id,
                plan_code="pro",
                status=SubscriptionStatus.ACTIVE,
                paypal_status="ACTIVE",
                last_state={"id": paypal_id, "status": "ACTIVE", "subscriber": {"name": "x"}},
            )
        )
    runner, _ = _runner_with_network(client.tenant_id)
    key = f"account-erasure:{client.tenant_id}"

    # The data goes all the same; the account stays being erased, its billing identity kept.
    assert erase_pending(runner, None, utcnow(), tenants={client.tenant_id}) == []
    assert runner.called("remove_tenant_volume") == [f"fta-data-{client.tenant_id}"]
    with session_scope() as session:
        assert session.scalar(select(User.id).where(User.tenant_id == client.tenant_id)) is None
        tenant = session.get_one(Tenant, client.tenant_id)
        assert tenant.status == TenantStatus.ERASING and tenant.legal_name == "Jeanne Leroy"
        assert session.scalar(select(BillingAlert.id).where(BillingAlert.key == key)) is None
    # Still held an hour later: the operators are told.
    later = utcnow() + STUCK_AFTER + timedelta(minutes=1)
    assert erase_pending(runner, None, later, tenants={client.tenant_id}) == []
    with session_scope() as session:
        alert = session.scalars(select(BillingAlert).where(BillingAlert.key == key)).one()
        assert alert.resolved_at is None and "PayPal" in alert.message

    # Once cancelled (here by hand, as PayPal's own page would), the erasure goes through.
    with session_scope() as session:
        session.execute(
            update(Subscription)
            .where(Subscription.paypal_subscription_id == paypal_id)
            .values(status=SubscriptionStatus.CANCELLED)
        )
    assert erase_pending(runner, None, later, tenants={client.tenant_id}) == [client.tenant_id]
    with session_scope() as session:
        assert session.get_one(BillingAlert, alert.id).resolved_at is not None
        kept = session.scalars(
            select(Subscription).where(Subscription.paypal_subscription_id == paypal_id)
        ).one()
        assert kept.last_state == {"id": paypal_id, "status": "ACTIVE"}


def test_a_payment_waiting_for_its_invoice_keeps_the_billing_identity(http: TestClient) -> None:
    client = _deleted(http, "Paying")
    paypal_id = f"I-{secrets.token_hex(6).upper()}"
    sale = f"S-{secrets.token_hex(6).upper()}"
    with session_scope() as session:
        session.add(
            Subscription(
                tenant_id=client.tenant_id,
                paypal_subscription_id=paypal_id,
                plan_code="pro",
                status=SubscriptionStatus.CANCELLED,
                paypal_status="CANCELLED",
                last_state={"id": paypal_id, "status": "CANCELLED"},
            )
        )
        session.add(
            Payment(
                kind=PaymentKind.SALE,
                paypal_id=sale,
                sale_id=sale,
                paypal_subscription_id=paypal_id,
                amount_cents=9480,
                currency="EUR",
                state="completed",
                occurred_at=utcnow(),
            )
        )
    runner, _ = _runner_with_network(client.tenant_id)

    # Everything else goes; the identity the invoice is made from stays meanwhile.
    assert erase_pending(runner, None, utcnow(), tenants={client.tenant_id}) == []
    with session_scope() as session:
        tenant = session.get_one(Tenant, client.tenant_id)
        assert tenant.status == TenantStatus.ERASING and tenant.legal_name == "Jeanne Leroy"
        users = select(func.count(User.id)).where(User.tenant_id == client.tenant_id)
        assert session.scalar(users) == 0
    assert runner.called("remove_tenant_volume") == [f"fta-data-{client.tenant_id}"]

    # Invoiced (by the billing round): the next erasure round finishes.
    with session_scope() as session:
        session.execute(
            update(Payment).where(Payment.paypal_id == sale).values(invoiced_at=utcnow())
        )
    assert erase_pending(runner, None, utcnow(), tenants={client.tenant_id}) == [client.tenant_id]
    with session_scope() as session:
        tenant = session.get_one(Tenant, client.tenant_id)
        assert (tenant.status, tenant.legal_name, tenant.postcode) == ("erased", None, None)
