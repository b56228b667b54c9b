"""The real freqtrade 2026.9, on the host, driven by the job bundle and the container entry.

The gateway runs in replay mode under uvicorn on a loopback port; the bundle's container paths
point at temporary directories; the entry script runs with the freqtrade venv made by
scripts/ft-host-venv.sh (the tests skip when that venv cannot be made).
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from fta.freqtrade.bundle import build_job_bundle, encode_bundle
from fta.freqtrade.config import ContainerPaths
from fta.freqtrade.options import parse_job_config
from fta.jobs.summary import (
    BacktestSummary,
    DataSummary,
    HyperoptSummary,
    parse_result_line,
)
from tests.support.host_processes import freqtrade_host_venv, gateway_process

REPO = Path(__file__).resolve().parents[2]
ENTRY = REPO / "src" / "fta" / "freqtrade" / "entry.py"
BASE = {"pairs": ["BTC/USDT", "ETH/USDT"], "timeframe": "5m", "timerange": "20240101-20240201"}
CANDLES_IN_JANUARY = 31 * 24 * 12

RSI_STRATEGY = """
import os

import talib.abstract as ta
from pandas import DataFrame

from freqtrade.strategy import IntParameter, IStrategy

# The entry must have removed the bundle before any strategy code runs.
if any(name.startswith("FTA_BUNDLE_") for name in os.environ):
    raise RuntimeError("job bundle visible to the strategy")


class FtaRsi(IStrategy):
    INTERFACE_VERSION = 3
    timeframe = "5m"
    minimal_roi = {"0": 0.02}
    stoploss = -0.03
    startup_candle_count = 30
    buy_rsi = IntParameter(15, 40, default=30, space="buy")
    sell_rsi = IntParameter(60, 85, default=70, space="sell")

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["rsi"] = ta.RSI(dataframe, timeperiod=14)
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        entry = (dataframe["rsi"] < self.buy_rsi.value) & (dataframe["volume"] > 0)
        dataframe.loc[entry, "enter_long"] = 1
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe.loc[dataframe["rsi"] > self.sell_rsi.value, "exit_long"] = 1
        return dataframe
"""

BROKEN_STRATEGY = """
from freqtrade.strategy import IStrategy

RATIO = 1 / 0


class FtaBroken(IStrategy):
    timeframe = "5m"
"""


@dataclass(frozen=True)
class Gateway:
    url: str
    log: Path


@dataclass(frozen=True)
class JobRun:
    returncode: int
    stdout: str
    stderr: str
    summary: Any


@pytest.fixture(scope="module")
def ft_venv() -> Path:
    return freqtrade_host_venv()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    log = tmp_path_factory.mktemp("gateway") / "access.log"
    with gateway_process("replay", log) as url:
        yield Gateway(url, log)


@pytest.fixture(scope="module")
def base_paths(tmp_path_factory: pytest.TempPathFactory) -> ContainerPaths:
    root = tmp_path_factory.mktemp("container")
    for name in ("candles", "user_data", "home"):
        (root / name).mkdir()
    return ContainerPaths(
        user_data=str(root / "user_data"), candles=str(root / "candles"), job=str(root / "job")
    )


def entry_command(
    ft_venv: Path,
    gateway: Gateway,
    base_paths: ContainerPaths,
    kind: str,
    options: dict[str, Any] | None = None,
    strategy: tuple[str, str] | None = None,
) -> tuple[list[str], dict[str, str]]:
    """The entry's command line and environment for one job, as a container would get them."""
    job = parse_job_config(kind, {**BASE, **(options or {})})
    run_id = uuid.uuid4().hex[:12]
    # Each job gets its own private job directory, like the container's tmpfs.
    paths = replace(base_paths, job=f"{base_paths.job}-{run_id}")
    name, source = strategy if strategy else (None, None)
    bundle = build_job_bundle(kind, job, name, source, gateway.url, run_id=run_id, paths=paths)
    env = {
        "PATH": f"{ft_venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(Path(base_paths.candles).parent / "home"),
        "LANG": "C.UTF-8",
        **encode_bundle(bundle),
    }
    return [str(ft_venv / "bin" / "python"), str(ENTRY)], env


