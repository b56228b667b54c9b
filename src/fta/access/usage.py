"""What a period's usage costs beyond the plan's allowance, and the client's monthly spending
cap on it, which refuses new jobs once reached."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import Date, cast, delete, func, select
from sqlalchemy.orm import Session

from fta.access.models import SpendingCap, UsageEvent, UsagePeriod
from fta.access.periods import elapsed_seconds, period_end, period_of, period_start
from fta.access.service import PaymentRequired
from fta.accounts.models import BillingStatus, Tenant
from fta.errors import Invalid
from fta.plans.models import Plan
from fta.settings import get_settings

CENT = Decimal("0.01")
CAP_PATH = "/api/v1/usage/spending-cap"
# Beyond what the cap's column holds.
CAP_LIMIT = Decimal(10**10)


def plan_snapshot_columns(plan: Any) -> dict[str, Any]:
    """The usage period's copy of a plan (`plan` a Plan row, or the Plan class in a query)."""
    return {
        "plan_code": plan.code,
        "plan_name": plan.name,
        "plan_price_ht_cents": plan.price_ht_cents,
        "plan_included_cpu_hours": plan.included_cpu_hours,
        "plan_overage_cpu_hour_eur": plan.overage_cpu_hour_eur,
        "plan_overage_ram_gb_hour_eur": plan.overage_ram_gb_hour_eur,
        "plan_overage_job_minute_eur": plan.overage_job_minute_eur,
    }


@dataclass(frozen=True)
class PlanSnapshot:
    """The plan a period is billed with: the account's plan when the period opened."""

    code: str
    name: str
    price_ht_cents: int
    included_cpu_hours: Decimal
    overage_cpu_hour_eur: Decimal
    overage_ram_gb_hour_eur: Decimal
    overage_job_minute_eur: Decimal

    @classmethod
    def of_period(cls, row: UsagePeriod) -> PlanSnapshot:
        return cls(
            row.plan_code,
            row.plan_name,
            row.plan_price_ht_cents,
            row.plan_included_cpu_hours,
            row.plan_overage_cpu_hour_eur,
            row.plan_overage_ram_gb_hour_eur,
            row.plan_overage_job_minute_eur,
        )

    @classmethod
    def of_plan(cls, plan: Plan) -> PlanSnapshot:
        return cls(
            **{
                name.removeprefix("plan_"): value
                for name, value in plan_snapshot_columns(plan).items()
            }
        )


@dataclass(frozen=True)
class Consumption:
    cpu_hours: Decimal
    ram_gb_hours: Decimal
    job_minutes: Decimal
    bot_hours: Decimal
    events: int
    late_events: int


@dataclass(frozen=True)
class Overage:
    cpu_hours: Decimal
    ram_gb_hours: Decimal
    job_minutes: Decimal
    amount_eur: Decimal  # HT, rounded to the cent (half up) once, on the total


@dataclass(frozen=True)
class MeteredQuantity:
    """One metered quantity of a period as an invoice line states it: `used` is `included`
    (covered by the plan) plus `billable` (charged at `unit_price_ht_eur`, before VAT).
    Exact decimals: the amount is rounded once, on the total (`Overage.amount_eur`)."""

    used: Decimal
    included: Decimal
    billable: Decimal
    unit_price_ht_eur: Decimal


@dataclass(frozen=True)
class Quantities:
    cpu_hours: MeteredQuantity
    ram_gb_hours: MeteredQuantity
    job_minutes: MeteredQuantity


@dataclass(frozen=True)
class UsageSummary:
    period: str
    closed: bool
    plan: PlanSnapshot
    included_cpu_hours: Decimal
    consumption: Consumption
    overage: Overage
    quantities: Quantities
    projected_overage: Overage


def consumption(session: Session, tenant_id: str, period: str) -> Consumption:
    is_job = UsageEvent.subject_kind == "job"
    row = session.execute(
        select(
            func.coalesce(func.sum(UsageEvent.cpu_seconds), 0),
            func.coalesce(func.sum(UsageEvent.ram_gb_seconds), 0),
            func.coalesce(func.sum(UsageEvent.running_seconds).filter(is_job), 0),
            func.coalesce(func.sum(UsageEvent.running_seconds).filter(~is_job), 0),
            func.count(),
            func.count().filter(UsageEvent.late),
        ).where(UsageEvent.tenant_id == tenant_id, UsageEvent.period == period)
    ).one()
    cpu, ram, job_seconds, bot_seconds, events, late = row
    return Consumption(
        cpu_hours=Decimal(cpu) / 3600,
        ram_gb_hours=Decimal(ram) / 3600,
        job_minutes=Decimal(job_seconds) / 60,
        bot_hours=Decimal(bot_seconds) / 3600,
        events=int(events),
        late_events=int(late),
    )


