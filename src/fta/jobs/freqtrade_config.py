"""Client job options (an allow-list) and the bundle a freqtrade job container runs.

A client's `config` (POST /api/v1/jobs) is validated by `JobConfig`: only the options listed
in `ALLOWED_OPTIONS`, each bounded. `build_job_bundle` turns it into a complete freqtrade
configuration in which everything that matters for isolation is forced by us, never by the
client: dry-run, no API keys, every exchange URL pointing at the market-data gateway, no
websockets, no API server or Telegram, fixed container paths.

The bundle travels to the container in environment variables `FTA_BUNDLE_0..N`, each a chunk
of at most `BUNDLE_CHUNK_CHARS` characters of base64(gzip(json)); the container's entry
(images/freqtrade/fta_job_entry.py) joins, decodes and removes them before running freqtrade.
"""

from __future__ import annotations

import base64
import gzip
import json
import keyword
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from fta.markets import INTERVAL_MS
from fta.strategies.startup import declared_startup_candles

BundleKind = Literal["backtest", "hyperopt", "download-data", "cache-fill"]
BUNDLE_KINDS: tuple[str, ...] = get_args(BundleKind)
BUNDLE_VERSION = 1
BUNDLE_ENV_PREFIX = "FTA_BUNDLE_"
BUNDLE_CHUNK_CHARS = 100_000

# Container paths (the defaults of ContainerPaths).
USER_DATA_DIR = "/freqtrade/user_data"  # the tenant's volume
CANDLE_CACHE_DIR = "/candles"  # shared candle cache: read-only in tenant jobs
JOB_DIR = "/tmp/job"  # noqa: S108 - the container's private tmpfs, not a shared /tmp

# Timeframes a job may use: fixed-length Binance intervals freqtrade supports.
TIMEFRAMES = (
    "1m",
    "3m",
    "5m",
    "15m",
    "30m",
    "1h",
    "2h",
    "4h",
    "6h",
    "8h",
    "12h",
    "1d",
    "3d",
    "1w",
)
Timeframe = Literal[
    "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w"
]
HyperoptSpace = Literal[
    "buy",
    "sell",
    "enter",
    "exit",
    "roi",
    "stoploss",
    "trailing",
    "protection",
    "trades",
    "default",
    "all",
]
# freqtrade.constants.HYPEROPT_LOSS_BUILTIN of freqtrade 2026.9.
HyperoptLoss = Literal[
    "ShortTradeDurHyperOptLoss",
    "OnlyProfitHyperOptLoss",
    "SharpeHyperOptLoss",
    "SharpeHyperOptLossDaily",
    "SortinoHyperOptLoss",
    "SortinoHyperOptLossDaily",
    "CalmarHyperOptLoss",
    "MaxDrawDownHyperOptLoss",
    "MaxDrawDownRelativeHyperOptLoss",
    "MaxDrawDownPerPairHyperOptLoss",
    "ProfitDrawDownHyperOptLoss",
    "MultiMetricHyperOptLoss",
]
Exchange = Literal["binance"]

HYPEROPT_OPTIONS = ("epochs", "spaces", "hyperopt_loss", "random_state")
# freqtrade reads a random state of 0 as "none given" and draws one: a seed is 1 or more.
MAX_RANDOM_STATE = 2**32 - 1  # numpy's seed range, used by optuna's samplers
DATA_OPTIONS = ("exchange", "pairs", "timeframe", "timerange")
EARLIEST_DATE = date(2017, 1, 1)  # before any Binance candle
# Every pattern below is matched whole (fullmatch) and names its ASCII characters: `$` would
# let a trailing newline through, `\d` any Unicode digit, and both would reach freqtrade.
_PAIR_RE = re.compile(r"[A-Z0-9]{1,20}/[A-Z0-9]{1,20}")
_TIMERANGE_RE = re.compile(r"([0-9]{8})-([0-9]{8})")
_ROI_MINUTES_RE = re.compile(r"[0-9]{1,6}")
_RUN_ID_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")

