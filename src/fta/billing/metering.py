"""The usage ledger: recording events idempotently, metering jobs and bot runs, closing
periods, and what a period's usage costs beyond the plan's allowance."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from sqlalchemy import DateTime, String, and_, func, literal, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from fta.access.models import SpendingCap, UsageEvent, UsagePeriod
from fta.access.periods import (
    elapsed_seconds,
    next_period,
    period_end,
    period_of,
    period_start,
    previous_period,
)
from fta.access.usage import CAP_PATH, UsageSummary, plan_snapshot_columns, usage_summary
from fta.accounts.models import Tenant, User
from fta.billing.models import UsageAlert
from fta.bots.models import BotRun
from fta.errors import Conflict, Invalid
from fta.jobs.models import Job
from fta.mail import service as mail
from fta.plans.models import Plan

log = logging.getLogger(__name__)

SubjectKind = Literal["job", "bot"]
GIB = Decimal(1024**3)
CENT = Decimal("0.01")
MILLI = Decimal("0.001")
SHOWN = MILLI
# No single event covers more than a month and a day, or more than these machines hold.
MAX_EVENT_SECONDS = Decimal(32 * 86_400)
MAX_CPUS = 256
MAX_RAM_GB = 4096
EARLIEST = datetime.fromisoformat("2020-01-01T00:00:00+00:00")
CLOCK_SKEW = timedelta(minutes=5)


def _check(name: str, value: Decimal, limit: Decimal) -> Decimal:
    if not value.is_finite() or value < 0:
        raise Invalid(f"usage sample refused: {name} must be a finite number >= 0 (got {value})")
    if value > limit:
        raise Invalid(f"usage sample refused: {name} = {value} is beyond any possible value")
    return value.quantize(MILLI, ROUND_HALF_UP)


def _check_time(occurred_at: datetime, now: datetime) -> None:
    if occurred_at.tzinfo is None:
        raise Invalid("usage sample refused: occurred_at must carry a time zone")
    if not EARLIEST <= occurred_at <= now + CLOCK_SKEW:
        raise Invalid(f"usage sample refused: occurred_at {occurred_at.isoformat()} is impossible")


def _open_period(session: Session, tenant_id: str, period: str) -> str:
    """The period itself if open, else the first open one after it.

    A period's row is created with a copy of the account's plan at that moment, which the
    month is billed with. The row is share-locked: closing it waits for this transaction, and
    this one sees a close that committed first.
    """
    plan = session.scalars(
        select(Plan).join(Tenant, Tenant.plan_id == Plan.id).where(Tenant.id == tenant_id)
    ).one()
    for _ in range(1200):
        session.execute(
            insert(UsagePeriod)
            .values(tenant_id=tenant_id, period=period, **plan_snapshot_columns(plan))
            .on_conflict_do_nothing(index_elements=["tenant_id", "period"])
        )
        closed_at = session.scalar(
            select(UsagePeriod.closed_at)
            .where(UsagePeriod.tenant_id == tenant_id, UsagePeriod.period == period)
            .with_for_update(read=True)
        )
        if closed_at is None:
            return period
        period = next_period(period)
    raise Conflict(f"no open usage period for tenant {tenant_id}")


def record_usage_event(
    session: Session,
    *,
    tenant_id: str,
    event_key: str,
    subject_kind: SubjectKind,
    subject_id: uuid.UUID,
    cpu_seconds: Decimal,
    ram_gb_seconds: Decimal,
    running_seconds: Decimal,
    occurred_at: datetime,
    now: datetime,
) -> UsageEvent:
    """Records one event, once: the same key again returns the first row unchanged.

    An event whose month is closed goes to the next open period, flagged late.
    """
    if subject_kind not in ("job", "bot"):
        raise Invalid(f"usage sample refused: unknown subject kind {subject_kind!r}")
    if not 0 < len(event_key) <= 200:
        raise Invalid("usage sample refused: the event key must hold 1 to 200 characters")
    running = _check("running_seconds", running_seconds, MAX_EVENT_SECONDS)
    cpu = _check("cpu_seconds", cpu_seconds, MAX_EVENT_SECONDS * MAX_CPUS)
    ram = _check("ram_gb_seconds", ram_gb_seconds, MAX_EVENT_SECONDS * MAX_RAM_GB)
    _check_time(occurred_at, now)
    existing = _event(session, tenant_id, event_key)
    if existing is not None:
        return existing
    natural = period_of(occurred_at)
    period = _open_period(session, tenant_id, natural)
    inserted = session.scalar(
        insert(UsageEvent)
        .values(
            tenant_id=tenant_id,
            event_key=event_key,
            subject_kind=subject_kind,
            subject_id=subject_id,
            period=period,
            cpu_seconds=cpu,
            ram_gb_seconds=ram,
            running_seconds=running,
            occurred_at=occurred_at,
            recorded_at=now,
            late=period != natural,
        )
        .on_conflict_do_nothing(index_elements=["tenant_id", "event_key"])
        .returning(UsageEvent.id)
    )
    event = _event(session, tenant_id, event_key)
    assert event is not None  # noqa: S101 - inserted now or by a concurrent twin
    if inserted is not None:
        if event.late:
            log.info("late usage event %s of %s counted in %s", event_key, tenant_id, period)
        alert_usage(session, tenant_id, period, now)
    return event


def _event(session: Session, tenant_id: str, event_key: str) -> UsageEvent | None:
    return session.scalars(
        select(UsageEvent).where(
            UsageEvent.tenant_id == tenant_id, UsageEvent.event_key == event_key
        )
    ).first()


def record_job_usage(
    session: Session, job: Job, cpu_seconds: Decimal | None, memory_max_bytes: int | None
) -> UsageEvent:
    """The event of a job that ended: its CPU time, peak memory × running time, and running
    time, counted in the month it ended."""
    assert job.finished_at is not None  # noqa: S101 - called once the job is final
    running = elapsed_seconds(job.started_at, job.finished_at) if job.started_at else Decimal(0)
    return record_usage_event(
        session,
        tenant_id=job.tenant_id,
        event_key=f"job:{job.id}",
        subject_kind="job",
        subject_id=job.id,
        cpu_seconds=cpu_seconds or Decimal(0),
        ram_gb_seconds=Decimal(memory_max_bytes or 0) / GIB * running,
        running_seconds=running,
        occurred_at=job.finished_at,
        now=job.finished_at,
    )


def record_ended_job_usage(
    session: Session, job: Job, cpu_seconds: Decimal | None, memory_max_bytes: int | None
) -> UsageEvent | None:
    """The event of a job ended without its worker's report (the worker crashed or stopped,
    or the job failed before or around its container): billed from what is still known, the
    greater of the counters read now (None: nothing to read) and the last sample the worker
    saved on the job. None when the event is refused (logged)."""
    cpu = max(job.cpu_seconds or Decimal(0), cpu_seconds or Decimal(0))
    memory = max(job.memory_max_bytes or 0, memory_max_bytes or 0)
    job.cpu_seconds, job.memory_max_bytes = cpu, memory or None
    try:
        with session.begin_nested():
            return record_job_usage(session, job, cpu, memory)
    except Invalid as refused:
        log.error("job %s not metered: %s", job.id, refused.detail)
        return None


def tenant_ran_alone(
    session: Session, tenant_id: str, job_id: uuid.UUID, start: datetime, end: datetime
) -> bool:
    """Whether no other job or bot of the tenant may have used its cgroup between start and
    end (a job not yet finished, or a run not yet ended, counts as overlapping)."""
    other_job = session.scalar(
        select(Job.id)
        .where(
            Job.tenant_id == tenant_id,
            Job.id != job_id,
            Job.created_at <= end,
            or_(Job.finished_at.is_(None), Job.finished_at >= start),
        )
        .limit(1)
    )
    bot_run = session.scalar(
        select(BotRun.container_id)
        .where(
            BotRun.tenant_id == tenant_id,
            BotRun.started_at <= end,
            or_(BotRun.ended_at.is_(None), BotRun.ended_at >= start),
        )
        .limit(1)
    )
    return other_job is None and bot_run is None


# --- bots ---------------------------------------------------------------------------------


def meter_bot_runs(session: Session, now: datetime) -> int:
    """Turns bot runs into events: one per run and month, key `bot:<container>:<YYYY-MM>`.

    A month's event is written once the run ended or the month is over. Its CPU time is the
    run's cumulative counter minus what earlier events of the run took, so the run's events
    add up to its counter exactly; running time is cut at month boundaries exactly; RAM is
    the run's peak × running time (the engine reports peaks, not an integral). Returns how
    many events were written.
    """
    current = period_of(now)
    current_start = period_start(current)
    runs = session.scalars(
        select(BotRun).where(
            or_(BotRun.ended_at.is_not(None), BotRun.started_at < current_start),
            ~select(UsageEvent.id)
            .where(
                UsageEvent.tenant_id == BotRun.tenant_id,
                UsageEvent.event_key
                == func.concat(
                    "bot:",
                    BotRun.container_id,
                    ":",
                    func.to_char(
                        func.timezone(
                            "UTC", func.coalesce(BotRun.ended_at, current_start - timedelta(days=1))
                        ),
                        "YYYY-MM",
                    ),
                ),
            )
            .exists(),
        )
    ).all()
    written = 0
    for run in runs:
        try:
            with session.begin_nested():
                written += meter_run(session, run, now)
        except Invalid as error:
            log.error("bot run %s not metered: %s", run.container_id, error.detail)
    return written


def meter_run(session: Session, run: BotRun, now: datetime) -> int:
    """Writes the run's due events (see `meter_bot_runs`); returns how many."""
    current = period_of(now)
    prefix = f"bot:{run.container_id}:"
    done = session.execute(
        select(UsageEvent.event_key, UsageEvent.cpu_seconds).where(
            UsageEvent.tenant_id == run.tenant_id, UsageEvent.event_key.startswith(prefix)
        )
    ).all()
    counted = sum((cpu for _, cpu in done), Decimal(0))
    after = max((key.removeprefix(prefix) for key, _ in done), default=None)
    if run.ended_at is not None:
        last, end = period_of(run.ended_at), run.ended_at
    else:
        last, end = previous_period(current), period_start(current)
    first = next_period(after) if after else period_of(run.started_at)
    months = []
    while first <= last:
        months.append(first)
        first = next_period(first)
    if not months:
        return 0
    spans = [
        elapsed_seconds(max(run.started_at, period_start(m)), min(end, period_end(m)))
        for m in months
    ]
    cpu_left = max(Decimal(0), run.cpu_seconds - counted)
    total_span = sum(spans, Decimal(0))
    peak_gb = Decimal(run.memory_max_bytes) / GIB
    for index, (month, span) in enumerate(zip(months, spans, strict=True)):
        is_last = index == len(months) - 1
        share = (
            cpu_left
            if is_last
            else (cpu_left * span / total_span).quantize(MILLI)
            if total_span
            else Decimal(0)
        )
        cpu_left -= share
        total_span -= span
        record_usage_event(
            session,
            tenant_id=run.tenant_id,
            event_key=f"bot:{run.container_id}:{month}",
            subject_kind="bot",
            subject_id=run.bot_id,
            cpu_seconds=share,
            ram_gb_seconds=peak_gb * span,
            running_seconds=span,
            occurred_at=max(run.started_at, period_start(month)),
            now=now,
        )
    return len(months)


