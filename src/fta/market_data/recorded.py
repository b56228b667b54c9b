"""Recorded market data: the operator's import, and which ranges jobs may use.

`import_files` reads freqtrade's own OHLCV files (see `ohlcv_files`), adds their candles to the
store the gateway serves in `recorded` mode, and records per exchange, pair and timeframe the
range held (first and last candle, count, the store file's sha256) in `recorded_candles`. Jobs
are served only where that range covers them (`require_covered`): at submission and again
before the worker fills the cache.

An import only adds candles: where it overlaps what is held the candles must be identical, and
it may not put candles inside the held range where none were (a gap of the exchange's). So the
candles a job read once never change, and the shared cache, which holds copies of them, only
needs extending at either end: the import forgets the cache's entries of what it extended, so
that the next job's fill fetches the new candles.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from sqlalchemy import BigInteger, DateTime, String, delete, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from fta.db import Base, utcnow
from fta.errors import Invalid
from fta.market_data import store
from fta.market_data.candle_cache import CandleCacheEntry
from fta.market_data.ohlcv_files import Candle, OhlcvFile, OhlcvFileError, read, recognise
from fta.markets import INTERVAL_MS, SUPPORTED_EXCHANGES, DataSource, markets


class RecordedCandles(Base):
    """The range of one recorded series, as the store holds it."""

    __tablename__ = "recorded_candles"

    exchange: Mapped[str] = mapped_column(String(32), primary_key=True)
    pair: Mapped[str] = mapped_column(String(32), primary_key=True)
    timeframe: Mapped[str] = mapped_column(String(8), primary_key=True)
    first_open: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_open: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    candles: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)

    def describe(self) -> str:
        return (
            f"{self.pair} {self.timeframe}: recorded data covers {self.first_open:%Y-%m-%d %H:%M} "
            f"to {self.last_open:%Y-%m-%d %H:%M} UTC"
        )


@dataclass(frozen=True)
class Imported:
    pair: str
    timeframe: str
    added: int  # candles new to the store
    series: RecordedCandles


def _ms_to_datetime(open_ms: int) -> datetime:
    return datetime.fromtimestamp(open_ms / 1000, UTC)


def _symbol(exchange: str, pair: str, name: str) -> str:
    for market in markets(exchange).values():
        if market.pair == pair:
            return market.symbol
    raise OhlcvFileError(
        f"{name}: {pair} is not a market the gateway knows on {exchange} "
        f"(known: {', '.join(sorted(m.pair for m in markets(exchange).values()))})"
    )


def files_of(paths: list[Path]) -> list[OhlcvFile]:
    """The OHLCV files named, a directory standing for the OHLCV files directly in it."""
    found: list[OhlcvFile] = []
    for path in paths:
        if path.is_dir():
            found.extend(f for f in map(recognise, sorted(path.iterdir())) if f is not None)
            continue
        file = recognise(path)
        if file is None:
            raise OhlcvFileError(
                f"{path}: not a freqtrade spot OHLCV file name (<BASE>_<QUOTE>-<timeframe>"
                ".json, .json.gz or .feather)"
            )
        found.append(file)
    if not found:
        raise OhlcvFileError("no freqtrade OHLCV file among the paths given")
    return found


def _merge(name: str, held: list[Candle], new: list[Candle]) -> list[Candle]:
    """`held` with the candles of `new`, which must agree with it (see the module)."""
    if not held:
        return new
    by_time = {candle.open_ms: candle for candle in held}
    first, last = held[0].open_ms, held[-1].open_ms
    for candle in new:
        known = by_time.get(candle.open_ms)
        if known is not None:
            if known != candle:
                raise OhlcvFileError(
                    f"{name}: the candle of {_ms_to_datetime(candle.open_ms):%Y-%m-%d %H:%M} "
                    "UTC differs from the one already imported"
                )
        elif first < candle.open_ms < last:
            raise OhlcvFileError(
                f"{name}: the candle of {_ms_to_datetime(candle.open_ms):%Y-%m-%d %H:%M} UTC "
                "falls in a gap of the data already imported, which jobs may have used as it is"
            )
        else:
            by_time[candle.open_ms] = candle
    return [by_time[key] for key in sorted(by_time)]


def import_files(
    session: Session, store_root: str | Path, exchange: str, paths: list[Path]
) -> list[Imported]:
    """Imports every file or none (OhlcvFileError names the first problem)."""
    if exchange not in SUPPORTED_EXCHANGES:
        raise OhlcvFileError(f"unsupported exchange {exchange!r}")
    # One import per exchange at a time: each reads the series it extends.
    session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"recorded:{exchange}"}
    )
    files = files_of(paths)
    paths_of: dict[tuple[str, str], Path] = {}
    merged: dict[tuple[str, str], list[Candle]] = {}
    held_counts: dict[tuple[str, str], int] = {}
    for file in files:
        key = (file.pair, file.timeframe)
        if key not in merged:
            symbol = _symbol(exchange, file.pair, str(file.path))
            paths_of[key] = store.series_path(store_root, exchange, symbol, file.timeframe)
            merged[key] = store.read_series(paths_of[key])
            held_counts[key] = len(merged[key])
        merged[key] = _merge(str(file.path), merged[key], read(file))
    imported: list[Imported] = []
    for (pair, timeframe), candles in sorted(merged.items()):
        data = store.write_series(paths_of[(pair, timeframe)], candles)
        values = {
            "first_open": _ms_to_datetime(candles[0].open_ms),
            "last_open": _ms_to_datetime(candles[-1].open_ms),
            "candles": len(candles),
            "sha256": store.sha256(data),
            "imported_at": utcnow(),
        }
        session.execute(
            insert(RecordedCandles)
            .values(exchange=exchange, pair=pair, timeframe=timeframe, **values)
            .on_conflict_do_update(index_elements=["exchange", "pair", "timeframe"], set_=values)
        )
        if len(candles) != held_counts[(pair, timeframe)]:
            # The cache's copy ends where the store used to: its next fill extends it.
            session.execute(
                delete(CandleCacheEntry).where(
                    CandleCacheEntry.source == DataSource.RECORDED.value,
                    CandleCacheEntry.exchange == exchange,
                    CandleCacheEntry.pair == pair,
                    CandleCacheEntry.timeframe == timeframe,
                )
            )
        series = session.get(RecordedCandles, (exchange, pair, timeframe), populate_existing=True)
        assert series is not None  # noqa: S101 - written above
        imported.append(
            Imported(pair, timeframe, len(candles) - held_counts[(pair, timeframe)], series)
        )
    return imported


def recorded_pairs(session: Session, exchange: str) -> frozenset[str]:
    """The pairs held for `exchange`, in any timeframe."""
    return frozenset(
        session.scalars(select(RecordedCandles.pair).where(RecordedCandles.exchange == exchange))
    )


def listing(session: Session) -> list[RecordedCandles]:
    return list(
        session.scalars(
            select(RecordedCandles).order_by(
                RecordedCandles.exchange, RecordedCandles.pair, RecordedCandles.timeframe
            )
        )
    )


def day_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """The first and the last candle open time a timerange's days hold (end day excluded, as
    freqtrade reads a timerange)."""
    return (
        datetime.combine(start, time(), UTC),
        datetime.combine(end, time(), UTC),
    )


def require_covered(
    session: Session,
    exchange: str,
    pairs: list[str],
    timeframe: str,
    start: datetime,
    end: datetime,
    *,
    startup_candles: int = 0,
) -> None:
    """Refuses (Invalid) unless recorded candles cover [start, end) for every pair;
    `startup_candles`, the strategy's, are said to be part of the range."""
    step = timedelta(milliseconds=INTERVAL_MS[timeframe])
    series = {
        row.pair: row
        for row in session.scalars(
            select(RecordedCandles).where(
                RecordedCandles.exchange == exchange,
                RecordedCandles.timeframe == timeframe,
                RecordedCandles.pair.in_(pairs),
            )
        )
    }
    problems: list[str] = []
    for pair in pairs:
        row = series.get(pair)
        if row is None:
            problems.append(f"{pair} {timeframe}: no recorded data")
        elif row.first_open > start or row.last_open + step < end:
            problems.append(row.describe())
    if not problems:
        return
    held = session.scalars(
        select(RecordedCandles.pair)
        .where(RecordedCandles.exchange == exchange, RecordedCandles.timeframe == timeframe)
        .order_by(RecordedCandles.pair)
    ).all()
    startup = (
        f" (the timerange and the strategy's {startup_candles} startup candles before it)"
        if startup_candles
        else ""
    )
    raise Invalid(
        f"the range {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC{startup} is not covered "
        f"by the recorded market data: {'; '.join(problems)}"
        + (f" (recorded {timeframe} pairs: {', '.join(held)})" if held else "")
    )