Ratio = Annotated[Decimal, Field(gt=0, lt=1, max_digits=12, decimal_places=8)]


def check_pair_format(value: list[str]) -> list[str]:
    """Pairs look like BASE/QUOTE and do not repeat (shared by job and bot configs)."""
    for pair in value:
        if not _PAIR_RE.fullmatch(pair):
            raise ValueError(f"pair {pair[:64]!r} is not of the form BASE/QUOTE")
    if len(set(value)) != len(value):
        raise ValueError("pairs must not repeat")
    return value


class JobConfig(BaseModel):
    """The options a client may set for a job; anything else is refused.

    Validate with a kind to also refuse options that do not apply to it:
    `JobConfig.model_validate(raw, context={"kind": "backtest"})` (see `parse_job_config`).
    Whether the exchange lists the pairs depends on the market-data mode and its market list
    in the database: the job service checks it (`fta.jobs.market_pairs`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    exchange: Exchange = "binance"
    pairs: Annotated[list[str], Field(min_length=1, max_length=50)]
    timeframe: Timeframe = "5m"
    timerange: str
    stake_amount: (
        Annotated[Decimal, Field(gt=0, le=10**9, decimal_places=8)] | Literal["unlimited"]
    ) = Decimal(100)
    stake_currency: Annotated[str, Field(pattern=r"^[A-Z0-9]{1,20}$")] = "USDT"
    max_open_trades: Annotated[int, Field(ge=1, le=50)] = 3
    dry_run_wallet: Annotated[Decimal, Field(gt=0, le=10**9, decimal_places=8)] = Decimal(1000)
    minimal_roi: (
        Annotated[
            dict[str, Annotated[Decimal, Field(decimal_places=8)]],
            Field(min_length=1, max_length=20),
        ]
        | None
    ) = None
    stoploss: Annotated[Decimal, Field(ge=-1, lt=0, decimal_places=8)] | None = None
    trailing_stop: bool | None = None
    trailing_stop_positive: Ratio | None = None
    trailing_stop_positive_offset: (
        Annotated[Decimal, Field(ge=0, lt=1, decimal_places=8)] | None
    ) = None
    trailing_only_offset_is_reached: bool | None = None
    fee: Annotated[Decimal, Field(ge=0, le=Decimal("0.1"), decimal_places=8)] | None = None
    epochs: Annotated[int, Field(ge=1, le=1000)] = 100
    spaces: Annotated[tuple[HyperoptSpace, ...], Field(min_length=1, max_length=11)] = ("default",)
    hyperopt_loss: HyperoptLoss = "SharpeHyperOptLoss"
    random_state: Annotated[int, Field(ge=1, le=MAX_RANDOM_STATE, strict=True)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _only_known_options(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        kind = (info.context or {}).get("kind")
        allowed = options_for_kind(kind) if kind is not None else ALLOWED_OPTIONS
        for option in data:
            if option not in allowed:
                known = option in ALLOWED_OPTIONS
                raise PydanticCustomError(
                    "option_not_applicable" if known else "unknown_option",
                    "option '{option}' does not apply to {kind} jobs; allowed: {allowed}"
                    if known
                    else "unknown option '{option}'; allowed: {allowed}",
                    {"option": str(option)[:64], "kind": kind, "allowed": ", ".join(allowed)},
                )
        return data

    @field_validator("pairs")
    @classmethod
    def _pair_format(cls, value: list[str]) -> list[str]:
        return check_pair_format(value)

    @field_validator("timerange")
    @classmethod
    def _timerange(cls, value: str) -> str:
        start, end = parse_timerange(value)
        if start < EARLIEST_DATE:
            raise ValueError(f"timerange must not start before {EARLIEST_DATE:%Y%m%d}")
        if end > datetime.now(UTC).date() + timedelta(days=1):
            raise ValueError("timerange must not end after tomorrow")
        return value

    @field_validator("minimal_roi")
    @classmethod
    def _roi(cls, value: dict[str, Decimal] | None) -> dict[str, Decimal] | None:
        if value is None:
            return None
        for minutes, ratio in value.items():
            if not _ROI_MINUTES_RE.fullmatch(minutes):
                raise ValueError(f"minimal_roi keys are minutes (0-999999), not {minutes[:32]!r}")
            if not Decimal(-1) < ratio <= Decimal(100):
                raise ValueError("minimal_roi ratios must be in (-1, 100]")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> JobConfig:
        quotes = {pair.split("/")[1] for pair in self.pairs}
        if quotes != {self.stake_currency}:
            raise ValueError(f"every pair must be quoted in stake_currency {self.stake_currency}")
        if isinstance(self.stake_amount, Decimal) and self.stake_amount > self.dry_run_wallet:
            raise ValueError("stake_amount must not exceed dry_run_wallet")
        positive = self.trailing_stop_positive
        offset = self.trailing_stop_positive_offset
        if self.trailing_only_offset_is_reached and not offset:
            raise ValueError(
                "trailing_only_offset_is_reached needs trailing_stop_positive_offset > 0"
            )
        if positive is not None and offset and offset <= positive:
            raise ValueError(
                "trailing_stop_positive_offset must be greater than trailing_stop_positive"
            )
        return self


ALLOWED_OPTIONS: tuple[str, ...] = tuple(JobConfig.model_fields)


def options_for_kind(kind: str) -> tuple[str, ...]:
    """The options that apply to a job kind."""
    if kind not in BUNDLE_KINDS:
        raise ValueError(f"unknown job kind {kind!r}; expected one of {BUNDLE_KINDS}")
    if kind in ("download-data", "cache-fill"):
        return DATA_OPTIONS
    if kind == "backtest":
        return tuple(name for name in ALLOWED_OPTIONS if name not in HYPEROPT_OPTIONS)
    return ALLOWED_OPTIONS


def parse_job_config(kind: str, raw: Any) -> JobConfig:
    """Validate a client's config for a job kind (raises pydantic.ValidationError)."""
    options_for_kind(kind)
    return JobConfig.model_validate(raw, context={"kind": kind})


