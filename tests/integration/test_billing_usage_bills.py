"""A closed month's overage billed: our invoice once, then a PayPal invoice sent once."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert

from fta.access.service import can_start
from fta.accounts.models import Tenant
from fta.billing import metering, usage_collection
from fta.billing.account_states import advance_billing_states
from fta.billing.alerts.service import open_alerts, resolve
from fta.billing.invoices.models import Invoice
from fta.billing.models import UsageBill
from fta.billing.paypal import PayPal
from fta.billing.paypal.client import PayPalClient
from fta.billing.usage_bills import bill_closed_months
from fta.billing.usage_collection import send_usage_bills, track_usage_bills
from fta.db import session_scope, utcnow
from fta.plans.models import Plan
from fta.settings import get_settings
from tests.support.api import Client, sign_up
from tests.support.paypal_standin import PayPalStandin

PERIOD = "2039-05"
NOW = datetime(2039, 6, 5, tzinfo=UTC)
IDENTITY = {
    "customer_type": "private",
    "legal_name": "Camille Martin",
    "address_line1": "1 rue de la Paix",
    "postcode": "75002",
    "city": "Paris",
    "country": "FR",
}


@pytest.fixture(scope="module")
def paypal(app_settings: None) -> Iterator[tuple[PayPalStandin, PayPal]]:
    with PayPalStandin() as standin:
        yield standin, standin.facade()


def paying_client(
    http: TestClient, cpu_hours: Decimal, used_on: datetime = datetime(2039, 5, 10, tzinfo=UTC)
) -> Client:
    """A client on a plan with 1 CPU-hour included, that used `cpu_hours` on `used_on` (in
    PERIOD by default)."""
    client = sign_up(http, "Heavy")
    assert http.put("/api/v1/billing/identity", json=IDENTITY, headers=client.auth).is_success
    with session_scope() as session:
        base = session.scalars(select(Plan).where(Plan.is_default.is_(True))).one()
        session.execute(
            insert(Plan)
            .values(
                code="test-usage",
                name="Usage test",
                is_default=False,
                cpu=base.cpu,
                memory_mb=base.memory_mb,
                pids=base.pids,
                disk_mb=base.disk_mb,
                max_concurrent_jobs=base.max_concurrent_jobs,
                max_bots=base.max_bots,
                max_job_seconds=base.max_job_seconds,
                price_ht_cents=1000,
                included_cpu_hours=Decimal(1),
                overage_cpu_hour_eur=Decimal("0.50"),
                overage_ram_gb_hour_eur=Decimal("0.01"),
                overage_job_minute_eur=Decimal(0),
            )
            .on_conflict_do_nothing(index_elements=["code"])
        )
        plan_id = session.scalars(select(Plan.id).where(Plan.code == "test-usage")).one()
        session.execute(
            update(Tenant)
            .where(Tenant.id == client.tenant_id)
            .values(plan_id=plan_id, billing_status="active")
        )
        metering.record_usage_event(
            session,
            tenant_id=client.tenant_id,
            event_key=f"job:{uuid.uuid4()}",
            subject_kind="job",
            subject_id=uuid.uuid4(),
            cpu_seconds=cpu_hours * 3600,
            ram_gb_seconds=Decimal(7200),
            running_seconds=Decimal(3600),
            occurred_at=used_on,
            now=NOW,
        )
    return client


def bills_of(client: Client) -> list[tuple[int, str | None, int | None, bool]]:
    with session_scope() as session:
        rows = session.execute(
            select(UsageBill, Invoice)
            .outerjoin(Invoice, Invoice.id == UsageBill.invoice_id)
            .where(UsageBill.tenant_id == client.tenant_id)
        ).all()
        return [
            (
                bill.amount_ht_cents,
                invoice.number if invoice else None,
                invoice.total_ttc_cents if invoice else None,
                bill.sent_at is not None,
            )
            for bill, invoice in rows
        ]


def test_a_closed_months_overage_is_invoiced_and_sent_once(
    http: TestClient, paypal: tuple[PayPalStandin, PayPal]
) -> None:
    standin, api = paypal
    heavy = paying_client(http, Decimal(3))
    light = paying_client(http, Decimal("0.5"))
    with session_scope() as session:
        metering.close_period(session, PERIOD, NOW, timedelta(hours=48))
    bill_closed_months(session_scope, NOW)
    # 2 CPU-hours over at 0.50 (1.00), plus 2 GB·h of RAM × 2/3 at 0.01 (0.01): 1.01 EUR HT.
    ((amount, number, ttc, sent),) = bills_of(heavy)
    assert (amount, ttc, sent) == (101, 121, False) and number is not None
    assert bills_of(light) == [(0, None, None, False)]

    bill_closed_months(session_scope, NOW)  # again: nothing new
    with session_scope() as session:
        send_usage_bills(session, api, NOW)
    assert bills_of(heavy) == [(101, number, 121, True)]
    with session_scope() as session:
        paypal_id = session.scalars(
            select(UsageBill.paypal_invoice_id).where(UsageBill.tenant_id == heavy.tenant_id)
        ).one()
        assert paypal_id is not None
        send_usage_bills(session, api, NOW)  # sent bills are not sent again
    sent = api.client.get_invoice(paypal_id)
    assert sent["status"] == "SENT" and sent["detail"]["invoice_number"] == number
    assert [(item["quantity"], item["unit_amount"]["value"]) for item in sent["items"]] == [
        ("2.0000", "0.50"),
        ("1.3333", "0.01"),
    ]

    # Paid on PayPal: the next round records it.
    with session_scope() as session:
        track_usage_bills(session, api, NOW)
    assert paid_at(heavy) is None
    standin.mark_invoice_paid(paypal_id, paid_on=date(2039, 6, 3))
    with session_scope() as session:
        track_usage_bills(session, api, NOW)
    # The day PayPal says it was paid, not the day we asked.
    assert paid_at(heavy) == datetime(2039, 6, 3, tzinfo=UTC)


def paid_at(client: Client) -> datetime | None:
    with session_scope() as session:
        return session.scalars(
            select(UsageBill.paid_at).where(UsageBill.tenant_id == client.tenant_id)
        ).one()


def close_and_bill(period: str = PERIOD) -> None:
    with session_scope() as session:
        metering.close_period(session, period, NOW, timedelta(hours=48))
    bill_closed_months(session_scope, NOW)


def paypal_id_of(client: Client) -> str | None:
    with session_scope() as session:
        return session.scalars(
            select(UsageBill.paypal_invoice_id).where(
                UsageBill.tenant_id == client.tenant_id, UsageBill.amount_ht_cents > 0
            )
        ).one()


def sent(client: Client) -> bool:
    """Whether the client's bill with an amount went to PayPal."""
    return [sent for amount, *_, sent in bills_of(client) if amount] == [True]


