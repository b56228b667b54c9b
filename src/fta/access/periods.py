"""Usage periods are calendar months in UTC, named 'YYYY-MM'."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal

from fta.errors import Invalid

PERIOD_PATTERN = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")


def parse_period(text: str) -> str:
    if not PERIOD_PATTERN.fullmatch(text) or text < "2000-01":
        raise Invalid(f"period must be a month written YYYY-MM, such as 2026-11 (got {text!r})")
    return text


def period_of(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m")


def period_start(period: str) -> datetime:
    year, month = (int(part) for part in period.split("-"))
    return datetime(year, month, 1, tzinfo=UTC)


def next_period(period: str) -> str:
    year, month = (int(part) for part in period.split("-"))
    return f"{year + month // 12:04d}-{month % 12 + 1:02d}"


def previous_period(period: str) -> str:
    year, month = (int(part) for part in period.split("-"))
    return f"{year - (month == 1):04d}-{(month - 2) % 12 + 1:02d}"


def period_end(period: str) -> datetime:
    """The first instant after the period."""
    return period_start(next_period(period))


def elapsed_seconds(start: datetime, end: datetime) -> Decimal:
    """The seconds from start to end, exactly as a Decimal; never negative."""
    return max(Decimal(0), Decimal(str((end - start).total_seconds())))