# --- periods ------------------------------------------------------------------------------


def close_period(session: Session, period: str, now: datetime, grace: timedelta) -> list[str]:
    """Closes the period for every tenant once its grace window is over; returns the tenants
    whose period closed now (already closed ones are left as they were)."""
    opens_at = period_end(period) + grace
    if now < opens_at:
        raise Conflict(f"period {period} can close from {opens_at.isoformat()} on")
    snapshot = plan_snapshot_columns(Plan)
    statement = insert(UsagePeriod).from_select(
        ["tenant_id", "period", "closed_at", *snapshot],
        select(
            Tenant.id,
            literal(period, String(7)),
            literal(now, DateTime(timezone=True)),
            *snapshot.values(),
        ).join(Plan, Plan.id == Tenant.plan_id),
    )
    closed = session.scalars(
        statement.on_conflict_do_update(
            index_elements=["tenant_id", "period"],
            set_={"closed_at": statement.excluded.closed_at},
            where=UsagePeriod.closed_at.is_(None),
        ).returning(UsagePeriod.tenant_id)
    ).all()
    return sorted(closed)


def close_due_periods(session: Session, now: datetime, grace: timedelta) -> list[str]:
    """Closes the past months whose grace window is over and that some tenant still has
    open (at most a year back); returns the periods closed."""
    closed = []
    period = previous_period(period_of(now))
    for _ in range(12):
        if now < period_end(period) + grace:
            period = previous_period(period)
            continue
        still_open = session.scalar(
            select(Tenant.id)
            .where(
                ~select(UsagePeriod.tenant_id)
                .where(
                    and_(
                        UsagePeriod.tenant_id == Tenant.id,
                        UsagePeriod.period == period,
                        UsagePeriod.closed_at.is_not(None),
                    )
                )
                .exists()
            )
            .limit(1)
        )
        if still_open is None:
            break
        close_period(session, period, now, grace)
        closed.append(period)
        period = previous_period(period)
    return closed