def test_bills_go_oldest_first_and_one_refused_bill_stops_no_other(
    http: TestClient, paypal: tuple[PayPalStandin, PayPal]
) -> None:
    standin, api = paypal
    may, refused = paying_client(http, Decimal(3)), paying_client(http, Decimal(3))
    close_and_bill()
    april = paying_client(http, Decimal(3), used_on=datetime(2039, 4, 10, tzinfo=UTC))
    close_and_bill("2039-04")
    standin.refused_recipients.add(refused.email)

    with session_scope() as session:
        send_usage_bills(session, api, NOW)
    assert sent(may) and sent(april) and not sent(refused)
    # April's bill, issued after May's, went first.
    order = list(standin.invoices)
    assert order.index(str(paypal_id_of(april))) < order.index(str(paypal_id_of(may)))
    key = f"usage-bill:{refused.tenant_id}:{PERIOD}"
    with session_scope() as session:
        (alert,) = open_alerts(session, refused.tenant_id)
        assert (alert.key, alert.blocking) == (key, True)
        assert "INVALID_REQUEST" in alert.message

    # Quarantined: the next rounds leave it alone, until the operator resolves the alert.
    drafts = len(standin.seen("/v2/invoicing/invoices"))
    with session_scope() as session:
        send_usage_bills(session, api, NOW)
    assert len(standin.seen("/v2/invoicing/invoices")) == drafts and not sent(refused)
    standin.refused_recipients.discard(refused.email)
    with session_scope() as session:
        resolve(session, alert.id, by="operator", resolution="address corrected", now=NOW)
    with session_scope() as session:
        send_usage_bills(session, api, NOW)
    assert sent(refused)


def test_an_outage_ends_the_round_and_raises_no_alert(
    http: TestClient, paypal: tuple[PayPalStandin, PayPal]
) -> None:
    standin, api = paypal
    client = paying_client(http, Decimal(3))
    close_and_bill()
    unreachable = dataclasses.replace(
        api,
        client=PayPalClient(
            "https://127.0.0.1:9",
            standin.client_id,
            standin.client_secret,
            http=standin.http_client(),
        ),
    )
    with session_scope() as session:
        assert send_usage_bills(session, unreachable, NOW) == 0
    assert not sent(client)
    with session_scope() as session:
        assert open_alerts(session, client.tenant_id) == []
        send_usage_bills(session, api, NOW)
    assert sent(client)