def run_job(*args: Any) -> JobRun:
    command, env = entry_command(*args)
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    lines = done.stdout.splitlines()
    summary = parse_result_line(lines[-1]) if lines else None
    return JobRun(done.returncode, done.stdout, done.stderr, summary)


def describe(run: JobRun) -> str:
    return f"exit {run.returncode}\n--- stderr tail ---\n{run.stderr[-3000:]}"


@pytest.fixture(scope="module")
def candle_cache(ft_venv: Path, gateway: Gateway, base_paths: ContainerPaths) -> DataSummary:
    run = run_job(ft_venv, gateway, base_paths, "cache-fill")
    assert run.returncode == 0, describe(run)
    assert isinstance(run.summary, DataSummary), run.stdout[-2000:]
    return run.summary


def gateway_requests(gateway: Gateway) -> list[tuple[str, int]]:
    pattern = re.compile(r'"GET (/[^ ?"]*)[^"]*" (\d{3})')
    return [
        (match.group(1), int(match.group(2)))
        for match in pattern.finditer(gateway.log.read_text(errors="replace"))
    ]


def test_cache_fill_downloads_the_candles(
    candle_cache: DataSummary, base_paths: ContainerPaths
) -> None:
    assert candle_cache.kind == "cache-fill"
    assert [row.pair for row in candle_cache.data.pairs] == ["BTC/USDT", "ETH/USDT"]
    for row in candle_cache.data.pairs:
        # January, through the candle opening at the range's end.
        assert row.candles == CANDLES_IN_JANUARY + 1
        assert row.first_ms == 1_704_067_200_000
    stored = sorted(path.name for path in (Path(base_paths.candles) / "binance").iterdir())
    assert stored == ["BTC_USDT-5m.feather", "ETH_USDT-5m.feather"]


def test_backtest_trades_on_the_cached_candles(
    ft_venv: Path, gateway: Gateway, base_paths: ContainerPaths, candle_cache: DataSummary
) -> None:
    run = run_job(ft_venv, gateway, base_paths, "backtest", {}, ("FtaRsi", RSI_STRATEGY))
    assert run.returncode == 0, describe(run)
    summary = run.summary
    assert isinstance(summary, BacktestSummary), run.stdout[-2000:]
    assert summary.trades > 0
    assert summary.wins + summary.losses + summary.draws == summary.trades
    assert {row.pair for row in summary.pairs} == {"BTC/USDT", "ETH/USDT"}
    assert sum(row.trades for row in summary.pairs) == summary.trades
    assert summary.final_balance is not None and summary.profit_total_abs is not None
    assert summary.final_balance - summary.starting_balance == pytest.approx(  # type: ignore[operator]
        summary.profit_total_abs, abs=1e-6
    )
    results = list(Path(base_paths.user_data, "runs").glob("*/backtest_results/*.zip"))
    assert len(results) == 1
    # Every call freqtrade made so far was served, and only whitelisted paths were asked for.
    requests = gateway_requests(gateway)
    assert requests and all(status == 200 for _, status in requests), requests
    assert {path for path, _ in requests} == {
        "/healthz",
        "/binance/api/v3/exchangeInfo",
        "/binance/api/v3/klines",
    }


