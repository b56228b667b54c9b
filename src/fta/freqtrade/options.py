"""The options a client may set for a job or a bot: an allow-list, each option bounded.

A client's job `config` (POST /api/v1/jobs) is validated by `JobConfig`, with the job's kind
(`parse_job_config`) to also refuse the options that do not apply to it; a bot's by `BotConfig`
(`parse_bot_config`). Exchange, pairs and timeframe are checked alike for both; whether the
exchange lists the pairs depends on the market-data mode and its market list in the database,
and is checked by the job and bot services (`fta.jobs.market_pairs`).
"""

from __future__ import annotations

import keyword
import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal, get_args

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

# The kinds of job a bundle runs (a bot's bundle is of kind "bot", see fta.freqtrade.bundle).
JobKind = Literal["backtest", "hyperopt", "download-data", "cache-fill"]
JOB_KINDS: tuple[str, ...] = get_args(JobKind)

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
    if kind not in JOB_KINDS:
        raise ValueError(f"unknown job kind {kind!r}; expected one of {JOB_KINDS}")
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


def check_strategy_name(name: str) -> str:
    """A strategy is named by its class: a Python identifier, at most 100 characters."""
    if not name.isidentifier() or keyword.iskeyword(name) or len(name) > 100:
        raise ValueError("strategy_name must be a Python class name (at most 100 characters)")
    return name


Amount = Annotated[Decimal, Field(gt=0, le=10**9, decimal_places=8)]
MAX_PAIRS_PER_BOT = 20


class BotConfig(BaseModel):
    """The options a client may set for a bot; anything else is refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    exchange: Exchange = "binance"
    pairs: Annotated[list[str], Field(min_length=1, max_length=MAX_PAIRS_PER_BOT)]
    timeframe: Timeframe = "5m"
    stake_amount: Amount = Decimal(100)
    max_open_trades: Annotated[int, Field(ge=1, le=50)] = 3
    dry_run_wallet: Amount = Decimal(1000)

    @model_validator(mode="before")
    @classmethod
    def _only_known_options(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for option in data:
            if option == "dry_run":
                # Refused rather than ignored: a client who asks for live trading must know.
                raise PydanticCustomError(
                    "dry_run_forced",
                    "option 'dry_run' cannot be set: bots always run in dry-run mode, "
                    "with a simulated wallet (dry_run_wallet) and no exchange keys",
                )
            if option not in BOT_OPTIONS:
                raise PydanticCustomError(
                    "unknown_option",
                    "unknown option '{option}'; allowed: {allowed}",
                    {"option": str(option)[:64], "allowed": ", ".join(BOT_OPTIONS)},
                )
        return data

    @field_validator("pairs")
    @classmethod
    def _pair_format(cls, value: list[str]) -> list[str]:
        return check_pair_format(value)

    @model_validator(mode="after")
    def _consistent(self) -> BotConfig:
        if len({pair.split("/")[1] for pair in self.pairs}) != 1:
            raise ValueError("every pair must have the same quote currency (the stake currency)")
        if self.stake_amount > self.dry_run_wallet:
            raise ValueError("stake_amount must not exceed dry_run_wallet")
        return self

    @property
    def stake_currency(self) -> str:
        return self.pairs[0].split("/")[1]


BOT_OPTIONS: tuple[str, ...] = tuple(BotConfig.model_fields)


def parse_bot_config(raw: Any) -> BotConfig:
    """Validate a client's bot config (raises pydantic.ValidationError)."""
    return BotConfig.model_validate(raw)