def test_tracking_gets_round_to_every_unpaid_bill(
    http: TestClient, paypal: tuple[PayPalStandin, PayPal], monkeypatch: pytest.MonkeyPatch
) -> None:
    standin, api = paypal
    clients = [paying_client(http, Decimal(3)) for _ in range(3)]
    close_and_bill()
    with session_scope() as session:
        send_usage_bills(session, api, NOW)
        # Two bills sent before any other stay unpaid; the third, sent last, gets paid.
        for client, sent_at in zip(clients, (-30, -30, 1), strict=True):
            session.execute(
                update(UsageBill)
                .where(UsageBill.tenant_id == client.tenant_id)
                .values(sent_at=NOW + timedelta(days=sent_at))
            )
        unpaid = session.scalar(
            select(func.count())
            .select_from(UsageBill)
            .where(UsageBill.sent_at.is_not(None), UsageBill.paid_at.is_(None))
        )
    standin.mark_invoice_paid(str(paypal_id_of(clients[2])), paid_on=date(2039, 6, 4))
    monkeypatch.setattr(usage_collection, "TRACKED_PER_ROUND", 2)
    # Rotating, two bills a round get round to every one in about unpaid / 2 rounds (rows a
    # concurrent billing round holds are skipped, hence the margin); stuck on the oldest, no
    # number of rounds would.
    for round_ in range((unpaid or 0) + 2):
        with session_scope() as session:
            track_usage_bills(session, api, NOW + timedelta(minutes=round_))
        if paid_at(clients[2]) is not None:
            break
    assert paid_at(clients[2]) == datetime(2039, 6, 4, tzinfo=UTC)
    with session_scope() as session:
        checked = session.scalars(
            select(UsageBill.last_checked_at).where(
                UsageBill.tenant_id.in_([c.tenant_id for c in clients])
            )
        ).all()
    assert all(moment is not None for moment in checked)


@pytest.fixture
def due_at_once(app_settings: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Usage invoices due the day they are issued."""
    monkeypatch.setenv("FTA_INVOICE_PAYMENT_DAYS", "0")
    get_settings.cache_clear()
    yield
    monkeypatch.delenv("FTA_INVOICE_PAYMENT_DAYS")
    get_settings.cache_clear()


def account(client: Client) -> tuple[str, str]:
    with session_scope() as session:
        tenant = session.get_one(Tenant, client.tenant_id)
        return tenant.billing_status, tenant.status


def test_a_usage_bill_unpaid_past_its_due_date_means_grace_then_suspension(
    http: TestClient, paypal: tuple[PayPalStandin, PayPal], due_at_once: None
) -> None:
    standin, api = paypal
    client = paying_client(http, Decimal(3))
    close_and_bill()
    with session_scope() as session:
        send_usage_bills(session, api, utcnow())
        due_on = session.scalars(
            select(Invoice.due_on)
            .join(UsageBill, UsageBill.invoice_id == Invoice.id)
            .where(UsageBill.tenant_id == client.tenant_id)
        ).one()
    assert sent(client)
    on_due_day = datetime.combine(due_on, datetime.min.time(), tzinfo=UTC) + timedelta(hours=12)
    with session_scope() as session:
        advance_billing_states(session, on_due_day)
    assert account(client) == ("active", "active")

    # Unpaid the day after: a grace, as for a failed payment; then suspension.
    overdue = on_due_day + timedelta(days=1)
    with session_scope() as session:
        advance_billing_states(session, overdue)
        tenant = session.get_one(Tenant, client.tenant_id)
        assert can_start(session, tenant, overdue) is None
        grace_until = tenant.grace_until
    assert account(client) == ("past_due", "active")
    assert grace_until == overdue + timedelta(days=get_settings().grace_days)
    with session_scope() as session:
        advance_billing_states(session, grace_until + timedelta(seconds=1))
    assert account(client) == ("suspended", "suspended")

    # Paid: the round that sees it restores access.
    standin.mark_invoice_paid(str(paypal_id_of(client)))
    with session_scope() as session:
        track_usage_bills(session, api, grace_until + timedelta(minutes=1))
    assert paid_at(client) is not None
    assert account(client) == ("active", "active")
