"""The freqtrade configuration a job's or a bot's container runs, in which everything that
matters for isolation is forced by us, never by the client (`forced_config`): dry-run, no API
keys, every exchange URL pointing at the market-data gateway (`ccxt_config`), no websockets, no
Telegram, fixed container paths (`ContainerPaths`). Jobs run no REST API server; a bot runs
freqtrade's, on its tenant's network only, with secrets derived for it
(`fta.freqtrade.bot_api`), for its owner to reach through the portal's relay.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from fta.freqtrade.bot_api import BotApiSecrets, api_server_section
from fta.freqtrade.options import BotConfig, JobConfig, check_strategy_name, parse_bot_config

# Container paths (the defaults of ContainerPaths).
USER_DATA_DIR = "/freqtrade/user_data"  # the tenant's volume
CANDLE_CACHE_DIR = "/candles"  # shared candle cache: read-only in tenant jobs
JOB_DIR = "/tmp/job"  # noqa: S108 - the container's private tmpfs, not a shared /tmp


@dataclass(frozen=True)
class ContainerPaths:
    """Where things live in the job container (tests point these at temporary directories)."""

    user_data: str = USER_DATA_DIR
    candles: str = CANDLE_CACHE_DIR
    job: str = JOB_DIR

    def path(self, base: str, *parts: str) -> str:
        return str(PurePosixPath(base, *parts))


CONTAINER_PATHS = ContainerPaths()

# ccxt `urls.api` entries -> path on the gateway, per exchange. Every entry is rewritten so
# that no ccxt call can leave for the exchange; the gateway answers 404 for what it does not
# serve.
_BINANCE_API_PATHS: dict[str, str] = {
    "public": "api/v3",
    "private": "api/v3",
    "v1": "api/v1",
    "sapi": "sapi/v1",
    "sapiV2": "sapi/v2",
    "sapiV3": "sapi/v3",
    "sapiV4": "sapi/v4",
    "dapiPublic": "dapi/v1",
    "dapiPrivate": "dapi/v1",
    "dapiPrivateV2": "dapi/v2",
    "dapiData": "futures/data",
    "eapiPublic": "eapi/v1",
    "eapiPrivate": "eapi/v1",
    "fapiPublic": "fapi/v1",
    "fapiPublicV2": "fapi/v2",
    "fapiPublicV3": "fapi/v3",
    "fapiPrivate": "fapi/v1",
    "fapiPrivateV2": "fapi/v2",
    "fapiPrivateV3": "fapi/v3",
    "fapiData": "futures/data",
    "papi": "papi/v1",
    "papiV2": "papi/v2",
}
CCXT_API_PATHS: dict[str, dict[str, str]] = {"binance": _BINANCE_API_PATHS}


def _gateway_base(gateway_url: str) -> str:
    parts = urlsplit(gateway_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("gateway_url must be an http(s) URL with a host")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError("gateway_url must not carry credentials, a query or a fragment")
    return gateway_url.rstrip("/")


def ccxt_config(exchange: str, gateway_url: str) -> dict[str, Any]:
    """ccxt settings that send every request of `exchange` to the gateway.

    freqtrade merges `exchange.ccxt_config` into both its sync and its async (ccxt.pro)
    clients, so this one block covers both.
    """
    base = f"{_gateway_base(gateway_url)}/{exchange}"
    api_paths = CCXT_API_PATHS[exchange]
    return {
        "urls": {"api": {key: f"{base}/{path}" for key, path in api_paths.items()}},
        "options": {"fetchMarkets": {"types": ["spot"]}},
        "enableRateLimit": True,
    }


def number(value: Decimal) -> float | int:
    """A decimal option as freqtrade's JSON number: an int when it is whole."""
    return int(value) if value == value.to_integral_value() else float(value)


def forced_config(
    options: JobConfig | BotConfig,
    *,
    bot_name: str,
    gateway_url: str,
    datadir: str,
    user_data_dir: str,
    strategy_name: str | None,
    paths: ContainerPaths,
    only_from_ccxt: bool = False,
) -> dict[str, Any]:
    """The configuration every freqtrade run of ours shares, jobs and bots alike: always
    dry-run, no exchange keys, no websockets, every ccxt request to the gateway, a static pair
    list, the feather data format, and the strategy (when there is one) loaded from the job
    directory only. `only_from_ccxt` keeps freqtrade from fetching history outside ccxt (from
    data.binance.vision, outside the gateway); the client's `options` set the rest."""
    exchange = options.exchange
    stake_amount = options.stake_amount
    exchange_section: dict[str, Any] = {
        "name": exchange,
        "key": "",
        "secret": "",
        "password": "",
        "uid": "",
        "enable_ws": False,
    }
    if only_from_ccxt:
        exchange_section["only_from_ccxt"] = True
    exchange_section["pair_whitelist"] = list(options.pairs)
    exchange_section["pair_blacklist"] = []
    exchange_section["ccxt_config"] = ccxt_config(exchange, gateway_url)
    config: dict[str, Any] = {
        "bot_name": bot_name,
        "dry_run": True,
        "dry_run_wallet": number(options.dry_run_wallet),
        "stake_currency": options.stake_currency,
        "stake_amount": stake_amount if stake_amount == "unlimited" else number(stake_amount),
        "max_open_trades": options.max_open_trades,
        "timeframe": options.timeframe,
        "trading_mode": "spot",
        "margin_mode": "",
        "exchange": exchange_section,
        "pairlists": [{"method": "StaticPairList"}],
        "entry_pricing": {"price_side": "same", "use_order_book": True, "order_book_top": 1},
        "exit_pricing": {"price_side": "same", "use_order_book": True, "order_book_top": 1},
        "dataformat_ohlcv": "feather",
        "dataformat_trades": "feather",
        "datadir": datadir,
        "user_data_dir": user_data_dir,
        "internals": {"process_throttle_secs": 5},
        "recursive_strategy_search": False,
    }
    if strategy_name is not None:
        config["strategy"] = strategy_name
        config["strategy_path"] = paths.path(paths.job, "strategies")
    return config