def test_hyperopt_finds_parameters(
    ft_venv: Path, gateway: Gateway, base_paths: ContainerPaths, candle_cache: DataSummary
) -> None:
    options = {"epochs": 10, "spaces": ["buy", "sell"], "hyperopt_loss": "SharpeHyperOptLoss"}
    run = run_job(ft_venv, gateway, base_paths, "hyperopt", options, ("FtaRsi", RSI_STRATEGY))
    assert run.returncode == 0, describe(run)
    summary = run.summary
    assert isinstance(summary, HyperoptSummary), run.stdout[-2000:]
    assert summary.epochs == 10
    assert 1 <= summary.best_epoch <= 10
    assert summary.loss is not None and summary.trades > 0
    assert set(summary.params) == {"buy", "sell"}
    assert 15 <= summary.params["buy"]["buy_rsi"] <= 40  # type: ignore[operator]
    assert 60 <= summary.params["sell"]["sell_rsi"] <= 85  # type: ignore[operator]
    leftovers = Path(base_paths.user_data, "runs").glob("*/hyperopt_results/*.pkl")
    assert list(leftovers) == []


def test_a_strategy_that_fails_to_import_is_named(
    ft_venv: Path, gateway: Gateway, base_paths: ContainerPaths, candle_cache: DataSummary
) -> None:
    run = run_job(ft_venv, gateway, base_paths, "backtest", {}, ("FtaBroken", BROKEN_STRATEGY))
    assert run.returncode != 0
    assert run.summary is None and "FTA-RESULT:" not in run.stdout
    assert run.stderr.splitlines()[-1] == (
        "FTA-ERROR: strategy FtaBroken failed to import: ZeroDivisionError: division by zero"
    )


def test_stopping_the_entry_stops_freqtrade_and_its_helpers(
    ft_venv: Path, gateway: Gateway, base_paths: ContainerPaths, candle_cache: DataSummary
) -> None:
    options = {"epochs": 1000, "spaces": ["buy"]}
    command, env = entry_command(
        ft_venv, gateway, base_paths, "hyperopt", options, ("FtaRsi", RSI_STRATEGY)
    )
    entry = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert entry.stderr is not None
    try:
        # Wait until the epochs run (the optimizer has started its helper processes).
        started = time.monotonic()
        for line in iter(entry.stderr.readline, b""):
            if b"parallel workers" in line or time.monotonic() - started > 120:
                break
        entry.send_signal(signal.SIGTERM)
        # The pipe closes only once no process of the job holds it any more.
        rest = entry.stderr.read().decode(errors="replace")
        assert entry.wait(timeout=30) == 128 + signal.SIGTERM
    finally:
        if entry.poll() is None:
            entry.kill()
            entry.wait()
    assert rest.splitlines()[-1] == "FTA-ERROR: freqtrade was stopped by SIGTERM"


def test_a_fill_downloads_only_what_the_cache_lacks_in_one_freqtrade_run(
    ft_venv: Path, gateway: Gateway, base_paths: ContainerPaths, candle_cache: DataSummary
) -> None:
    before = gateway.log.read_text(errors="replace")
    options = {"timerange": "20231201-20240201"}
    run = run_job(ft_venv, gateway, base_paths, "cache-fill", options)
    assert run.returncode == 0, describe(run)
    asked = gateway.log.read_text(errors="replace")[len(before) :]
    # freqtrade started once: each start asks for the markets once.
    assert asked.count("/binance/api/v3/exchangeInfo") == 1, asked[-2000:]
    # Only December was downloaded: January was cached already.
    starts = [int(ms) for ms in re.findall(r"/klines\?[^ \"]*startTime=(\d+)", asked)]
    assert starts and all(start < 1_704_067_200_000 for start in starts), starts
    summary = run.summary
    assert isinstance(summary, DataSummary)
    for row in summary.data.pairs:
        assert row.first_ms == 1_701_388_800_000  # 2023-12-01
        assert row.candles == (31 + 31) * 24 * 12 + 1
    # The cache's files were replaced whole: nothing was left beside them.
    stored = sorted(path.name for path in (Path(base_paths.candles) / "binance").iterdir())
    assert stored == ["BTC_USDT-5m.feather", "ETH_USDT-5m.feather"]
