"""What an invoice line needs of a month's usage: for each quantity, the part the plan covers,
the part billed and its unit price, adding up to the month's overage."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from fta.access.usage import Consumption, PlanSnapshot, overage, quantities
from fta.plans.models import Plan

STARTER = PlanSnapshot(
    code="starter",
    name="Starter",
    price_ht_cents=1900,
    included_cpu_hours=Decimal(20),
    overage_cpu_hour_eur=Decimal("0.05"),
    overage_ram_gb_hour_eur=Decimal("0.01"),
    overage_job_minute_eur=Decimal("0.002"),
)


def _used(cpu_hours: str, ram: str, minutes: str) -> Consumption:
    return Consumption(Decimal(cpu_hours), Decimal(ram), Decimal(minutes), Decimal(0), 1, 0)


def test_each_quantity_is_what_the_plan_covers_plus_what_is_billed() -> None:
    used = _used("25", "60", "1800")
    over = overage(STARTER, STARTER.included_cpu_hours, used)
    lines = quantities(STARTER, used, over)
    cpu, ram, minutes = lines.cpu_hours, lines.ram_gb_hours, lines.job_minutes
    assert (cpu.used, cpu.included, cpu.billable, cpu.unit_price_ht_eur) == (
        25,
        20,
        5,
        Decimal("0.05"),
    )
    assert (ram.used, ram.included, ram.billable) == (60, 48, 12)
    assert (minutes.used, minutes.included, minutes.billable) == (1800, 1440, 360)
    total = sum((q.billable * q.unit_price_ht_eur for q in (cpu, ram, minutes)), Decimal(0))
    assert total.quantize(Decimal("0.01"), ROUND_HALF_UP) == over.amount_eur == Decimal("1.09")


def test_within_the_allowance_nothing_is_billable() -> None:
    used = _used("19.5", "40", "900")
    lines = quantities(STARTER, used, overage(STARTER, Decimal(20), used))
    for line in (lines.cpu_hours, lines.ram_gb_hours, lines.job_minutes):
        assert line.billable == 0 and line.included == line.used


def test_a_snapshot_copies_the_plan_it_is_taken_from() -> None:
    plan = Plan(
        code="starter",
        name="Starter",
        price_ht_cents=1900,
        included_cpu_hours=Decimal(20),
        overage_cpu_hour_eur=Decimal("0.05"),
        overage_ram_gb_hour_eur=Decimal("0.01"),
        overage_job_minute_eur=Decimal("0.002"),
    )
    assert PlanSnapshot.of_plan(plan) == STARTER
