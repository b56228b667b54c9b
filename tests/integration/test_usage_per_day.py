"""A month's usage per UTC day: each event on the day it occurred, late events on the
period's first day, every day listed, and the days adding up to the month.

Months far in the future keep this test clear of the periods the worker closes."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from fastapi.testclient import TestClient

from fta.access import usage
from fta.billing import metering
from fta.db import session_scope
from tests.support.api import sign_up


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _record(
    tenant_id: str, kind: metering.SubjectKind, occurred: str, cpu: int, ram: int, running: int
) -> str:
    with session_scope() as session:
        event = metering.record_usage_event(
            session,
            tenant_id=tenant_id,
            event_key=f"{kind}:{uuid.uuid4()}",
            subject_kind=kind,
            subject_id=uuid.uuid4(),
            cpu_seconds=Decimal(cpu),
            ram_gb_seconds=Decimal(ram),
            running_seconds=Decimal(running),
            occurred_at=_at(occurred),
            now=_at(occurred) + timedelta(days=40),
        )
        return event.period


def test_usage_per_utc_day_adds_up_to_the_month(http: TestClient) -> None:
    tenant = sign_up(http, "Daily").tenant_id
    other = sign_up(http, "Neighbour").tenant_id
    # 23:30 UTC on 2 March is 3 March in Paris: the day is the UTC one.
    _record(tenant, "job", "2043-03-02T23:30:00", cpu=3600, ram=7200, running=1800)
    _record(tenant, "job", "2043-03-02T08:00:00", cpu=1800, ram=0, running=600)
    _record(tenant, "bot", "2043-03-05T00:00:00", cpu=360, ram=3600, running=36000)
    _record(tenant, "job", "2043-03-31T23:59:59", cpu=36, ram=36, running=60)
    _record(other, "job", "2043-03-02T12:00:00", cpu=99999, ram=99999, running=9999)
    # February closes; an event of February recorded afterwards is counted in March.
    with session_scope() as session:
        assert tenant in metering.close_period(
            session, "2043-02", _at("2043-03-03T00:00:00"), timedelta(hours=48)
        )
    assert _record(tenant, "job", "2043-02-27T10:00:00", cpu=720, ram=0, running=120) == "2043-03"

    with session_scope() as session:
        days = usage.daily_usage(session, tenant, "2043-03")
        month = usage.consumption(session, tenant, "2043-03")

    assert [d.day for d in days] == [date(2043, 3, n) for n in range(1, 32)]
    by_day = {d.day.day: d for d in days if d.cpu_hours or d.bot_hours or d.job_minutes}
    assert sorted(by_day) == [1, 2, 5, 31]
    assert by_day[1].cpu_hours == Decimal("0.2") and by_day[1].job_minutes == 2
    assert by_day[2].cpu_hours == Decimal("1.5") and by_day[2].ram_gb_hours == 2
    assert by_day[2].job_minutes == 40 and by_day[2].bot_hours == 0
    assert by_day[5].bot_hours == 10 and by_day[5].job_minutes == 0
    assert by_day[31].cpu_hours == Decimal("0.01")
    assert sum(d.cpu_hours for d in days) == month.cpu_hours
    assert sum(d.ram_gb_hours for d in days) == month.ram_gb_hours
    assert sum(d.job_minutes for d in days) == month.job_minutes
    assert sum(d.bot_hours for d in days) == month.bot_hours

    with session_scope() as session:
        empty = usage.daily_usage(session, tenant, "2043-04")
    assert len(empty) == 30 and not any(d.cpu_hours for d in empty)