# --- alerts and the spending cap ------------------------------------------------------------

# Percentages of an allowance at which the client is told, once per month each.
ALERT_THRESHOLDS = (80, 100)
CPU_ALLOWANCE = "cpu_hours"
USAGE_PATH = "/api/v1/usage"


def alert_usage(session: Session, tenant_id: str, period: str, now: datetime) -> list[int]:
    """Records the thresholds of the month's CPU-hour allowance that its usage has reached
    and not yet been told of, and mails the client the highest of them; returns them."""
    tenant = session.get(Tenant, tenant_id)
    assert tenant is not None  # noqa: S101 - foreign key of the event
    summary = usage_summary(session, tenant, period, now)
    included = summary.included_cpu_hours
    if included <= 0:
        return []
    used_percent = summary.consumption.cpu_hours * 100 / included
    reached = []
    for threshold in ALERT_THRESHOLDS:
        if used_percent < threshold:
            continue
        new = session.scalar(
            insert(UsageAlert)
            .values(
                tenant_id=tenant_id,
                period=period,
                allowance=CPU_ALLOWANCE,
                threshold_percent=threshold,
                sent_at=now,
            )
            .on_conflict_do_nothing()
            .returning(UsageAlert.threshold_percent)
        )
        if new is not None:
            reached.append(threshold)
    if reached:
        _mail_alert(session, tenant, summary, max(reached))
    return reached


