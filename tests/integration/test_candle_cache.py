"""Bookkeeping of the shared candle cache: what is held, what a job still needs."""

from __future__ import annotations

from datetime import date

from fta.db import session_scope
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
