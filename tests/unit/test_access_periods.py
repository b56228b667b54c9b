"""Billing periods and the exact seconds between two instants, on which metering relies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from fta.access.periods import elapsed_seconds, next_period, period_end, previous_period

START = datetime(2026, 3, 31, 23, 59, 58, tzinfo=UTC)


def test_elapsed_seconds_are_exact_decimals() -> None:
    end = START + timedelta(seconds=2, microseconds=500_001)
    assert elapsed_seconds(START, end) == Decimal("2.500001")
    assert elapsed_seconds(START, START + timedelta(days=31)) == Decimal(31 * 86400)


def test_elapsed_seconds_are_never_negative() -> None:
    assert elapsed_seconds(START, START - timedelta(seconds=5)) == Decimal(0)
    assert elapsed_seconds(START, START) == Decimal(0)


def test_periods_roll_over_the_year() -> None:
    assert next_period("2026-12") == "2027-01"
    assert previous_period("2027-01") == "2026-12"
    assert period_end("2026-12") == datetime(2027, 1, 1, tzinfo=UTC)