def _mail_alert(session: Session, tenant: Tenant, summary: UsageSummary, threshold: int) -> None:
    cpu = summary.quantities.cpu_hours
    cap = session.get(SpendingCap, tenant.id)
    cap_text = (
        f"Votre plafond de dépassement mensuel est de {cap.cap_eur_ht} € HT."
        if cap is not None
        else f"Vous pouvez fixer un plafond de dépassement mensuel : PUT {CAP_PATH}."
    )
    body = (
        "Bonjour,\n\n"
        f"Vous avez utilisé {threshold} % des {summary.included_cpu_hours} heures CPU "
        f"comprises dans votre forfait {summary.plan.name} pour {summary.period} "
        f"({cpu.used.quantize(SHOWN)} h utilisées). Au-delà, chaque heure CPU est facturée "
        f"{cpu.unit_price_ht_eur.normalize()} € HT, avec la RAM et le temps de tâche "
        f"correspondants. {cap_text}\n\n"
        f"Le détail : GET {USAGE_PATH}\n\n"
        "—\n"
        f"You have used {threshold} % of the CPU-hours included in your plan this month.\n"
    )
    subject = f"fta : {threshold} % de vos heures CPU de {summary.period} utilisées"
    for email in session.scalars(select(User.email).where(User.tenant_id == tenant.id)):
        mail.queue(session, to=email, subject=subject, body=body)


def usage_alerts(session: Session, tenant_id: str, period: str) -> list[UsageAlert]:
    return list(
        session.scalars(
            select(UsageAlert)
            .where(UsageAlert.tenant_id == tenant_id, UsageAlert.period == period)
            .order_by(UsageAlert.allowance, UsageAlert.threshold_percent)
        )
    )