@dataclass(frozen=True)
class DailyUsage:
    """One UTC day of a period: what the events of that day consumed."""

    day: date
    cpu_hours: Decimal
    ram_gb_hours: Decimal
    job_minutes: Decimal
    bot_hours: Decimal


def daily_usage(session: Session, tenant_id: str, period: str) -> list[DailyUsage]:
    """The period's consumption per calendar day in UTC (periods are UTC months, so the days
    add up to `consumption` exactly), every day of the period listed, zero included.

    An event counts on the UTC day it occurred: a job when it ended, a bot run's share of a
    month when the run started (or on the month's first day); a late event, which occurred
    in an earlier, closed month, counts on the period's first day.
    """
    start, end = period_start(period), period_end(period)
    is_job = UsageEvent.subject_kind == "job"
    moment = func.greatest(UsageEvent.occurred_at, start)
    day = cast(func.timezone("UTC", moment), Date).label("day")
    rows = session.execute(
        select(
            day,
            func.coalesce(func.sum(UsageEvent.cpu_seconds), 0),
            func.coalesce(func.sum(UsageEvent.ram_gb_seconds), 0),
            func.coalesce(func.sum(UsageEvent.running_seconds).filter(is_job), 0),
            func.coalesce(func.sum(UsageEvent.running_seconds).filter(~is_job), 0),
        )
        .where(UsageEvent.tenant_id == tenant_id, UsageEvent.period == period)
        .group_by(day)
    ).all()
    last_day = (end - timedelta(days=1)).date()
    found: dict[date, tuple[Decimal, Decimal, Decimal, Decimal]] = {}
    for when, cpu, ram, job_seconds, bot_seconds in rows:
        # Never outside the period: an event is billed in its own month or a later one.
        when = min(when, last_day)
        before = found.get(when, (Decimal(0),) * 4)
        found[when] = (
            before[0] + Decimal(cpu),
            before[1] + Decimal(ram),
            before[2] + Decimal(job_seconds),
            before[3] + Decimal(bot_seconds),
        )
    days = []
    current = start.date()
    while current <= last_day:
        cpu, ram, job_seconds, bot_seconds = found.get(current, (Decimal(0),) * 4)
        days.append(
            DailyUsage(
                day=current,
                cpu_hours=cpu / 3600,
                ram_gb_hours=ram / 3600,
                job_minutes=job_seconds / 60,
                bot_hours=bot_seconds / 3600,
            )
        )
        current += timedelta(days=1)
    return days


def overage(plan: PlanSnapshot | Plan, included_cpu_hours: Decimal, used: Consumption) -> Overage:
    """CPU-hours beyond the allowance at the CPU rate; RAM GB-hours and job-minutes at their
    rates for the same share of the period's work (the share of its CPU-hours that lies
    beyond the allowance). Exact decimals, rounded to the cent once at the end."""
    over_cpu = max(Decimal(0), used.cpu_hours - included_cpu_hours)
    share = over_cpu / used.cpu_hours if used.cpu_hours else Decimal(0)
    over_ram = used.ram_gb_hours * share
    over_minutes = used.job_minutes * share
    amount = (
        over_cpu * plan.overage_cpu_hour_eur
        + over_ram * plan.overage_ram_gb_hour_eur
        + over_minutes * plan.overage_job_minute_eur
    )
    return Overage(over_cpu, over_ram, over_minutes, amount.quantize(CENT, ROUND_HALF_UP))


def quantities(plan: PlanSnapshot, used: Consumption, over: Overage) -> Quantities:
    """Each quantity's part covered by the plan and part billed (see `overage`)."""

    def line(used: Decimal, billable: Decimal, rate: Decimal) -> MeteredQuantity:
        return MeteredQuantity(used, used - billable, billable, rate)

    return Quantities(
        cpu_hours=line(used.cpu_hours, over.cpu_hours, plan.overage_cpu_hour_eur),
        ram_gb_hours=line(used.ram_gb_hours, over.ram_gb_hours, plan.overage_ram_gb_hour_eur),
        job_minutes=line(used.job_minutes, over.job_minutes, plan.overage_job_minute_eur),
    )


