"""The client option allow-list and the freqtrade job bundle built from it."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from fta.freqtrade.bundle import BUNDLE_CHUNK_CHARS, build_job_bundle, decode_bundle, encode_bundle
from fta.freqtrade.config import ContainerPaths
from fta.freqtrade.options import ALLOWED_OPTIONS, JobConfig, first_startup_day, parse_job_config

GATEWAY = "http://fta-market-data:8090"
BASE = {"pairs": ["BTC/USDT", "ETH/USDT"], "timeframe": "5m", "timerange": "20240101-20240201"}
STRATEGY = "class Mine:\n    pass\n"


def error_messages(raw: dict[str, Any], kind: str | None = None) -> str:
    with pytest.raises(ValidationError) as caught:
        if kind is None:
            JobConfig.model_validate(raw)
        else:
            parse_job_config(kind, raw)
    return " | ".join(error["msg"] for error in caught.value.errors())


def test_defaults() -> None:
    job = JobConfig.model_validate(BASE)
    assert job.exchange == "binance"
    assert job.stake_currency == "USDT"
    assert job.stake_amount == Decimal(100)
    assert job.spaces == ("default",)


def test_unknown_option_names_the_allowed_ones() -> None:
    message = error_messages({**BASE, "ccxt_config": {"urls": {}}})
    assert message == f"unknown option 'ccxt_config'; allowed: {', '.join(ALLOWED_OPTIONS)}"
    assert "datadir" not in ALLOWED_OPTIONS and "exchange" in ALLOWED_OPTIONS


@pytest.mark.parametrize("forbidden", ["api_server", "user_data_dir", "strategy_path", "key"])
def test_paths_keys_and_servers_are_not_options(forbidden: str) -> None:
    assert f"unknown option '{forbidden}'" in error_messages({**BASE, forbidden: "x"})


def test_options_must_apply_to_the_kind() -> None:
    message = error_messages({**BASE, "epochs": 10}, kind="backtest")
    assert message.startswith("option 'epochs' does not apply to backtest jobs; allowed: ")
    assert "stoploss" in error_messages({**BASE, "stoploss": "-0.1"}, kind="cache-fill")
    assert parse_job_config("hyperopt", {**BASE, "epochs": 10}).epochs == 10
    with pytest.raises(ValueError, match="unknown job kind"):
        parse_job_config("trade", BASE)


@pytest.mark.parametrize(
    ("timerange", "message"),
    [
        ("2024-01-01", "YYYYMMDD-YYYYMMDD"),
        ("20240101-", "YYYYMMDD-YYYYMMDD"),
        ("20240230-20240301", "invalid date"),
        ("20240201-20240101", "before its end"),
        ("20240101-20240101", "before its end"),
        ("20160101-20160201", "must not start before 20170101"),
    ],
)
def test_timerange_validation(timerange: str, message: str) -> None:
    assert message in error_messages({**BASE, "timerange": timerange})


def test_timerange_must_not_end_in_the_future() -> None:
    later = (datetime.now(UTC) + timedelta(days=5)).strftime("%Y%m%d")
    assert "after tomorrow" in error_messages({**BASE, "timerange": f"20240101-{later}"})


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (["BTCUSDT"], "form BASE/QUOTE"),
        (["btc/usdt"], "form BASE/QUOTE"),
        (["BTC/USDT", "BTC/USDT"], "must not repeat"),
        ([], "at least 1 item"),
        ([f"X{i}/USDT" for i in range(51)], "at most 50 items"),
        (["BTC/USDT", "ETH/BTC"], "quoted in stake_currency USDT"),
    ],
)
def test_pairs_validation(pairs: list[str], message: str) -> None:
    assert message in error_messages({**BASE, "pairs": pairs})


def test_the_config_leaves_whether_a_pair_is_listed_to_the_market_list() -> None:
    # Proxy mode lists the exchange's markets, not the fixture's: the job service checks them.
    job = JobConfig.model_validate({**BASE, "pairs": ["PEPE/USDT"]})
    assert job.pairs == ["PEPE/USDT"]


def test_pairs_quoted_in_the_stake_currency() -> None:
    job = JobConfig.model_validate({**BASE, "pairs": ["ETH/BTC"], "stake_currency": "BTC"})
    assert job.pairs == ["ETH/BTC"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"timeframe": "7m"}, "Input should be"),
        ({"timeframe": "1M"}, "Input should be"),
        ({"stake_amount": "0"}, "greater than 0"),
        ({"stake_amount": "everything"}, "unlimited"),
        ({"stake_amount": 5000}, "must not exceed dry_run_wallet"),
        ({"stoploss": "0.1"}, "less than 0"),
        ({"stoploss": "-1.5"}, "greater than or equal to -1"),
        ({"minimal_roi": {"ten": 0.1}}, "keys are minutes"),
        ({"minimal_roi": {"0": -2}}, "ratios must be in"),
        ({"epochs": 0}, "greater than or equal to 1"),
        ({"epochs": 1001}, "less than or equal to 1000"),
        ({"spaces": ["buy", "everything"]}, "Input should be"),
        ({"hyperopt_loss": "MyLoss"}, "Input should be"),
        ({"max_open_trades": 0}, "greater than or equal to 1"),
        ({"fee": "0.5"}, "less than or equal to 0.1"),
        ({"trailing_only_offset_is_reached": True}, "needs trailing_stop_positive_offset"),
        (
            {"trailing_stop_positive": "0.02", "trailing_stop_positive_offset": "0.01"},
            "must be greater than trailing_stop_positive",
        ),
    ],
)
def test_option_bounds(options: dict[str, Any], message: str) -> None:
    assert message in error_messages({**BASE, **options})


def test_unlimited_stake() -> None:
    assert JobConfig.model_validate({**BASE, "stake_amount": "unlimited"}).stake_amount == (
        "unlimited"
    )


def bundle(
    kind: str, options: dict[str, Any] | None = None, paths: ContainerPaths | None = None
) -> dict[str, Any]:
    job = parse_job_config(kind, {**BASE, **(options or {})})
    name, source = ("Mine", STRATEGY) if kind in ("backtest", "hyperopt") else (None, None)
    return build_job_bundle(
        kind, job, name, source, GATEWAY, run_id="job-1", paths=paths or ContainerPaths()
    )


@pytest.mark.parametrize("kind", ["backtest", "hyperopt", "download-data", "cache-fill"])
def test_isolation_settings_are_forced(kind: str) -> None:
    config = bundle(kind)["config"]
    assert config["dry_run"] is True
    exchange = config["exchange"]
    assert exchange["key"] == exchange["secret"] == exchange["password"] == ""
    assert exchange["enable_ws"] is False and exchange["only_from_ccxt"] is True
    urls = exchange["ccxt_config"]["urls"]["api"]
    assert urls["public"] == f"{GATEWAY}/binance/api/v3"
    assert all(url.startswith(f"{GATEWAY}/binance/") for url in urls.values())
    assert exchange["ccxt_config"]["options"]["fetchMarkets"]["types"] == ["spot"]
    assert "api_server" not in config and "telegram" not in config
    assert "binance.com" not in json.dumps(config)


def test_backtest_bundle() -> None:
    result = bundle("backtest", {"stoploss": "-0.05", "minimal_roi": {"0": "0.1", "30": 0}})
    config = result["config"]
    assert result["kind"] == "backtest"
    assert result["strategy_name"] == "Mine" and result["strategy_source"] == STRATEGY
    assert config["datadir"] == "/candles/binance"
    assert config["user_data_dir"] == "/freqtrade/user_data/runs/job-1"
    assert config["strategy_path"] == "/tmp/job/strategies"
    assert config["exportdirectory"] == "/freqtrade/user_data/runs/job-1/backtest_results"
    assert config["stoploss"] == -0.05 and config["minimal_roi"] == {"0": 0.1, "30": 0}
    assert "trailing_stop" not in config  # the strategy keeps what the client did not set
    argv = result["argv"]
    assert argv[0] == "backtesting"
    assert argv[argv.index("--config") + 1] == "/tmp/job/config.json"
    assert argv[argv.index("--timerange") + 1] == "20240101-20240201"
    assert argv[argv.index("--cache") + 1] == "none"
    assert "prepend_argv" not in result
    assert result["cache_dir"] == "/candles/binance"


def test_hyperopt_bundle_runs_one_job_worker_unless_told() -> None:
    result = bundle("hyperopt", {"epochs": 25, "spaces": ["buy", "roi"]})
    argv = result["argv"]
    assert argv[0] == "hyperopt"
    assert argv[argv.index("-j") + 1] == "1"
    assert argv[argv.index("--epochs") + 1] == "25"
    assert argv[argv.index("--spaces") + 1 : argv.index("--spaces") + 3] == ["buy", "roi"]
    assert result["config"]["hyperopt_jobs"] == 1
    # No seed given: freqtrade draws one (the entry reports it).
    assert "--random-state" not in argv and "hyperopt_random_state" not in result["config"]


def test_hyperopt_bundle_passes_the_seed_and_the_platforms_job_workers() -> None:
    job = parse_job_config("hyperopt", {**BASE, "epochs": 5, "random_state": 4242})
    result = build_job_bundle("hyperopt", job, "Mine", STRATEGY, GATEWAY, job_workers=3)
    argv = result["argv"]
    assert argv[argv.index("-j") + 1] == "3" and result["config"]["hyperopt_jobs"] == 3
    assert argv[argv.index("--random-state") + 1] == "4242"
    assert result["config"]["hyperopt_random_state"] == 4242
    with pytest.raises(ValueError, match="job_workers"):
        build_job_bundle("hyperopt", job, "Mine", STRATEGY, GATEWAY, job_workers=0)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "greater than or equal to 1"),
        (-5, "greater than or equal to 1"),
        (2**32, "less than or equal to 4294967295"),
        ("42", "valid integer"),
        (4.0, "valid integer"),
        (True, "valid integer"),
    ],
)
def test_random_state_is_a_bounded_positive_integer(value: Any, message: str) -> None:
    assert message in error_messages({**BASE, "random_state": value}, kind="hyperopt")


def test_random_state_applies_to_hyperopt_only() -> None:
    assert parse_job_config("hyperopt", {**BASE, "random_state": 2**32 - 1}).random_state
    for kind in ("backtest", "download-data"):
        message = error_messages({**BASE, "random_state": 7}, kind=kind)
        assert message.startswith(f"option 'random_state' does not apply to {kind} jobs")


def test_download_bundles_read_and_fill_the_shared_cache() -> None:
    tenant = bundle("download-data")
    # The client's candles are cut from the shared cache, which a fill warmed before.
    assert tenant["config"]["datadir"] == tenant["cache_dir"] == "/candles/binance"
    assert tenant["strategy_name"] is None and "strategy" not in tenant["config"]
    assert tenant["argv"] == [] and tenant["timerange"] == "20240101-20240201"
    fill = bundle("cache-fill")
    # One freqtrade run downloads into the fill's private tmpfs; the entry merges it.
    assert fill["config"]["datadir"] == "/tmp/job/download/binance"
    assert fill["cache_dir"] == "/candles/binance"
    assert fill["config"]["user_data_dir"] == "/tmp/job/user_data"
    argv = fill["argv"]
    assert argv[0] == "download-data" and "--prepend" not in argv
    assert argv[argv.index("--datadir") + 1] == "/tmp/job/download/binance"
    assert "prepend_argv" not in fill


def test_the_bundle_carries_the_declared_startup_candles() -> None:
    declared = "class Mine:\n    startup_candle_count = 30\n"
    result = build_job_bundle(
        "backtest", parse_job_config("backtest", BASE), "Mine", declared, GATEWAY
    )
    assert result["startup_candles"] == 30
    assert bundle("backtest")["startup_candles"] == 0


def test_paths_can_be_moved_for_tests() -> None:
    paths = ContainerPaths(user_data="/t/ud", candles="/t/c", job="/t/job")
    config = bundle("backtest", paths=paths)["config"]
    assert config["datadir"] == "/t/c/binance"
    assert config["strategy_path"] == "/t/job/strategies"
    assert config["user_data_dir"] == "/t/ud/runs/job-1"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strategy_name": "not valid"}, "Python class name"),
        ({"strategy_name": "class"}, "Python class name"),
        ({"strategy_source": None}, "needs a strategy"),
        ({"gateway_url": "ftp://gateway"}, "http(s) URL"),
        ({"gateway_url": "http://user:pw@gateway"}, "credentials"),
        ({"run_id": "../escape"}, "run_id"),
    ],
)
def test_build_refuses_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {
        "strategy_name": "Mine",
        "strategy_source": STRATEGY,
        "gateway_url": GATEWAY,
        "run_id": "job-1",
        **kwargs,
    }
    job = parse_job_config("backtest", BASE)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_job_bundle("backtest", job, **arguments)


def test_build_refuses_options_of_another_kind() -> None:
    job = parse_job_config("hyperopt", {**BASE, "epochs": 5})
    with pytest.raises(ValidationError, match="does not apply to backtest"):
        build_job_bundle("backtest", job, "Mine", STRATEGY, GATEWAY)


def test_downloads_take_no_strategy() -> None:
    job = parse_job_config("cache-fill", BASE)
    with pytest.raises(ValueError, match="runs no strategy"):
        build_job_bundle("cache-fill", job, "Mine", STRATEGY, GATEWAY)


def test_bundle_round_trips_through_chunked_env_vars() -> None:
    # Random-looking source so that gzip cannot shrink it below one chunk.
    source = "".join(f"# {i * 7919 % 100003:x} {i * 104729 % 1299709:x}\n" for i in range(40000))
    result = build_job_bundle(
        "backtest", parse_job_config("backtest", BASE), "Mine", source, GATEWAY, run_id="r"
    )
    env = encode_bundle(result)
    assert len(env) > 1
    assert sorted(env) == [f"FTA_BUNDLE_{i}" for i in range(len(env))]
    assert all(len(chunk) <= BUNDLE_CHUNK_CHARS for chunk in env.values())
    assert decode_bundle(env) == result


def test_the_first_startup_day_reaches_back_by_the_startup_candles() -> None:
    assert first_startup_day(date(2024, 1, 1), "5m", 0) == date(2024, 1, 1)
    # 20 five-minute candles before midnight start on the day before.
    assert first_startup_day(date(2024, 1, 1), "5m", 20) == date(2023, 12, 31)
    assert first_startup_day(date(2024, 3, 1), "1d", 40) == date(2024, 1, 21)
