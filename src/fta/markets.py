"""What every part of fta agrees on about markets: the exchanges and the markets the gateway
knows (from the exchangeInfo fixture shipped in `fta/data/`), the spot pairs any exchangeInfo
answer lists, the candle intervals, and the three sources of candles.

Replay mode serves exactly the fixture's markets, and jobs and bots may use only those pairs
then, so a client can never ask for a market the gateway cannot serve (see
`fta.jobs.market_pairs` for the other modes).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

SUPPORTED_EXCHANGES = ("binance",)
TRADING = "TRADING"
# ccxt, hence freqtrade, names this Binance asset otherwise (its `commonCurrencies`).
_CCXT_ASSET_NAMES = {"YOYO": "YOYOW"}
# An asset name a job's pair may hold (the pair pattern of the job configs).
_ASSET_RE = re.compile(r"[A-Z0-9]{1,20}")


@dataclass(frozen=True)
class Market:
    symbol: str  # exchange id, e.g. "BTCUSDT"
    base: str
    quote: str
    tick_size: Decimal
    step_size: Decimal

    @property
    def pair(self) -> str:
        return f"{self.base}/{self.quote}"


def _filter(symbol: dict[str, Any], filter_type: str, key: str) -> Decimal:
    for entry in symbol["filters"]:
        if entry["filterType"] == filter_type:
            return Decimal(entry[key])
    raise ValueError(f"{symbol['symbol']}: no {filter_type} filter")


@cache
def _exchange_info(exchange: str) -> dict[str, Any]:
    if exchange not in SUPPORTED_EXCHANGES:
        raise ValueError(f"unsupported exchange {exchange!r}")
    text = resources.files("fta").joinpath(f"data/{exchange}-exchangeinfo.json")
    info: dict[str, Any] = json.loads(text.read_text(encoding="utf-8"))
    return info


def exchange_info(exchange: str) -> dict[str, Any]:
    """A fresh copy of the fixture, safe to modify (serverTime, filtering)."""
    return copy.deepcopy(_exchange_info(exchange))


@cache
def markets(exchange: str) -> dict[str, Market]:
    """Markets by exchange symbol id."""
    result: dict[str, Market] = {}
    for entry in _exchange_info(exchange)["symbols"]:
        if entry.get("status") != "TRADING":
            continue
        result[entry["symbol"]] = Market(
            symbol=entry["symbol"],
            base=entry["baseAsset"],
            quote=entry["quoteAsset"],
            tick_size=_filter(entry, "PRICE_FILTER", "tickSize"),
            step_size=_filter(entry, "LOT_SIZE", "stepSize"),
        )
    return result


@cache
def pairs(exchange: str) -> frozenset[str]:
    """Freqtrade pair names ("BTC/USDT") of the known markets."""
    return frozenset(market.pair for market in markets(exchange).values())


@dataclass(frozen=True)
class ListedPair:
    """A spot market as an exchangeInfo answer lists it."""

    pair: str  # freqtrade's name, e.g. "BTC/USDT"
    status: str  # the exchange's: TRADING, BREAK, HALT, ...


def _asset(name: object) -> str | None:
    if not isinstance(name, str) or not _ASSET_RE.fullmatch(name):
        return None
    return _CCXT_ASSET_NAMES.get(name, name)


def spot_pairs(info: Mapping[str, Any]) -> list[ListedPair]:
    """The spot markets of a Binance exchangeInfo answer, whatever their status, named as
    freqtrade names pairs. Markets that are not spot, or whose asset names no job could send,
    are left out; an answer without a list of symbols raises ValueError."""
    symbols = info.get("symbols")
    if not isinstance(symbols, list):
        raise ValueError("exchangeInfo answer without a list of symbols")
    listed: dict[str, ListedPair] = {}
    for entry in symbols:
        if not isinstance(entry, dict) or entry.get("isSpotTradingAllowed") is not True:
            continue
        base, quote, status = (
            _asset(entry.get("baseAsset")),
            _asset(entry.get("quoteAsset")),
            entry.get("status"),
        )
        if base is None or quote is None or not isinstance(status, str) or not status:
            continue
        pair = f"{base}/{quote}"
        listed[pair] = ListedPair(pair, status[:16])
    return list(listed.values())


# Candle intervals.

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
# Binance weekly candles open on Monday 00:00 UTC; the Unix epoch was a Thursday.
WEEK_OFFSET_MS = 4 * DAY_MS

# Intervals whose candles have a fixed length, the ones replay mode can serve.
INTERVAL_MS: dict[str, int] = {
    "1s": 1000,
    "1m": MINUTE_MS,
    "3m": 3 * MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": HOUR_MS,
    "2h": 2 * HOUR_MS,
    "4h": 4 * HOUR_MS,
    "6h": 6 * HOUR_MS,
    "8h": 8 * HOUR_MS,
    "12h": 12 * HOUR_MS,
    "1d": DAY_MS,
    "3d": 3 * DAY_MS,
    "1w": 7 * DAY_MS,
}


def interval_open(interval: str, time_ms: int) -> int:
    """Open time of the candle of `interval` that contains `time_ms`."""
    length = INTERVAL_MS[interval]
    offset = WEEK_OFFSET_MS if interval == "1w" else 0
    return (time_ms - offset) // length * length + offset


# The sources of candles, and which one the platform uses now. The gateway's mode decides it
# (FTA_MARKET_DATA_MODE): `replay` serves synthetic candles, `recorded` the candles the operator
# imported, `proxy` the exchange's own. Everything that holds candles keeps them apart by
# source (the shared cache's rows and directories), so a change of mode never lets a job read
# candles of another source, and every result says which it used.


class DataSource(StrEnum):
    SYNTHETIC = "synthetic"
    RECORDED = "recorded"
    EXCHANGE = "exchange"


MODES: dict[str, DataSource] = {
    "replay": DataSource.SYNTHETIC,
    "recorded": DataSource.RECORDED,
    "proxy": DataSource.EXCHANGE,
}

NOTES: dict[DataSource, str] = {
    DataSource.SYNTHETIC: "synthetic candles generated for testing, not market history",
    DataSource.RECORDED: "market history recorded from the exchange, imported by the operator",
    DataSource.EXCHANGE: "market history fetched from the exchange",
}


def source_of_mode(mode: str) -> DataSource:
    try:
        return MODES[mode]
    except KeyError:
        raise ValueError(
            f"unknown market-data mode {mode!r}; expected one of {', '.join(MODES)}"
        ) from None


def label(source: str) -> dict[str, str]:
    """How a result names the candles it ran on."""
    data_source = DataSource(source)
    return {"source": data_source.value, "note": NOTES[data_source]}
