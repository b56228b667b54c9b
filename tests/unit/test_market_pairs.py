"""The spot pairs an exchangeInfo answer lists, named as freqtrade names them."""

from __future__ import annotations

from typing import Any

import pytest

from fta.markets import ListedPair, exchange_info, pairs, spot_pairs


def symbol(base: str, quote: str, status: str = "TRADING", **extra: Any) -> dict[str, Any]:
    return {
        "symbol": f"{base}{quote}",
        "status": status,
        "baseAsset": base,
        "quoteAsset": quote,
        "isSpotTradingAllowed": True,
        **extra,
    }


def test_every_spot_market_is_listed_with_its_status() -> None:
    info = {
        "symbols": [
            symbol("BTC", "USDT"),
            symbol("LUNA", "USDT", "BREAK"),
            symbol("ETH", "BTC", "HALT"),
            symbol("1000SATS", "USDT"),
        ]
    }
    assert spot_pairs(info) == [
        ListedPair("BTC/USDT", "TRADING"),
        ListedPair("LUNA/USDT", "BREAK"),
        ListedPair("ETH/BTC", "HALT"),
        ListedPair("1000SATS/USDT", "TRADING"),
    ]


def test_markets_no_job_could_use_are_left_out() -> None:
    info = {
        "symbols": [
            symbol("BTC", "USDT", isSpotTradingAllowed=False),  # margin or futures only
            {k: v for k, v in symbol("ETH", "USDT").items() if k != "isSpotTradingAllowed"},
            symbol("btc", "USDT"),
            symbol("BÉT", "USDT"),
            symbol("X" * 21, "USDT"),
            symbol("SOL", "USDT", ""),
            symbol("SOL", "USDT", None),
            symbol("XRP", "USDT"),
            "not a market",
        ]
    }
    assert spot_pairs(info) == [ListedPair("XRP/USDT", "TRADING")]


def test_assets_are_named_as_ccxt_names_them() -> None:
    assert spot_pairs({"symbols": [symbol("YOYO", "BTC")]}) == [ListedPair("YOYOW/BTC", "TRADING")]


@pytest.mark.parametrize("info", [{}, {"symbols": None}, {"symbols": {"BTCUSDT": {}}}])
def test_an_answer_without_markets_is_refused(info: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="without a list of symbols"):
        spot_pairs(info)


def test_the_replay_fixture_lists_the_pairs_replay_serves() -> None:
    listed = spot_pairs(exchange_info("binance"))
    assert {item.pair for item in listed} == pairs("binance")
    assert {item.status for item in listed} == {"TRADING"}