def parse_timerange(value: str) -> tuple[date, date]:
    """Parse "YYYYMMDD-YYYYMMDD" (start strictly before end)."""
    match = _TIMERANGE_RE.fullmatch(value)
    if not match:
        raise ValueError("timerange must look like YYYYMMDD-YYYYMMDD")
    try:
        start, end = (datetime.strptime(part, "%Y%m%d").date() for part in match.groups())
    except ValueError:
        raise ValueError("timerange holds an invalid date") from None
    if start >= end:
        raise ValueError("timerange start must be before its end")
    return start, end


def first_startup_day(start: date, timeframe: str, startup_candles: int) -> date:
    """The day of the first candle freqtrade loads for a range starting on `start`: it loads
    `startup_candles` candles of `timeframe` before the start."""
    before = timedelta(milliseconds=INTERVAL_MS[timeframe] * startup_candles)
    return (datetime.combine(start, time.min, UTC) - before).date()


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


def _number(value: Decimal) -> float | int:
    return int(value) if value == value.to_integral_value() else float(value)


def _strategy_overrides(job: JobConfig) -> dict[str, Any]:
    """Only the options the client set: the strategy keeps its own values otherwise."""
    overrides: dict[str, Any] = {}
    if job.minimal_roi is not None:
        overrides["minimal_roi"] = {k: _number(v) for k, v in job.minimal_roi.items()}
    for name in ("stoploss", "trailing_stop_positive", "trailing_stop_positive_offset", "fee"):
        value = getattr(job, name)
        if value is not None:
            overrides[name] = _number(value)
    for name in ("trailing_stop", "trailing_only_offset_is_reached"):
        flag = getattr(job, name)
        if flag is not None:
            overrides[name] = flag
    return overrides


