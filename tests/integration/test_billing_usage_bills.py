"""A closed month's overage billed: our invoice once, then a PayPal invoice sent once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert

from fta.accounts.models import Tenant
from fta.billing import metering
from fta.billing.invoices.models import Invoice
from fta.billing.models import UsageBill
from fta.billing.paypal import PayPal
from fta.billing.paypal.client import PayPalClient
from fta.billing.paypal.webhooks import WebhookVerifier
from fta.billing.usage_bills import bill_closed_months
from fta.billing.usage_collection import send_usage_bills, track_usage_bills
from fta.db import session_scope
from fta.plans.models import Plan
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
        http = standin.http_client()
        yield (
            standin,
            PayPal(
                client=PayPalClient(
                    standin.url, standin.client_id, standin.client_secret, http=http
                ),
                verifier=WebhookVerifier(
                    standin.webhook_id, standin.certificate_trust(), http=http
                ),
                return_url="https://fta.example.test/return",
                cancel_url="https://fta.example.test/",
            ),
        )


def paying_client(http: TestClient, cpu_hours: Decimal) -> Client:
    """A client on a plan with 1 CPU-hour included, that used `cpu_hours` in PERIOD."""
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
            occurred_at=datetime(2039, 5, 10, tzinfo=UTC),
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
    standin.mark_invoice_paid(paypal_id)
    with session_scope() as session:
        track_usage_bills(session, api, NOW)
    assert paid_at(heavy) == NOW


def paid_at(client: Client) -> datetime | None:
    with session_scope() as session:
        return session.scalars(
            select(UsageBill.paid_at).where(UsageBill.tenant_id == client.tenant_id)
        ).one()
