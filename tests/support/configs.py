"""Job and bot configs the tests share: small enough to run in seconds."""

from __future__ import annotations

from typing import Any

# Two days of one pair: a backtest of a few seconds.
SHORT_BACKTEST: dict[str, Any] = {
    "exchange": "binance",
    "pairs": ["BTC/USDT"],
    "timeframe": "5m",
    "timerange": "20240101-20240103",
    "stake_amount": 100,
    "max_open_trades": 1,
}
# A dry-run bot on one pair, on minute candles so that it acts soon.
ONE_PAIR_BOT: dict[str, Any] = {
    "exchange": "binance",
    "pairs": ["BTC/USDT"],
    "timeframe": "1m",
    "stake_amount": 100,
    "max_open_trades": 1,
    "dry_run_wallet": 1000,
}