def _strategy_overrides(job: JobConfig) -> dict[str, Any]:
    """Only the options the client set: the strategy keeps its own values otherwise."""
    overrides: dict[str, Any] = {}
    if job.minimal_roi is not None:
        overrides["minimal_roi"] = {k: number(v) for k, v in job.minimal_roi.items()}
    for name in ("stoploss", "trailing_stop_positive", "trailing_stop_positive_offset", "fee"):
        value = getattr(job, name)
        if value is not None:
            overrides[name] = number(value)
    for name in ("trailing_stop", "trailing_only_offset_is_reached"):
        flag = getattr(job, name)
        if flag is not None:
            overrides[name] = flag
    return overrides


def build_job_config(
    kind: str,
    job: JobConfig,
    strategy_name: str | None,
    gateway_url: str,
    paths: ContainerPaths,
    run_dir: str,
    *,
    job_workers: int = 1,
) -> dict[str, Any]:
    """The complete freqtrade configuration of one job."""
    config = forced_config(
        job,
        bot_name="fta",
        gateway_url=gateway_url,
        datadir=_data_dir(kind, job.exchange, paths),
        user_data_dir=run_dir,
        strategy_name=strategy_name,
        paths=paths,
        only_from_ccxt=True,
    )
    if kind in ("backtest", "hyperopt"):
        config.update(_strategy_overrides(job))
        config["export"] = "trades"
        config["exportdirectory"] = paths.path(run_dir, "backtest_results")
        config["backtest_cache"] = "none"
    if kind == "hyperopt":
        config.update(
            {
                "epochs": job.epochs,
                "spaces": list(job.spaces),
                "hyperopt_loss": job.hyperopt_loss,
                "hyperopt_jobs": job_workers,
                "print_all": False,
            }
        )
        if job.random_state is not None:
            config["hyperopt_random_state"] = job.random_state
    return config


def _data_dir(kind: str, exchange: str, paths: ContainerPaths) -> str:
    # A fill downloads into its private tmpfs; the entry merges that into the cache.
    if kind == "cache-fill":
        return paths.path(paths.job, "download", exchange)
    return cache_dir(exchange, paths)


def cache_dir(exchange: str, paths: ContainerPaths) -> str:
    """The shared candle cache's directory of an exchange, as freqtrade's datadir."""
    return paths.path(paths.candles, exchange)


def bot_run_dir(bot_id: uuid.UUID, paths: ContainerPaths = CONTAINER_PATHS) -> str:
    """The bot's own directory in the tenant volume: its trade database and data live there."""
    return paths.path(paths.user_data, "bots", bot_id.hex)


def build_bot_config(
    config: BotConfig,
    *,
    bot_id: uuid.UUID,
    strategy_name: str,
    gateway_url: str,
    api: BotApiSecrets,
    paths: ContainerPaths = CONTAINER_PATHS,
) -> dict[str, Any]:
    """The complete freqtrade configuration of `freqtrade trade` for one bot, its REST API
    server on with the secrets `api`."""
    # Validated again: a BotConfig built without validation must not slip anything through.
    config = parse_bot_config(config.model_dump())
    check_strategy_name(strategy_name)
    run_dir = bot_run_dir(bot_id, paths)
    freqtrade = forced_config(
        config,
        bot_name=f"fta-{bot_id.hex[:12]}",
        gateway_url=gateway_url,
        datadir=paths.path(run_dir, "data"),
        user_data_dir=run_dir,
        strategy_name=strategy_name,
        paths=paths,
    )
    freqtrade.update(
        {
            "initial_state": "running",
            "force_entry_enable": False,
            # No webhook or external_message_consumer section: freqtrade leaves them off
            # unless configured (and its schema wants their addresses whenever they appear).
            "api_server": api_server_section(api),
            "telegram": {"enabled": False, "token": "", "chat_id": ""},
            "db_url": f"sqlite:///{paths.path(run_dir, 'tradesv3.dryrun.sqlite')}",
        }
    )
    return freqtrade
