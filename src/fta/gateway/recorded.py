"""Recorded mode: serves the candles the operator imported (`fta market-data import`), nothing
else.

Klines come from the store alone: a request beyond the recorded range gets the candles inside
it, or none, never made-up ones. exchangeInfo lists only the markets the store holds. There is
no live price in recorded history, so ticker and order book requests are refused: a dry-run bot
cannot run on this mode (the platform refuses to start one).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fta.gateway.endpoints import KLINES_DEFAULT_LIMIT, Answer, Request
from fta.market_data import store
from fta.markets import INTERVAL_MS, exchange_info, markets

NO_LIVE_DATA = (
    "No live market data in recorded mode: this gateway serves recorded candles for "
    "backtests and hyperopts only."
)


def _json(payload: Any) -> Answer:
    return Answer(200, json.dumps(payload, separators=(",", ":")).encode())


def _number(value: float) -> str:
    return repr(value)


class RecordedBackend:
    """The recorded candles of one exchange, read from `store_root` at every request (an import
    shows at once)."""

    def __init__(self, exchange: str, store_root: str | Path, clock: Callable[[], int]) -> None:
        self._exchange = exchange
        self._root = store_root
        self._markets = markets(exchange)
        self._clock = clock

    def _held(self) -> dict[str, set[str]]:
        return {
            symbol: timeframes
            for symbol, timeframes in store.held(self._root, self._exchange).items()
            if symbol in self._markets
        }

    def known_symbol(self, symbol: str) -> bool:
        return symbol in self._held()

    def known_interval(self, interval: str) -> bool:
        return interval in INTERVAL_MS

    async def answer(self, request: Request) -> Answer:
        now = self._clock()
        if request.endpoint == "time":
            return _json({"serverTime": now})
        if request.endpoint == "exchangeInfo":
            info = exchange_info(self._exchange)
            info["serverTime"] = now
            held = self._held()
            wanted = set(request.symbols) if request.symbols else set(held)
            info["symbols"] = [
                entry
                for entry in info["symbols"]
                if entry["symbol"] in held and entry["symbol"] in wanted
            ]
            return _json(info)
        if request.endpoint == "klines":
            return _json(self._klines(request))
        body = json.dumps({"code": -1, "msg": NO_LIVE_DATA}, separators=(",", ":")).encode()
        return Answer(400, body)

    def _klines(self, request: Request) -> list[list[int | str]]:
        interval = request.interval
        path = store.series_path(self._root, self._exchange, request.symbols[0], interval)
        candles = store.read_window(
            path, request.start_time, request.end_time, request.limit or KLINES_DEFAULT_LIMIT
        )
        length = INTERVAL_MS[interval]
        # Binance's row; what freqtrade files do not record (quote volume, trades, taker
        # volumes) is 0.
        return [
            [
                candle.open_ms,
                _number(candle.open),
                _number(candle.high),
                _number(candle.low),
                _number(candle.close),
                _number(candle.volume),
                candle.open_ms + length - 1,
                "0",
                0,
                "0",
                "0",
                "0",
            ]
            for candle in candles
        ]
