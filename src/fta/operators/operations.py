"""What runs on the platform, for the operator: workers' heartbeats and whether Docker, the
market-data gateway and the tenant disk helper answer them, the candle cache, every running
job and bot across accounts, each account's queue and disk, and billing's open alerts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from fta.access import disks as tenant_disks
from fta.access.models import TenantDiskUsage
from fta.accounts.models import Tenant
from fta.billing.alerts import service as alerts
from fta.billing.alerts.models import BillingAlert
from fta.bots.models import Bot, DesiredState
from fta.jobs.models import ACTIVE_STATUSES, Job, JobStatus
from fta.market_data.candle_cache import CandleCacheEntry
from fta.operators.models import WorkerHeartbeat

# A worker beats at each round (at most every few seconds); past this it is shown as silent.
SILENT_AFTER = timedelta(minutes=2)
SHOWN = 200


@dataclass(frozen=True)
class QueueRow:
    tenant_id: str
    display_name: str
    queued: int
    running: int


@dataclass(frozen=True)
class CandleCache:
    """The shared candle cache, as its index in the database records it."""

    series: int  # (source, exchange, pair, timeframe) held
    candle_days: int  # days of candles held, all series together
    last_fill: datetime | None


@dataclass(frozen=True)
class Operations:
    workers: list[WorkerHeartbeat]
    silent: set[str]  # names of workers past SILENT_AFTER
    jobs: list[tuple[Job, str]]  # running or starting, with the account's name
    bots: list[tuple[Bot, str]]  # wanted running, with the account's name
    queues: list[QueueRow]
    alerts: list[BillingAlert]
    cache: CandleCache
    disks: list[tuple[TenantDiskUsage, str]]  # the fullest first, with the account's name
    nearly_full_disks: int


def record_heartbeat(
    session: Session,
    name: str,
    *,
    started_at: datetime,
    docker_error: str | None,
    containers: int | None,
    jobs_in_flight: int,
    gateway_error: str | None,
    now: datetime,
) -> None:
    values = {
        "gateway_ok": gateway_error is None,
        "gateway_error": None if gateway_error is None else gateway_error[:300],
        "started_at": started_at,
        "beat_at": now,
        "docker_ok": docker_error is None,
        "docker_error": None if docker_error is None else docker_error[:300],
        "containers": containers,
        "jobs_in_flight": jobs_in_flight,
    }
    session.execute(
        insert(WorkerHeartbeat)
        .values(name=name, **values)
        .on_conflict_do_update(index_elements=["name"], set_=values)
    )


def record_disk_check(session: Session, name: str, *, error: str | None, now: datetime) -> None:
    """The worker's last measure of the tenant disks: when it succeeded, or why it failed."""
    values: dict[str, object] = {"disks_error": None if error is None else error[:300]}
    if error is None:
        values["disks_measured_at"] = now
    session.execute(update(WorkerHeartbeat).where(WorkerHeartbeat.name == name).values(values))


def operations(session: Session, now: datetime) -> Operations:
    workers = list(session.scalars(select(WorkerHeartbeat).order_by(WorkerHeartbeat.name)))
    names = select(Tenant.id, Tenant.display_name).subquery()
    jobs = session.execute(
        select(Job, names.c.display_name)
        .join(names, names.c.id == Job.tenant_id)
        .where(Job.status.in_(list(ACTIVE_STATUSES)))
        .order_by(Job.started_at.nulls_last(), Job.created_at)
        .limit(SHOWN)
    ).all()
    bots = session.execute(
        select(Bot, names.c.display_name)
        .join(names, names.c.id == Bot.tenant_id)
        .where(Bot.desired_state == DesiredState.RUNNING, Bot.deleted_at.is_(None))
        .order_by(Bot.started_at.nulls_last(), Bot.name)
        .limit(SHOWN)
    ).all()
    queued = func.count().filter(Job.status == JobStatus.QUEUED)
    running = func.count().filter(Job.status.in_(list(ACTIVE_STATUSES)))
    queues = session.execute(
        select(Job.tenant_id, names.c.display_name, queued, running)
        .join(names, names.c.id == Job.tenant_id)
        .where(Job.status.in_([JobStatus.QUEUED, *ACTIVE_STATUSES]))
        .group_by(Job.tenant_id, names.c.display_name)
        .order_by(queued.desc(), Job.tenant_id)
        .limit(SHOWN)
    ).all()
    series, days, last_fill = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(CandleCacheEntry.end_date - CandleCacheEntry.start_date + 1), 0),
            func.max(CandleCacheEntry.filled_at),
        )
    ).one()
    return Operations(
        cache=CandleCache(int(series), int(days), last_fill),
        workers=workers,
        silent={w.name for w in workers if now - w.beat_at > SILENT_AFTER},
        jobs=[(job, name) for job, name in jobs],
        bots=[(bot, name) for bot, name in bots],
        queues=[QueueRow(tenant, name, q, r) for tenant, name, q, r in queues],
        alerts=alerts.open_alerts(session),
        disks=tenant_disks.fullest_disks(session, SHOWN),
        nearly_full_disks=tenant_disks.count_nearly_full(session),
    )
