"""Plan prices with VAT and the overage formula: exact decimals, rounded half up once."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fta.access.usage import Consumption, overage
from fta.plans.models import Plan
from fta.plans.service import monthly_price


def _plan(**fields: object) -> Plan:
    values: dict[str, object] = {
        "price_ht_cents": 1900,
        "included_cpu_hours": Decimal(20),
        "overage_cpu_hour_eur": Decimal("0.05"),
        "overage_ram_gb_hour_eur": Decimal("0.01"),
        "overage_job_minute_eur": Decimal("0.002"),
    }
    return Plan(**(values | fields))


@pytest.mark.parametrize(
    ("cents", "ht", "vat", "ttc"),
    [
        (1900, "19.00", "3.80", "22.80"),
        (999, "9.99", "2.00", "11.99"),  # 11.988 rounds up
        (1, "0.01", "0.00", "0.01"),  # 0.012 rounds down
        (0, "0.00", "0.00", "0.00"),
    ],
)
def test_ttc_is_ht_plus_twenty_percent_to_the_cent(cents: int, ht: str, vat: str, ttc: str) -> None:
    price = monthly_price(_plan(price_ht_cents=cents))
    assert (str(price.ht), str(price.vat), str(price.ttc)) == (ht, vat, ttc)
    assert price.ht + price.vat == price.ttc


def _used(cpu_hours: str, ram: str = "0", minutes: str = "0") -> Consumption:
    return Consumption(Decimal(cpu_hours), Decimal(ram), Decimal(minutes), Decimal(0), 1, 0)


def test_no_overage_within_the_allowance() -> None:
    result = overage(_plan(), Decimal(20), _used("20", "100", "1000"))
    assert result.amount_eur == Decimal("0.00") and result.cpu_hours == 0


def test_overage_charges_the_share_beyond_the_allowance() -> None:
    # 25 CPU-hours with 20 included: 5 over, a fifth of the period's RAM and job time.
    result = overage(_plan(), Decimal(20), _used("25", "60", "1800"))
    assert (result.cpu_hours, result.ram_gb_hours, result.job_minutes) == (5, 12, 360)
    assert result.amount_eur == Decimal("1.09")  # 0.25 + 0.12 + 0.72


def test_the_total_is_rounded_half_up_once() -> None:
    # 0.1 CPU-hour over at 0.05 EUR = 0.005 EUR: half a cent rounds up.
    result = overage(_plan(), Decimal(20), _used("20.1"))
    assert result.amount_eur == Decimal("0.01")
    assert overage(_plan(), Decimal(20), _used("20.09")).amount_eur == Decimal("0.00")