def _scaled(used: Consumption, factor: Decimal) -> Consumption:
    return Consumption(
        cpu_hours=used.cpu_hours * factor,
        ram_gb_hours=used.ram_gb_hours * factor,
        job_minutes=used.job_minutes * factor,
        bot_hours=used.bot_hours * factor,
        events=used.events,
        late_events=used.late_events,
    )


def usage_summary(session: Session, tenant: Tenant, period: str, now: datetime) -> UsageSummary:
    """A period's consumption and overage, priced with the plan the period opened with (the
    account's current plan for a month not opened yet); for the running month, also the
    overage if the rest of the month goes on at the pace so far (`projected_overage`). On
    trial, the allowance is the trial's CPU-hours."""
    row = session.scalars(
        select(UsagePeriod)
        .where(UsagePeriod.tenant_id == tenant.id, UsagePeriod.period == period)
        .execution_options(populate_existing=True)
    ).first()
    plan = PlanSnapshot.of_period(row) if row is not None else PlanSnapshot.of_plan(tenant.plan)
    closed = row is not None and row.closed_at is not None
    included_cpu_hours = (
        get_settings().trial_cpu_hours
        if tenant.billing_status == BillingStatus.TRIALING
        else plan.included_cpu_hours
    )
    used = consumption(session, tenant.id, period)
    so_far = overage(plan, included_cpu_hours, used)
    projected = so_far
    start, end = period_start(period), period_end(period)
    if not closed and start < now < end:
        factor = elapsed_seconds(start, end) / elapsed_seconds(start, now)
        projected = overage(plan, included_cpu_hours, _scaled(used, factor))
    return UsageSummary(
        period=period,
        closed=closed,
        plan=plan,
        included_cpu_hours=included_cpu_hours,
        consumption=used,
        overage=so_far,
        quantities=quantities(plan, used, so_far),
        projected_overage=projected,
    )


def spending_cap(session: Session, tenant_id: str) -> SpendingCap | None:
    return session.get(SpendingCap, tenant_id)


def set_spending_cap(
    session: Session, tenant_id: str, cap_eur_ht: Decimal | None, now: datetime
) -> SpendingCap | None:
    """Sets the monthly cap on the overage (None removes it); it applies at once."""
    session.execute(delete(SpendingCap).where(SpendingCap.tenant_id == tenant_id))
    if cap_eur_ht is None:
        return None
    if not cap_eur_ht.is_finite() or cap_eur_ht < 0 or cap_eur_ht >= CAP_LIMIT:
        raise Invalid(f"the spending cap must be between 0 and {CAP_LIMIT - CENT} euros HT")
    if cap_eur_ht != cap_eur_ht.quantize(CENT):
        raise Invalid("the spending cap is in euros and cents: at most two decimals")
    cap = SpendingCap(tenant_id=tenant_id, cap_eur_ht=cap_eur_ht, set_at=now)
    session.add(cap)
    session.flush()
    return cap


def cap_reached(session: Session, tenant: Tenant, now: datetime) -> PaymentRequired | None:
    """The refusal of a new job once this month's overage reached the client's cap (a cap
    of 0 is reached once the allowance is used up); None otherwise."""
    cap = session.get(SpendingCap, tenant.id)
    if cap is None:
        return None
    summary = usage_summary(session, tenant, period_of(now), now)
    spent = summary.overage.amount_eur
    if cap.cap_eur_ht > 0:
        reached = spent >= cap.cap_eur_ht
    else:
        reached = summary.consumption.cpu_hours >= summary.included_cpu_hours
    if not reached:
        return None
    return PaymentRequired(
        f"your monthly spending cap of {cap.cap_eur_ht} EUR HT on usage beyond your plan is "
        f"reached ({spent} EUR HT for {summary.period}): new jobs are refused until next month."
        f" Raise or remove the cap with PUT {CAP_PATH} (running jobs and bots go on)"
    )


def require_under_spending_cap(session: Session, tenant: Tenant, now: datetime) -> None:
    refusal = cap_reached(session, tenant, now)
    if refusal is not None:
        raise refusal