def freqtrade_config(
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
    exchange = job.exchange
    data_dir = _data_dir(kind, exchange, paths)
    config: dict[str, Any] = {
        "bot_name": "fta",
        "dry_run": True,
        "dry_run_wallet": _number(job.dry_run_wallet),
        "stake_currency": job.stake_currency,
        "stake_amount": job.stake_amount
        if job.stake_amount == "unlimited"
        else _number(job.stake_amount),
        "max_open_trades": job.max_open_trades,
        "timeframe": job.timeframe,
        "trading_mode": "spot",
        "margin_mode": "",
        "exchange": {
            "name": exchange,
            "key": "",
            "secret": "",
            "password": "",
            "uid": "",
            "enable_ws": False,
            # Binance's historic data would come from data.binance.vision, outside the gateway.
            "only_from_ccxt": True,
            "pair_whitelist": list(job.pairs),
            "pair_blacklist": [],
            "ccxt_config": ccxt_config(exchange, gateway_url),
        },
        "pairlists": [{"method": "StaticPairList"}],
        "entry_pricing": {"price_side": "same", "use_order_book": True, "order_book_top": 1},
        "exit_pricing": {"price_side": "same", "use_order_book": True, "order_book_top": 1},
        "dataformat_ohlcv": "feather",
        "dataformat_trades": "feather",
        "datadir": data_dir,
        "user_data_dir": run_dir,
        "internals": {"process_throttle_secs": 5},
        "recursive_strategy_search": False,
    }
    if strategy_name is not None:
        config["strategy"] = strategy_name
        config["strategy_path"] = paths.path(paths.job, "strategies")
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
    return _cache_dir(exchange, paths)


def _cache_dir(exchange: str, paths: ContainerPaths) -> str:
    """The shared candle cache's directory of an exchange, as freqtrade's datadir."""
    return paths.path(paths.candles, exchange)


def _argv(kind: str, job: JobConfig, config: dict[str, Any], config_path: str) -> list[str]:
    common = [
        "--config",
        config_path,
        "--userdir",
        config["user_data_dir"],
        "--datadir",
        config["datadir"],
        "--timerange",
        job.timerange,
    ]
    if kind == "download-data":
        # The client's candles are cut from the shared cache: no freqtrade run of its own.
        return []
    if kind == "cache-fill":
        return [
            "download-data",
            *common,
            "--timeframes",
            job.timeframe,
            "--data-format-ohlcv",
            "feather",
            "--no-parallel-download",
        ]
    strategy = [
        "--strategy",
        config["strategy"],
        "--strategy-path",
        config["strategy_path"],
        "--timeframe",
        job.timeframe,
        "--no-color",
    ]
    if kind == "backtest":
        return [
            "backtesting",
            *common,
            *strategy,
            "--export",
            "trades",
            "--backtest-directory",
            config["exportdirectory"],
            "--cache",
            "none",
        ]
    return [
        "hyperopt",
        *common,
        *strategy,
        "--epochs",
        str(job.epochs),
        "--spaces",
        *job.spaces,
        "--hyperopt-loss",
        job.hyperopt_loss,
        "-j",
        str(config["hyperopt_jobs"]),
        *(
            ["--random-state", str(config["hyperopt_random_state"])]
            if "hyperopt_random_state" in config
            else []
        ),
    ]


def _check_strategy_name(name: str) -> str:
    if not name.isidentifier() or keyword.iskeyword(name) or len(name) > 100:
        raise ValueError("strategy_name must be a Python class name (at most 100 characters)")
    return name


def build_job_bundle(
    kind: str,
    job_config: JobConfig,
    strategy_name: str | None,
    strategy_source: str | None,
    gateway_url: str,
    *,
    run_id: str | None = None,
    paths: ContainerPaths = CONTAINER_PATHS,
    job_workers: int = 1,
) -> dict[str, Any]:
    """The JSON bundle the container entry runs.

    `run_id` (the job id) names the run's own directory in the tenant volume,
    `<user_data>/runs/<run_id>`: freqtrade's user_data_dir for this run, so concurrent jobs of
    one tenant never share result files or hyperopt's lock. `paths` moves the container paths
    (for tests on the host). `job_workers` is how many processes a hyperopt runs its epochs
    in (freqtrade's `-j`), decided by the platform from the plan, never by the client.
    """
    if job_workers < 1:
        raise ValueError("job_workers must be at least 1")
    if kind not in BUNDLE_KINDS:
        raise ValueError(f"unknown job kind {kind!r}; expected one of {BUNDLE_KINDS}")
    parse_job_config(kind, job_config.model_dump(exclude_unset=True))
    run = run_id if run_id is not None else uuid.uuid4().hex
    if not _RUN_ID_RE.fullmatch(run):
        raise ValueError("run_id must be 1-64 lowercase letters, digits or dashes")
    needs_strategy = kind in ("backtest", "hyperopt")
    if needs_strategy:
        if strategy_name is None or strategy_source is None:
            raise ValueError(f"a {kind} job needs a strategy")
        _check_strategy_name(strategy_name)
    elif strategy_name is not None or strategy_source is not None:
        raise ValueError(f"a {kind} job runs no strategy")
    # cache-fill runs for no tenant: no tenant volume, its scratch user_data is on the tmpfs.
    if kind == "cache-fill":
        run_dir = paths.path(paths.job, "user_data")
    else:
        run_dir = paths.path(paths.user_data, "runs", run)
    config = freqtrade_config(
        kind, job_config, strategy_name, gateway_url, paths, run_dir, job_workers=job_workers
    )
    config_path = paths.path(paths.job, "config.json")
    argv = _argv(kind, job_config, config, config_path)
    bundle: dict[str, Any] = {
        "version": BUNDLE_VERSION,
        "kind": kind,
        "strategy_name": strategy_name,
        "strategy_source": strategy_source,
        "job_dir": paths.job,
        "config": config,
        "argv": argv,
    }
    bundle["timerange"] = job_config.timerange
    bundle["cache_dir"] = _cache_dir(job_config.exchange, paths)
    if needs_strategy:
        assert strategy_name is not None and strategy_source is not None  # noqa: S101 - above
        # What the cache was filled for, and what the entry checks freqtrade used.
        bundle["startup_candles"] = declared_startup_candles(strategy_source, strategy_name)
    return bundle


def encode_bundle(bundle: dict[str, Any]) -> dict[str, str]:
    """Environment variables FTA_BUNDLE_0..N carrying base64(gzip(json(bundle)))."""
    raw = json.dumps(bundle, separators=(",", ":"), sort_keys=True).encode()
    text = base64.b64encode(gzip.compress(raw, mtime=0)).decode("ascii")
    chunks = [text[i : i + BUNDLE_CHUNK_CHARS] for i in range(0, len(text), BUNDLE_CHUNK_CHARS)]
    return {f"{BUNDLE_ENV_PREFIX}{index}": chunk for index, chunk in enumerate(chunks)}


def decode_bundle(env: dict[str, str]) -> dict[str, Any]:
    """The inverse of `encode_bundle` (the container entry has its own stdlib copy)."""
    chunks: list[str] = []
    while f"{BUNDLE_ENV_PREFIX}{len(chunks)}" in env:
        chunks.append(env[f"{BUNDLE_ENV_PREFIX}{len(chunks)}"])
    if not chunks:
        raise ValueError("no FTA_BUNDLE_0 in the environment")
    bundle: dict[str, Any] = json.loads(gzip.decompress(base64.b64decode("".join(chunks))))
    return bundle
