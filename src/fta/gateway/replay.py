"""Replay mode: answers every whitelisted endpoint from the markets fixture and synthetic candles.

Live, like the exchange: candles are aligned to the real clock, up to and including the candle
in progress, which moves as time passes (its close is the live price); freqtrade drops it as
incomplete, so a dry-run bot always sees the previous period as its newest closed candle.
Tickers and order books quote the same live price, to the second, so a limit order priced
from them fills against the book as it would on the exchange. Everything is a pure function
of (symbol, interval, time).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from fta.gateway.endpoints import KLINES_DEFAULT_LIMIT, Answer, Request
from fta.gateway.synthetic import candle, live_candle, live_price, price_at, unit
from fta.markets import DAY_MS, HOUR_MS, INTERVAL_MS, Market, exchange_info, interval_open, markets

DEPTH_DEFAULT = 100
# Order book levels are this far apart (fraction of the price), at least one tick.
DEPTH_LEVEL_SPACING = Decimal("0.0002")
# Notional (in quote) of one synthetic order book level or ticker quantity.
LEVEL_NOTIONAL = 2_000.0


def _second(time_ms: int) -> int:
    return time_ms // 1000 * 1000


def _json(payload: Any) -> Answer:
    return Answer(200, json.dumps(payload, separators=(",", ":")).encode())


def _quantity(market: Market, price: Decimal, *seed: object) -> Decimal:
    notional = LEVEL_NOTIONAL * (0.2 + 1.6 * unit(market.symbol, *seed))
    units = max(1, round(notional / float(price) / float(market.step_size)))
    return Decimal(units) * market.step_size


class ReplayBackend:
    """Synthetic market data for one exchange, as of the time `clock()` returns (ms)."""

    def __init__(self, exchange: str, clock: Callable[[], int]) -> None:
        self._exchange = exchange
        self._markets = markets(exchange)
        self._clock = clock

    def known_symbol(self, symbol: str) -> bool:
        return symbol in self._markets

    def known_interval(self, interval: str) -> bool:
        return interval in INTERVAL_MS

    async def answer(self, request: Request) -> Answer:
        now = self._clock()
        endpoint = request.endpoint
        if endpoint == "time":
            return _json({"serverTime": now})
        if endpoint == "exchangeInfo":
            return _json(self._exchange_info(request, now))
        if endpoint == "klines":
            return _json(self._klines(request, now))
        if endpoint == "depth":
            return _json(self._depth(request, now))
        rows = [self._ticker_24hr(request, market, now) for market in self._selected(request)]
        return _json(rows[0] if request.single_symbol else rows)

    def _selected(self, request: Request) -> list[Market]:
        if request.symbols:
            return [self._markets[symbol] for symbol in request.symbols]
        return list(self._markets.values())

    def _exchange_info(self, request: Request, now: int) -> dict[str, Any]:
        info = exchange_info(self._exchange)
        info["serverTime"] = now
        if request.symbols:
            wanted = set(request.symbols)
            info["symbols"] = [entry for entry in info["symbols"] if entry["symbol"] in wanted]
        return info

    def _klines(self, request: Request, now: int) -> list[list[int | str]]:
        market = self._markets[request.symbols[0]]
        interval = request.interval
        length = INTERVAL_MS[interval]
        limit = request.limit or KLINES_DEFAULT_LIMIT
        newest = interval_open(interval, now)
        if request.end_time is not None:
            newest = min(newest, interval_open(interval, request.end_time))
        if request.start_time is not None:
            first = interval_open(interval, request.start_time)
            if first < request.start_time:
                first += length
            last = min(newest, first + (limit - 1) * length)
        else:
            first, last = newest - (limit - 1) * length, newest
        as_of = _second(now)
        current = interval_open(interval, now)
        return [
            (
                live_candle(market, interval, o, as_of)
                if o == current
                else candle(market, interval, o)
            ).as_binance()
            for o in range(first, last + 1, length)
        ]

    def _book_top(self, market: Market, now: int) -> tuple[Decimal, Decimal, Decimal]:
        """(last, bid, ask) at the current second."""
        last = live_price(market, _second(now))
        bid = max(last - market.tick_size, market.tick_size)
        return last, bid, last + market.tick_size

    def _ticker_24hr(self, request: Request, market: Market, now: int) -> dict[str, Any]:
        last, bid, ask = self._book_top(market, now)
        minute = interval_open("1m", now)
        day_ago = minute - DAY_MS
        hour = interval_open("1h", now)
        hours = [
            candle(market, "1h", open_time)
            for open_time in range(interval_open("1h", day_ago), hour, HOUR_MS)
        ]
        hours.append(live_candle(market, "1h", hour, _second(now)))
        open_price = price_at(market, day_ago)
        high = max([last, open_price, *(c.high for c in hours)])
        low = min([last, open_price, *(c.low for c in hours)])
        volume = sum((c.volume for c in hours), Decimal(0))
        quote_volume = sum((c.quote_volume for c in hours), Decimal(0))
        count = sum(c.trades for c in hours)
        first_id = (day_ago // 1000) * 10
        row: dict[str, Any] = {
            "symbol": market.symbol,
            "openPrice": str(open_price),
            "highPrice": str(high),
            "lowPrice": str(low),
            "lastPrice": str(last),
            "volume": str(volume),
            "quoteVolume": str(quote_volume),
            "openTime": day_ago,
            "closeTime": now,
            "firstId": first_id,
            "lastId": first_id + count - 1,
            "count": count,
        }
        if ("type", "MINI") in request.extra:
            return row
        change = last - open_price
        weighted = (quote_volume / volume).quantize(market.tick_size) if volume else last
        row.update(
            {
                "priceChange": str(change),
                "priceChangePercent": str((change / open_price * 100).quantize(Decimal("0.001"))),
                "weightedAvgPrice": str(weighted),
                "prevClosePrice": str(open_price),
                "lastQty": str(_quantity(market, last, "lastqty", minute)),
                "bidPrice": str(bid),
                "bidQty": str(_quantity(market, bid, "bidqty", minute)),
                "askPrice": str(ask),
                "askQty": str(_quantity(market, ask, "askqty", minute)),
            }
        )
        return row

    def _depth(self, request: Request, now: int) -> dict[str, Any]:
        market = self._markets[request.symbols[0]]
        _, bid, ask = self._book_top(market, now)
        second = _second(now)
        spacing = max(
            (bid * DEPTH_LEVEL_SPACING / market.tick_size).to_integral_value() * market.tick_size,
            market.tick_size,
        )
        levels = request.limit or DEPTH_DEFAULT
        bids: list[list[str]] = []
        for i in range(levels):
            price = bid - spacing * i
            if price <= 0:
                break
            bids.append([str(price), str(_quantity(market, price, "bid", second, i))])
        asks = [
            [str(ask + spacing * i), str(_quantity(market, ask + spacing * i, "ask", second, i))]
            for i in range(levels)
        ]
        return {"lastUpdateId": second // 1000, "bids": bids, "asks": asks}
