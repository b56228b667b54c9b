"""Gapless numbering: one counter row per series and year, locked until the transaction that
inserts the document commits (a rollback gives the number back with the rest)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from fta.billing.invoices.models import InvoiceCounter, Series
from fta.billing.invoices.paris import paris_day
from fta.db import utcnow


@dataclass(frozen=True)
class Number:
    series: Series
    year: int
    sequence: int
    issued_at: datetime

    @property
    def text(self) -> str:
        """F-2026-000042: the year in the number makes the yearly restart unambiguous."""
        return f"{self.series.value}-{self.year}-{self.sequence:06d}"


def _lock(session: Session, series: Series, year: int) -> InvoiceCounter:
    session.execute(
        insert(InvoiceCounter)
        .values(series=series.value, year=year, last_value=0)
        .on_conflict_do_nothing(index_elements=["series", "year"])
    )
    return session.execute(
        select(InvoiceCounter)
        .where(InvoiceCounter.series == series.value, InvoiceCounter.year == year)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()


class Counter:
    """A locked counter row: numbers handed out by `take` are final once the transaction
    commits, and given back with it on rollback."""

    def __init__(self, session: Session, row: InvoiceCounter, issued_at: datetime) -> None:
        self._session = session
        self._row = row
        self.issued_at = issued_at

    def take(self) -> Number:
        self._row.last_value += 1
        self._session.flush()
        return Number(
            Series(self._row.series), self._row.year, self._row.last_value, self.issued_at
        )


def lock_counter(session: Session, series: Series) -> Counter:
    """Locks `series`' counter until the caller's transaction ends, so concurrent issuers
    queue; the issue time is read once the lock is held, so numbers and issue times follow
    the same order."""
    # The year of the number is the year of the issue date as printed: the day in France.
    row = _lock(session, series, paris_day(utcnow()).year)
    issued_at = utcnow()
    if paris_day(issued_at).year != row.year:  # the year turned while waiting for the lock
        row = _lock(session, series, paris_day(issued_at).year)
    return Counter(session, row, issued_at)
