"""The usage ledger: idempotent events, closed periods that never change (late events go to
the next open one), refused samples, bot runs cut at month boundaries, GET /api/v1/usage.

Months far in the future keep these tests clear of the periods the worker closes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError

from fta.accounts.models import Tenant
from fta.billing import metering
from fta.billing.access import BillingStatus, apply_billing_state
from fta.billing.models import UsageEvent
from fta.bots.models import BotRun
from fta.db import session_scope
from fta.errors import Conflict, Invalid
from tests.support.api import Client, sign_up

API = "/api/v1"
GRACE = timedelta(hours=48)
STRATEGY = """
from freqtrade.strategy import IStrategy


class Quick(IStrategy):
    timeframe = "5m"
    minimal_roi = {"0": 0.01}
    stoploss = -0.1
"""
BOT_CONFIG = {
    "exchange": "binance",
    "pairs": ["BTC/USDT"],
    "timeframe": "5m",
    "stake_amount": 100,
    "max_open_trades": 1,
    "dry_run_wallet": 1000,
}


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _record(tenant_id: str, key: str, occurred: str, **values: Any) -> UsageEvent:
    sample = {
        "cpu_seconds": Decimal(10),
        "ram_gb_seconds": Decimal(5),
        "running_seconds": Decimal(20),
    } | values
    with session_scope() as session:
        event = metering.record_usage_event(
            session,
            tenant_id=tenant_id,
            event_key=key,
            subject_kind="job",
            subject_id=uuid.uuid4(),
            occurred_at=_at(occurred),
            now=_at(occurred) + timedelta(days=40),
            **sample,
        )
        session.expunge(event)
        return event


def _events(tenant_id: str) -> list[UsageEvent]:
    with session_scope() as session:
        events = session.scalars(
            select(UsageEvent).where(UsageEvent.tenant_id == tenant_id).order_by(UsageEvent.id)
        ).all()
        session.expunge_all()
        return list(events)


def test_the_same_event_key_counts_once(http: TestClient) -> None:
    tenant = sign_up(http).tenant_id
    first = _record(tenant, "job:replayed", "2040-01-10T10:00:00")
    again = _record(tenant, "job:replayed", "2040-01-10T10:00:00", cpu_seconds=Decimal(999))
    assert again.id == first.id and again.cpu_seconds == Decimal(10)
    assert len(_events(tenant)) == 1
    # The same key in another account is another event.
    other = sign_up(http).tenant_id
    assert _record(other, "job:replayed", "2040-01-10T10:00:00").id != first.id


def test_a_closed_period_never_changes_and_late_events_go_to_the_next(
    http: TestClient, owner_engine: Engine
) -> None:
    tenant = sign_up(http).tenant_id
    _record(tenant, "job:on-time", "2040-03-31T23:59:00")
    with session_scope() as session, pytest.raises(Conflict, match="can close from"):
        metering.close_period(session, "2040-03", _at("2040-04-02T23:00:00"), GRACE)
    with session_scope() as session:
        closed = metering.close_period(session, "2040-03", _at("2040-04-03T00:00:00"), GRACE)
        assert tenant in closed
        # Closing again changes nothing.
        assert metering.close_period(session, "2040-03", _at("2040-04-05T00:00:00"), GRACE) == []

    late = _record(tenant, "job:late", "2040-03-31T23:59:30")
    assert (late.period, late.late) == ("2040-04", True)
    on_time = _events(tenant)[0]
    assert (on_time.period, on_time.late) == ("2040-03", False)

    # The database itself refuses to write into the closed period or to edit the ledger.
    statements = [
        "INSERT INTO usage_events (tenant_id, event_key, subject_kind, subject_id, period, "
        "cpu_seconds, ram_gb_seconds, running_seconds, occurred_at, recorded_at, late) "
        "VALUES (:t, 'job:sneaky', 'job', gen_random_uuid(), '2040-03', 1, 1, 1, now(), now(), "
        "false)",
        "UPDATE usage_events SET cpu_seconds = 0 WHERE tenant_id = :t",
        "DELETE FROM usage_events WHERE tenant_id = :t",
        "UPDATE usage_periods SET closed_at = NULL WHERE tenant_id = :t AND period = '2040-03'",
        "DELETE FROM usage_periods WHERE tenant_id = :t AND period = '2040-03'",
    ]
    for statement in statements:
        # The application's role lacks the right or meets the trigger; the owner, the trigger.
        with (
            session_scope() as session,
            pytest.raises(DBAPIError, match=r"closed|append-only|permission denied"),
        ):
            session.execute(text(statement), {"t": tenant})
        with owner_engine.begin() as connection, pytest.raises(DBAPIError, match=r"closed|append"):
            connection.execute(text(statement), {"t": tenant})
    assert [(e.event_key, e.period) for e in _events(tenant)] == [
        ("job:on-time", "2040-03"),
        ("job:late", "2040-04"),
    ]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"cpu_seconds": Decimal(-1)}, "cpu_seconds must be a finite number >= 0 (got -1)"),
        ({"ram_gb_seconds": Decimal("NaN")}, "ram_gb_seconds must be a finite number"),
        ({"running_seconds": Decimal(10**9)}, "running_seconds = 1000000000 is beyond"),
        ({"cpu_seconds": Decimal(10**12)}, "cpu_seconds = 1000000000000 is beyond"),
        ({"occurred_at": _at("2019-06-01T00:00:00")}, "is impossible"),
        ({"occurred_at": _at("2041-01-01T00:00:00")}, "is impossible"),
        ({"occurred_at": datetime(2040, 1, 1)}, "must carry a time zone"),
        ({"subject_kind": "vm"}, "unknown subject kind 'vm'"),
        ({"event_key": ""}, "1 to 200 characters"),
    ],
)
def test_negative_or_absurd_samples_are_refused(
    http: TestClient, values: dict[str, Any], expected: str
) -> None:
    tenant = sign_up(http).tenant_id
    sample: dict[str, Any] = {
        "tenant_id": tenant,
        "event_key": "job:bad",
        "subject_kind": "job",
        "subject_id": uuid.uuid4(),
        "cpu_seconds": Decimal(1),
        "ram_gb_seconds": Decimal(1),
        "running_seconds": Decimal(1),
        "occurred_at": _at("2040-01-01T00:00:00"),
        "now": _at("2040-06-01T00:00:00"),
    }
    with session_scope() as session, pytest.raises(Invalid) as refused:
        metering.record_usage_event(session, **(sample | values))
    assert expected in refused.value.detail
    assert _events(tenant) == []


def _bot(http: TestClient, client: Client) -> uuid.UUID:
    strategy = http.post(
        f"{API}/strategies", json={"name": "Quick", "source": STRATEGY}, headers=client.auth
    )
    assert strategy.status_code == 201, strategy.text
    bot = http.post(
        f"{API}/bots",
        json={"name": "meter", "strategy_id": strategy.json()["id"], "config": BOT_CONFIG},
        headers=client.auth,
    )
    assert bot.status_code == 201, bot.text
    return uuid.UUID(bot.json()["id"])


def test_a_bot_run_is_cut_at_the_month_boundary_and_adds_up(http: TestClient) -> None:
    client = sign_up(http)
    bot_id = _bot(http, client)
    container = f"c{uuid.uuid4().hex}"
    gib = 1024**3
    with session_scope() as session:
        session.add(
            BotRun(
                container_id=container,
                bot_id=bot_id,
                tenant_id=client.tenant_id,
                started_at=_at("2040-05-31T23:00:00"),
                sampled_at=_at("2040-06-01T00:00:20"),
                cpu_seconds=Decimal("100.5"),
                memory_max_bytes=2 * gib,
            )
        )

    def meter(now: str) -> int:
        with session_scope() as session:
            run = session.get(BotRun, container)
            assert run is not None
            return metering.meter_run(session, run, _at(now))

    assert meter("2040-05-31T23:30:00") == 0  # the month is not over, the run goes on
    assert meter("2040-06-01T00:01:00") == 1
    assert meter("2040-06-01T00:02:00") == 0  # replayed: nothing new
    with session_scope() as session:
        run = session.get(BotRun, container)
        assert run is not None
        run.sampled_at = run.ended_at = _at("2040-06-01T01:00:00")
        run.cpu_seconds = Decimal("160.5")
    assert meter("2040-06-01T01:00:05") == 1
    assert meter("2040-06-01T01:05:00") == 0
    may, june = _events(client.tenant_id)
    assert (may.event_key, may.period) == (f"bot:{container}:2040-05", "2040-05")
    assert (may.running_seconds, may.cpu_seconds, may.ram_gb_seconds) == (3600, 100.5, 7200)
    assert (june.event_key, june.period) == (f"bot:{container}:2040-06", "2040-06")
    assert (june.running_seconds, june.cpu_seconds) == (3600, 60)
    assert may.subject_kind == june.subject_kind == "bot" and may.subject_id == bot_id


def test_usage_shows_consumption_allowance_and_overage(http: TestClient) -> None:
    client = sign_up(http)
    with session_scope() as session:
        tenant = session.get(Tenant, client.tenant_id)
        assert tenant is not None
        apply_billing_state(session, tenant, BillingStatus.ACTIVE, _at("2040-07-01T00:00:00"))
    # 25 CPU-hours, 60 GB-hours, 30 hours of job: 5 CPU-hours over the starter's 20.
    _record(
        client.tenant_id,
        "job:big",
        "2040-07-15T12:00:00",
        cpu_seconds=Decimal(90_000),
        ram_gb_seconds=Decimal(216_000),
        running_seconds=Decimal(108_000),
    )
    response = http.get(f"{API}/usage", params={"period": "2040-07"}, headers=client.auth)
    assert response.status_code == 200, response.text
    usage = response.json()
    assert (usage["period"], usage["status"], usage["plan"]) == ("2040-07", "open", "starter")
    assert Decimal(usage["consumption"]["cpu_hours"]) == 25
    assert Decimal(usage["consumption"]["job_minutes"]) == 1800
    assert Decimal(usage["allowance"]["included_cpu_hours"]) == 20
    assert Decimal(usage["allowance"]["remaining_cpu_hours"]) == 0
    assert Decimal(usage["overage"]["cpu_hours"]) == 5
    assert usage["overage"]["amount_eur_ht"] == "1.09"
    assert usage["projected_overage"]["amount_eur_ht"] == "1.09"  # a month not begun yet

    empty = http.get(f"{API}/usage", params={"period": "2040-08"}, headers=client.auth).json()
    assert empty["consumption"]["events"] == 0 and empty["overage"]["amount_eur_ht"] == "0.00"
    current = http.get(f"{API}/usage", headers=client.auth).json()
    assert current["billing_status"] == "active" and current["status"] == "open"
    for bad in ("2040-13", "40-01", "2040-1", "now"):
        refused = http.get(f"{API}/usage", params={"period": bad}, headers=client.auth)
        assert refused.status_code == 422 and "YYYY-MM" in refused.json()["detail"]
    assert http.get(f"{API}/usage").status_code == 401
