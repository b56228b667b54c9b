"""Live replay: the candle in progress moves with the clock; tickers and books quote it."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import httpx
import pytest

from fta.gateway.app import build_app
from fta.gateway.synthetic import candle, live_candle
from fta.markets import INTERVAL_MS, interval_open, markets

BASE = "/binance/api/v3"
MINUTE = 1_709_296_440_000  # 2024-03-01 12:34:00 UTC


def get(now_ms: int, path: str, **params: Any) -> Any:
    app = build_app("replay", clock=lambda: now_ms)

    async def call() -> Any:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            response = await client.get(f"{BASE}/{path}", params=params)
            assert response.status_code == 200, response.text
            return response.json()

    return asyncio.run(call())


@pytest.mark.parametrize("interval", ["1m", "5m", "1h", "1d"])
def test_newest_closed_candle_is_the_previous_period(interval: str) -> None:
    length = INTERVAL_MS[interval]
    now = MINUTE + 17_345
    rows = get(now, "klines", symbol="ETHUSDT", interval=interval, limit=3)
    current = interval_open(interval, now)
    assert [row[0] for row in rows] == [current - 2 * length, current - length, current]
    assert rows[-2][6] < now <= rows[-1][6]
    assert rows[-1][1] == rows[-2][4]  # it opens where the last one closed


def test_candle_in_progress_moves_and_ends_as_the_closed_candle() -> None:
    btc = markets("binance")["BTCUSDT"]
    opened = interval_open("5m", MINUTE)
    closes = []
    for second in range(0, 300, 7):
        row = get(opened + second * 1000 + 250, "klines", symbol="BTCUSDT", interval="5m")[-1]
        assert row[0] == opened
        open_, high, low, close = (Decimal(value) for value in row[1:5])
        assert low <= min(open_, close) and high >= max(open_, close)
        closes.append(close)
    assert len(set(closes)) > 10  # the close follows the clock
    full = candle(btc, "5m", opened)
    assert live_candle(btc, "5m", opened, opened + INTERVAL_MS["5m"]) == full
    at_close = get(opened + INTERVAL_MS["5m"] + 100, "klines", symbol="BTCUSDT", interval="5m")
    assert at_close[-2] == full.as_binance()


def test_answers_are_a_function_of_the_time() -> None:
    now = MINUTE + 42_123
    params = {"symbol": "SOLUSDT", "interval": "1m", "limit": 50}
    assert get(now, "klines", **params) == get(now + 500, "klines", **params)  # same second
    assert get(now, "ticker/24hr", symbol="SOLUSDT") == get(now, "ticker/24hr", symbol="SOLUSDT")


def test_ticker_and_book_quote_the_forming_candle() -> None:
    for now in (MINUTE + 1_000, MINUTE + 29_999, MINUTE + 59_000):
        forming = get(now, "klines", symbol="BTCUSDT", interval="1m", limit=1)[0]
        ticker = get(now, "ticker/24hr", symbol="BTCUSDT")
        book = get(now, "depth", symbol="BTCUSDT", limit=5)
        assert ticker["lastPrice"] == forming[4]
        assert book["bids"][0][0] == ticker["bidPrice"] < ticker["lastPrice"]
        assert book["asks"][0][0] == ticker["askPrice"] > ticker["lastPrice"]


def test_a_resting_bid_gets_crossed_within_a_minute() -> None:
    """A dry-run limit buy at the best bid fills once the best ask reaches it."""
    for symbol in ("BTCUSDT", "ETHUSDT", "XRPUSDT"):
        start = MINUTE + 5_000
        bid = Decimal(get(start, "depth", symbol=symbol, limit=5)["bids"][0][0])
        asks = [
            Decimal(get(start + s * 1000, "depth", symbol=symbol, limit=5)["asks"][0][0])
            for s in range(1, 60)
        ]
        assert min(asks) <= bid, symbol
