"""The real freqtrade 2026.9, on the host, as a dry-run bot on 1m candles against live replay.

The bot must start, fetch fresh candles at each candle close without a warning or an error,
and open a trade whose entry order the synthetic order book fills. The freqtrade venv comes
from scripts/ft-host-venv.sh (the test skips when it cannot be made).
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from fta.freqtrade.config import ccxt_config
from fta.markets import interval_open
from tests.support.host_processes import freqtrade_host_venv, gateway_process

REPO = Path(__file__).resolve().parents[2]
PAIRS = ["BTC/USDT", "ETH/USDT"]
DEADLINE_SECONDS = 200

ENTER_NOW = """
from pandas import DataFrame

from freqtrade.strategy import IStrategy


class FtaEnterNow(IStrategy):
    INTERFACE_VERSION = 3
    timeframe = "1m"
    minimal_roi = {"0": 10}
    stoploss = -0.5
    startup_candle_count = 5

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["enter_long"] = 1
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        return dataframe
"""


@pytest.fixture(scope="module")
def ft_venv() -> Path:
    return freqtrade_host_venv()


def _config(tmp: Path, gateway_url: str) -> Path:
    (tmp / "strategies").mkdir()
    (tmp / "strategies" / "FtaEnterNow.py").write_text(ENTER_NOW)
    config = {
        "bot_name": "fta",
        "dry_run": True,
        "initial_state": "running",
        "dry_run_wallet": 1000,
        "stake_currency": "USDT",
        "stake_amount": 100,
        "max_open_trades": 2,
        "timeframe": "1m",
        "trading_mode": "spot",
        "margin_mode": "",
        "exchange": {
            "name": "binance",
            "key": "",
            "secret": "",
            "enable_ws": False,
            "pair_whitelist": PAIRS,
            "pair_blacklist": [],
            "ccxt_config": ccxt_config("binance", gateway_url),
        },
        "pairlists": [{"method": "StaticPairList"}],
        # Buying at the ask crosses the synthetic book at once: the fill does not wait for
        # the replayed price to fall back to the bid (which, some hours, it does not do
        # within the test's minutes).
        "entry_pricing": {"price_side": "other", "use_order_book": True, "order_book_top": 1},
        "exit_pricing": {"price_side": "same", "use_order_book": True, "order_book_top": 1},
        "unfilledtimeout": {"entry": 10, "exit": 10, "unit": "minutes"},
        "internals": {"process_throttle_secs": 2},
        "db_url": f"sqlite:///{tmp / 'trades.sqlite'}",
        "user_data_dir": str(tmp),
        "datadir": str(tmp / "data"),
        "strategy": "FtaEnterNow",
        "strategy_path": str(tmp / "strategies"),
    }
    path = tmp / "config.json"
    path.write_text(json.dumps(config))
    return path


def _filled_entries(database: Path) -> int:
    if not database.exists():
        return 0
    try:
        with sqlite3.connect(database) as db:
            row = db.execute(
                "SELECT COUNT(*) FROM orders WHERE ft_order_side = 'buy' AND status = 'closed'"
            ).fetchone()
    except sqlite3.Error:  # the bot may not have created its tables yet
        return 0
    return int(row[0])


def _klines_answered(access_log: Path) -> int:
    return access_log.read_text(errors="replace").count("GET /binance/api/v3/klines?")


def test_dry_run_bot_fetches_fresh_candles_and_trades(ft_venv: Path, tmp_path: Path) -> None:
    gateway_log = tmp_path / "gateway.log"
    with gateway_process("replay", gateway_log) as url:
        config = _config(tmp_path, url)
        bot_log = tmp_path / "freqtrade.log"
        started = time.time()
        with bot_log.open("wb") as sink:
            bot = subprocess.Popen(
                [str(ft_venv / "bin" / "freqtrade"), "trade", "-c", str(config)],
                cwd=tmp_path,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        # Minutes in which the bot fetched candles: at start, then at every candle close.
        fetch_minutes: set[int] = set()
        seen = 0
        try:
            while time.time() - started < DEADLINE_SECONDS and bot.poll() is None:
                answered = _klines_answered(gateway_log)
                if answered > seen:
                    seen = answered
                    fetch_minutes.add(interval_open("1m", int(time.time() * 1000)))
                if _filled_entries(tmp_path / "trades.sqlite") >= len(PAIRS) and (
                    len(fetch_minutes) >= 3
                ):
                    break
                time.sleep(1)
        finally:
            bot.terminate()
            try:
                bot.wait(timeout=30)
            except subprocess.TimeoutExpired:
                bot.kill()
                bot.wait()
    text = bot_log.read_text(errors="replace")
    problems = [
        line for line in text.splitlines() if " - ERROR - " in line or "Outdated history" in line
    ]
    assert problems == [], "\n".join(problems[-20:])
    assert _filled_entries(tmp_path / "trades.sqlite") >= len(PAIRS), text[-3000:]
    assert len(fetch_minutes) >= 3, (sorted(fetch_minutes), text[-3000:])
    requests = re.findall(r'"GET (/[^ ?"]*)[^"]*" (\d{3})', gateway_log.read_text())
    assert requests and all(status == "200" for _, status in requests), requests
    assert {"/binance/api/v3/klines", "/binance/api/v3/depth"} <= {p for p, _ in requests}
