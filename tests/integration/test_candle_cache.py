"""Bookkeeping of the shared candle cache: what is held, what a job still needs."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import date

from fta.db import session_scope, utcnow
from fta.market_data import candle_cache
from fta.markets import DataSource

SYNTHETIC = DataSource.SYNTHETIC.value


def test_missing_then_recorded_then_covered(app_settings: None) -> None:
    exchange = "testex"
    with session_scope() as session:
        fill = candle_cache.missing(
            session,
            exchange,
            ["BTC/USDT", "ETH/USDT"],
            "5m",
            date(2024, 1, 1),
            date(2024, 2, 1),
            source=SYNTHETIC,
        )
        assert fill is not None and fill.pairs == ("BTC/USDT", "ETH/USDT")
        assert fill.timerange == "20240101-20240201"
        candle_cache.record_fill(session, fill)
    with session_scope() as session:
        inside = candle_cache.missing(
            session,
            exchange,
            ["BTC/USDT"],
            "5m",
            date(2024, 1, 5),
            date(2024, 1, 20),
            source=SYNTHETIC,
        )
        assert inside is None
        wider = candle_cache.missing(
            session,
            exchange,
            ["BTC/USDT", "XRP/USDT"],
            "5m",
            date(2023, 12, 1),
            date(2024, 1, 2),
            source=SYNTHETIC,
        )
        assert wider is not None
        # The fill keeps what was held: the cache only grows.
        assert wider.pairs == ("BTC/USDT", "XRP/USDT")
        assert wider.timerange == "20231201-20240201"
        other_timeframe = candle_cache.missing(
            session,
            exchange,
            ["BTC/USDT"],
            "1h",
            date(2024, 1, 5),
            date(2024, 1, 20),
            source=SYNTHETIC,
        )
        assert other_timeframe is not None


def test_fills_cover_whole_months_never_the_days_asked(app_settings: None) -> None:
    with session_scope() as session:
        fill = candle_cache.missing(
            session,
            "monthex",
            ["BTC/USDT"],
            "15m",
            date(2023, 12, 10),
            date(2023, 12, 12),
            source=SYNTHETIC,
        )
        assert fill is not None and fill.timerange == "20231201-20240101"
        across_a_year = candle_cache.missing(
            session,
            "monthex",
            ["BTC/USDT"],
            "15m",
            date(2022, 11, 30),
            date(2023, 1, 1),
            source=SYNTHETIC,
        )
        assert across_a_year is not None and across_a_year.timerange == "20221101-20230101"


def test_each_source_holds_its_own_candles(app_settings: None) -> None:
    """Candles fetched from one source never cover a job of another."""
    with session_scope() as session:
        fill = candle_cache.missing(
            session,
            "sourceex",
            ["BTC/USDT"],
            "5m",
            date(2024, 1, 1),
            date(2024, 2, 1),
            source=SYNTHETIC,
        )
        assert fill is not None
        candle_cache.record_fill(session, fill)
    with session_scope() as session:
        for source in (DataSource.RECORDED, DataSource.EXCHANGE):
            other = candle_cache.missing(
                session,
                "sourceex",
                ["BTC/USDT"],
                "5m",
                date(2024, 1, 1),
                date(2024, 2, 1),
                source=source.value,
            )
            assert other is not None and other.source == source.value
        assert (
            candle_cache.missing(
                session,
                "sourceex",
                ["BTC/USDT"],
                "5m",
                date(2024, 1, 1),
                date(2024, 2, 1),
                source=SYNTHETIC,
            )
            is None
        )


def _fill_of(source: str, pairs: list[str]) -> candle_cache.FillRequest | None:
    with session_scope() as session:
        return candle_cache.missing(
            session, "binance", pairs, "1h", date(2024, 3, 5), date(2024, 3, 9), source=source
        )


def test_pairs_filled_before_the_cache_volume_was_created_are_filled_again(
    app_settings: None,
) -> None:
    """A new cache volume beside an old database: the rows of the former volume's files are
    forgotten, and the next job fills their pairs again instead of failing on the cache."""
    # Sources of this test's own, so that it forgets no other test's rows.
    source, other_source = (f"vol{uuid.uuid4().hex[:8]}" for _ in range(2))
    old = candle_cache.FillRequest(
        source, "binance", ("BTC/USDT",), "1h", date(2023, 1, 1), date(2024, 6, 1)
    )
    with session_scope() as session:
        candle_cache.record_fill(session, old)
        candle_cache.record_fill(session, dataclasses.replace(old, source=other_source))
        # A row from before fill times were recorded: the volume it was filled into is unknown.
        session.add(
            candle_cache.CandleCacheEntry(
                source=source,
                exchange="binance",
                pair="XRP/USDT",
                timeframe="1h",
                start_date=date(2024, 1, 1),
                end_date=date(2024, 6, 1),
            )
        )
    assert _fill_of(source, ["BTC/USDT", "XRP/USDT"]) is None
    volume_created_at = utcnow()
    with session_scope() as session:
        candle_cache.record_fill(session, dataclasses.replace(old, pairs=("ETH/USDT",)))
    with session_scope() as session:
        assert candle_cache.forget_filled_before(session, volume_created_at, source=source) == 2
    fill = _fill_of(source, ["BTC/USDT", "ETH/USDT", "XRP/USDT"])
    # ETH/USDT, filled into the new volume, is held; the others are filled as never held: the
    # months asked, not the range the former volume had.
    assert fill is not None and fill.pairs == ("BTC/USDT", "XRP/USDT")
    assert fill.timerange == "20240301-20240401"
    with session_scope() as session:
        candle_cache.record_fill(session, fill)
    with session_scope() as session:
        assert candle_cache.forget_filled_before(session, volume_created_at, source=source) == 0
    assert _fill_of(source, ["BTC/USDT", "ETH/USDT", "XRP/USDT"]) is None
    # Another source's rows wait for a job of that source to be judged.
    assert _fill_of(other_source, ["BTC/USDT"]) is None
