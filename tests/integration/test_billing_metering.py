"""The usage ledger: idempotent events, closed periods that never change (late events go to
the next open one), refused samples, bot runs cut at month boundaries, GET /api/v1/usage;
each month priced with the plan it opened with; allowance alerts; the monthly spending cap;
jobs ended without their worker's report still billed.

Months far in the future keep these tests clear of the periods the worker closes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError

from fta.access import usage
from fta.access.models import UsageEvent
from fta.access.periods import period_of
from fta.access.plan_changes import apply_pending_plans, change_plan
from fta.accounts.models import BillingStatus, Tenant
from fta.billing import metering
from fta.billing.account_states import apply_billing_state
from fta.bots.models import BotRun
from fta.db import session_scope, utcnow
from fta.errors import Conflict, Invalid
from fta.jobs.models import Job, JobStatus
from fta.mail.models import OutboxMail
from fta.plans.service import get_plan
from fta.runtime import JobRunner
from fta.settings import get_settings
from fta.worker.handlers import JobHandler
from tests.support.api import Client, sign_up, upload_strategy

API = "/api/v1"
GRACE = timedelta(hours=48)
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
    bot = http.post(
        f"{API}/bots",
        json={"name": "meter", "strategy_id": upload_strategy(client), "config": BOT_CONFIG},
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


def _activate(tenant_id: str, at: datetime) -> None:
    with session_scope() as session:
        apply_billing_state(session, session.get_one(Tenant, tenant_id), BillingStatus.ACTIVE, at)


def _summary(tenant_id: str, period: str, now: str) -> usage.UsageSummary:
    with session_scope() as session:
        return usage.usage_summary(session, session.get_one(Tenant, tenant_id), period, _at(now))


# 25 CPU-hours, 60 GB-hours, 30 hours of job: 5 CPU-hours over the starter's 20.
BIG_JOB = {
    "cpu_seconds": Decimal(90_000),
    "ram_gb_seconds": Decimal(216_000),
    "running_seconds": Decimal(108_000),
}


def test_each_month_is_billed_with_the_plan_it_opened_with(
    http: TestClient, owner_engine: Engine
) -> None:
    client = sign_up(http)
    tenant_id = client.tenant_id
    _activate(tenant_id, _at("2041-10-01T00:00:00"))
    _record(tenant_id, "job:october", "2041-10-15T12:00:00", **BIG_JOB)
    with session_scope() as session:
        tenant = session.get_one(Tenant, tenant_id)
        # A paying account moves to pro from November on.
        pro = get_plan(session, "pro")
        assert change_plan(session, tenant, pro, _at("2041-10-20T00:00:00")) == "2041-11"
        assert tenant_id in apply_pending_plans(session, _at("2041-11-01T00:05:00"))
    _record(tenant_id, "job:november", "2041-11-15T12:00:00", **BIG_JOB)
    with session_scope() as session:
        metering.close_period(session, "2041-10", _at("2041-11-03T00:00:00"), GRACE)

    october = _summary(tenant_id, "2041-10", "2041-11-04T00:00:00")
    assert october.closed and (october.plan.code, october.plan.name) == ("starter", "Starter")
    assert october.overage.amount_eur == Decimal("1.09")  # not 0.00 on pro's 120 hours
    cpu, ram, minutes = (
        october.quantities.cpu_hours,
        october.quantities.ram_gb_hours,
        october.quantities.job_minutes,
    )
    rates = [Decimal(rate) for rate in ("0.05", "0.01", "0.002")]
    assert (cpu.used, cpu.included, cpu.billable, cpu.unit_price_ht_eur) == (25, 20, 5, rates[0])
    assert (ram.used, ram.included, ram.billable, ram.unit_price_ht_eur) == (60, 48, 12, rates[1])
    assert (minutes.used, minutes.billable, minutes.unit_price_ht_eur) == (1800, 360, rates[2])
    november = _summary(tenant_id, "2041-11", "2041-11-04T00:00:00")
    assert november.plan.code == "pro" and november.overage.amount_eur == 0
    assert november.quantities.cpu_hours.included == 25

    # A change that applies at once (a suspended account's) leaves the open month's plan.
    with session_scope() as session:
        tenant = session.get_one(Tenant, tenant_id)
        apply_billing_state(session, tenant, BillingStatus.SUSPENDED, _at("2041-11-05T00:00:00"))
        assert change_plan(session, tenant, get_plan(session, "starter"), _at("2041-11-05")) == (
            period_of(_at("2041-11-05T00:00:00"))
        )
        tenant.plan_id = get_plan(session, "starter").id
    assert _summary(tenant_id, "2041-11", "2041-11-06T00:00:00").plan.code == "pro"

    shown = http.get(f"{API}/usage", params={"period": "2041-10"}, headers=client.auth).json()
    assert (shown["plan"], shown["plan_name"], shown["status"]) == ("starter", "Starter", "closed")
    assert shown["overage"]["amount_eur_ht"] == "1.09"
    assert shown["quantities"]["cpu_hours"] == {
        "used": "25.000",
        "included": "20.000",
        "billable": "5.000",
        "unit_price_eur_ht": "0.050000",
    }
    # The database keeps a month's plan as it opened.
    with owner_engine.begin() as connection, pytest.raises(DBAPIError, match="is fixed"):
        connection.execute(
            text(
                "UPDATE usage_periods SET plan_overage_cpu_hour_eur = 0 "
                "WHERE tenant_id = :t AND period = '2041-11'"
            ),
            {"t": tenant_id},
        )


def _outbox(email: str) -> list[str]:
    with session_scope() as session:
        return list(
            session.scalars(
                select(OutboxMail.subject)
                .where(OutboxMail.to_address == email)
                .order_by(OutboxMail.created_at)
            )
        )


def test_the_client_is_told_at_80_and_100_percent_of_the_allowance_once(
    http: TestClient,
) -> None:
    client = sign_up(http)
    _activate(client.tenant_id, _at("2041-12-01T00:00:00"))
    hour = Decimal(3600)

    def alerts() -> list[int]:
        usage = http.get(f"{API}/usage", params={"period": "2041-12"}, headers=client.auth)
        assert usage.status_code == 200, usage.text
        return [alert["threshold_percent"] for alert in usage.json()["alerts"]]

    _record(client.tenant_id, "job:a", "2041-12-02T00:00:00", cpu_seconds=15 * hour)
    assert alerts() == [] and not any("%" in s for s in _outbox(client.email))
    _record(client.tenant_id, "job:b", "2041-12-03T00:00:00", cpu_seconds=1 * hour)  # 16 of 20
    _record(client.tenant_id, "job:c", "2041-12-04T00:00:00", cpu_seconds=1 * hour)
    assert alerts() == [80]
    _record(client.tenant_id, "job:d", "2041-12-05T00:00:00", cpu_seconds=5 * hour)
    _record(client.tenant_id, "job:e", "2041-12-06T00:00:00", cpu_seconds=5 * hour)
    assert alerts() == [80, 100]
    assert [s for s in _outbox(client.email) if "%" in s] == [
        "fta : 80 % de vos heures CPU de 2041-12 utilisées",
        "fta : 100 % de vos heures CPU de 2041-12 utilisées",
    ]
    # A new month starts over.
    _record(client.tenant_id, "job:f", "2042-01-02T00:00:00", cpu_seconds=20 * hour)
    january = http.get(f"{API}/usage", params={"period": "2042-01"}, headers=client.auth).json()
    assert [alert["threshold_percent"] for alert in january["alerts"]] == [80, 100]
    # Both reached by one event: one mail, the higher threshold.
    assert [s for s in _outbox(client.email) if "2042-01" in s] == [
        "fta : 100 % de vos heures CPU de 2042-01 utilisées"
    ]


def test_a_spending_cap_refuses_new_jobs_once_the_month_overage_reaches_it(
    http: TestClient,
) -> None:
    client = sign_up(http)
    now = utcnow()
    _activate(client.tenant_id, now)
    cap_url = f"{API}/usage/spending-cap"
    job = {
        "kind": "download-data",
        "config": {
            "exchange": "binance",
            "pairs": ["BTC/USDT"],
            "timeframe": "5m",
            "timerange": "20240101-20240102",
        },
    }
    for bad in ({"cap_eur_ht": "-1"}, {"cap_eur_ht": "1.005"}, {"cap": "1"}):
        assert http.put(cap_url, json=bad, headers=client.auth).status_code == 422, bad
    set_cap = http.put(cap_url, json={"cap_eur_ht": "1.00"}, headers=client.auth)
    assert set_cap.status_code == 200 and set_cap.json() == {"cap_eur_ht": "1.00", "reached": False}
    with session_scope() as session:
        metering.record_usage_event(
            session,
            tenant_id=client.tenant_id,
            event_key="job:over-the-cap",
            subject_kind="job",
            subject_id=uuid.uuid4(),
            occurred_at=now,
            now=now,
            **BIG_JOB,  # 1.09 EUR beyond the plan
        )

    refused = http.post(f"{API}/jobs", json=job, headers=client.auth)
    assert refused.status_code == 402, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    detail = refused.json()["detail"]
    assert "spending cap of 1.00 EUR HT" in detail and "1.09 EUR HT" in detail
    assert f"PUT {cap_url}" in detail
    usage = http.get(f"{API}/usage", headers=client.auth).json()
    assert usage["spending_cap"] == {"cap_eur_ht": "1.00", "reached": True}

    raised = http.put(cap_url, json={"cap_eur_ht": "5"}, headers=client.auth)
    assert raised.json() == {"cap_eur_ht": "5.00", "reached": False}
    accepted = http.post(f"{API}/jobs", json=job, headers=client.auth)
    assert accepted.status_code == 202, accepted.text
    http.post(f"{API}/jobs/{accepted.json()['id']}/cancel", headers=client.auth)
    removed = http.put(cap_url, json={"cap_eur_ht": None}, headers=client.auth)
    assert removed.json() == {"cap_eur_ht": None, "reached": False}
    assert http.put(cap_url, json={"cap_eur_ht": "1"}).status_code == 401


def test_a_job_failed_without_its_report_is_billed_from_its_last_sample(
    http: TestClient,
) -> None:
    """The worker's own failure path (a crash while running the job): the last sample it saved
    on the job is what the job used."""
    client = sign_up(http)
    started = utcnow() - timedelta(minutes=2)
    with session_scope() as session:
        job = Job(
            tenant_id=client.tenant_id,
            kind="backtest",
            status=JobStatus.RUNNING,
            config={},
            max_seconds=600,
            started_at=started,
            cpu_seconds=Decimal("42.5"),
            memory_max_bytes=512 * 1024**2,
        )
        session.add(job)
        session.flush()
        job_id = job.id
    JobHandler(cast(JobRunner, None), get_settings())._finish(
        job_id, JobStatus.FAILED, error="internal error while running the job"
    )
    (event,) = _events(client.tenant_id)
    assert (event.event_key, event.cpu_seconds) == (f"job:{job_id}", Decimal("42.5"))
    assert 119 <= event.running_seconds <= 180
    # Half a GiB for the whole run (each figure is rounded to the millisecond).
    assert abs(event.ram_gb_seconds - event.running_seconds / 2) <= Decimal("0.002")
