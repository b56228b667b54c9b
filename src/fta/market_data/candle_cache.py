"""Which candles the shared, read-only candle cache already holds.

The cache is filled by a trusted container (never tenant code) and mounted read-only
into every tenant's backtests and hyperopts, so each candle is fetched once for all.

Its rows say what the cache volume's files hold, as long as it is the volume they were
filled into: the worker forgets the rows filled before the volume's creation (a new volume
beside an old database), so their pairs are filled again instead of missing in every job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Date, DateTime, String, delete, or_, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from fta.db import Base, utcnow


class CandleCacheEntry(Base):
    __tablename__ = "candle_cache"

    # Candles of each source (fta.markets.DataSource) are held apart, in their own directory.
    source: Mapped[str] = mapped_column(String(16), primary_key=True)
    exchange: Mapped[str] = mapped_column(String(32), primary_key=True)
    pair: Mapped[str] = mapped_column(String(32), primary_key=True)
    timeframe: Mapped[str] = mapped_column(String(8), primary_key=True)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    # When the fill was recorded, by the worker's clock (the cache volume's creation time is
    # the engine's, on the same host); None for rows older than this column.
    filled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class FillRequest:
    source: str
    exchange: str
    pairs: tuple[str, ...]
    timeframe: str
    start: date
    end: date

    @property
    def timerange(self) -> str:
        return f"{self.start:%Y%m%d}-{self.end:%Y%m%d}"


def try_lock_pairs(
    session: Session, exchange: str, timeframe: str, pairs: list[str], *, source: str
) -> bool:
    """Takes the fill locks of these pairs until the transaction ends: all of them, or none
    (then the transaction is rolled back). One lock per pair, so that a fill makes wait only
    the jobs that need the same pair's candles."""
    for pair in sorted(pairs):
        taken = session.scalar(
            text("SELECT pg_try_advisory_xact_lock(hashtext(:key))"),
            {"key": f"candle-cache:{source}:{exchange}:{timeframe}:{pair}"},
        )
        if not taken:
            session.rollback()
            return False
    return True


def missing(
    session: Session,
    exchange: str,
    pairs: list[str],
    timeframe: str,
    start: date,
    end: date,
    *,
    source: str,
) -> FillRequest | None:
    """What must be downloaded from `source` so every pair covers [start, end], or None when
    covered.

    A fill covers the union of what was held and what is asked, so the cache only grows, in
    whole calendar months: the cache, which every tenant's job can read, shows at most which
    months of a pair someone asked for, never the days of anyone's backtest.
    """
    entries = {
        entry.pair: entry
        for entry in session.scalars(
            select(CandleCacheEntry).where(
                CandleCacheEntry.source == source,
                CandleCacheEntry.exchange == exchange,
                CandleCacheEntry.timeframe == timeframe,
                CandleCacheEntry.pair.in_(pairs),
            )
        )
    }
    todo = [
        pair
        for pair in pairs
        if pair not in entries or entries[pair].start_date > start or entries[pair].end_date < end
    ]
    if not todo:
        return None
    today = utcnow().date()
    fill_start = min([start, *(entries[p].start_date for p in todo if p in entries)])
    fill_end = max([end, *(entries[p].end_date for p in todo if p in entries)])
    return FillRequest(
        source,
        exchange,
        tuple(sorted(todo)),
        timeframe,
        _month_start(fill_start),
        min(_next_month_start(fill_end), today),
    )


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _next_month_start(day: date) -> date:
    """The first day of the month after `day`'s, or `day` itself when it is a first."""
    if day.day == 1:
        return day
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def forget_filled_before(session: Session, volume_created_at: datetime, *, source: str) -> int:
    """Forgets what was recorded of `source` before the cache volume was created (or at an
    unknown time): those files are not in this volume, and a pair without a row is filled
    again. Returns the number of rows forgotten."""
    forgotten = session.scalars(
        delete(CandleCacheEntry)
        .where(
            CandleCacheEntry.source == source,
            or_(
                CandleCacheEntry.filled_at.is_(None),
                CandleCacheEntry.filled_at < volume_created_at,
            ),
        )
        .returning(CandleCacheEntry.pair)
    )
    return len(forgotten.all())


def record_fill(session: Session, fill: FillRequest) -> None:
    filled_at = utcnow()
    for pair in fill.pairs:
        session.execute(
            insert(CandleCacheEntry)
            .values(
                source=fill.source,
                exchange=fill.exchange,
                pair=pair,
                timeframe=fill.timeframe,
                start_date=fill.start,
                end_date=fill.end,
                filled_at=filled_at,
            )
            .on_conflict_do_update(
                index_elements=["source", "exchange", "pair", "timeframe"],
                set_={"start_date": fill.start, "end_date": fill.end, "filled_at": filled_at},
            )
        )
