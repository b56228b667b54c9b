"""The markets the gateway knows, from the exchangeInfo fixture shipped in `data/`.

Replay mode serves exactly these markets; the job config builder accepts only pairs
listed here, so a client can never ask a job for a market the gateway cannot serve.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

SUPPORTED_EXCHANGES = ("binance",)


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
    text = resources.files("fta.gateway").joinpath(f"data/{exchange}-exchangeinfo.json")
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
