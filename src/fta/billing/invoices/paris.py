"""The seller's calendar: days printed on documents, and the numbering year, are days in
France."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")


def paris_day(moment: datetime) -> date:
    """The calendar day in France at `moment` (an aware datetime)."""
    return moment.astimezone(PARIS).date()
