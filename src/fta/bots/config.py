"""A bot's client options (an allow-list) and the freqtrade configuration its container runs.

`BotConfig` accepts only the options in `BOT_OPTIONS`, each bounded; exchange, pairs and
timeframe are checked exactly as for jobs (that the exchange lists the pairs, by the bot
service). `build_bot_config` turns it into a complete
freqtrade configuration in which everything that matters for isolation is forced by us:
dry-run always, no API keys, every exchange URL pointing at the market-data gateway, no
websockets, no REST API server, no Telegram, fixed container paths. The bot's container
reports its status on its own output, so freqtrade's API server stays disabled.
"""

from __future__ import annotations

import keyword
import uuid
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from fta.jobs.freqtrade_config import (
    BUNDLE_VERSION,
    CONTAINER_PATHS,
    ContainerPaths,
    Exchange,
    Timeframe,
    ccxt_config,
    check_pair_format,
)

Amount = Annotated[Decimal, Field(gt=0, le=10**9, decimal_places=8)]
MAX_PAIRS = 20


class BotConfig(BaseModel):
    """The options a client may set for a bot; anything else is refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    exchange: Exchange = "binance"
    pairs: Annotated[list[str], Field(min_length=1, max_length=MAX_PAIRS)]
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


def _number(value: Decimal) -> float | int:
    return int(value) if value == value.to_integral_value() else float(value)


def bot_run_dir(bot_id: uuid.UUID, paths: ContainerPaths = CONTAINER_PATHS) -> str:
    """The bot's own directory in the tenant volume: its trade database and data live there."""
    return paths.path(paths.user_data, "bots", bot_id.hex)


def build_bot_config(
    config: BotConfig,
    *,
    bot_id: uuid.UUID,
    strategy_name: str,
    gateway_url: str,
    paths: ContainerPaths = CONTAINER_PATHS,
) -> dict[str, Any]:
    """The complete freqtrade configuration of `freqtrade trade` for one bot."""
    # Validated again: a BotConfig built without validation must not slip anything through.
    config = parse_bot_config(config.model_dump())
    if (
        not strategy_name.isidentifier()
        or keyword.iskeyword(strategy_name)
        or len(strategy_name) > 100
    ):
        raise ValueError("strategy_name must be a Python class name (at most 100 characters)")
    run_dir = bot_run_dir(bot_id, paths)
    return {
        "bot_name": f"fta-{bot_id.hex[:12]}",
        "dry_run": True,
        "dry_run_wallet": _number(config.dry_run_wallet),
        "stake_currency": config.stake_currency,
        "stake_amount": _number(config.stake_amount),
        "max_open_trades": config.max_open_trades,
        "timeframe": config.timeframe,
        "trading_mode": "spot",
        "margin_mode": "",
        "initial_state": "running",
        "force_entry_enable": False,
        "exchange": {
            "name": config.exchange,
            "key": "",
            "secret": "",
            "password": "",
            "uid": "",
            "enable_ws": False,
            "pair_whitelist": list(config.pairs),
            "pair_blacklist": [],
            "ccxt_config": ccxt_config(config.exchange, gateway_url),
        },
        "pairlists": [{"method": "StaticPairList"}],
        "entry_pricing": {"price_side": "same", "use_order_book": True, "order_book_top": 1},
        "exit_pricing": {"price_side": "same", "use_order_book": True, "order_book_top": 1},
        # No api_server, webhook or external_message_consumer section: freqtrade leaves them
        # off unless configured (and its schema wants their addresses whenever they appear).
        "telegram": {"enabled": False, "token": "", "chat_id": ""},
        "db_url": f"sqlite:///{paths.path(run_dir, 'tradesv3.dryrun.sqlite')}",
        "dataformat_ohlcv": "feather",
        "dataformat_trades": "feather",
        "datadir": paths.path(run_dir, "data"),
        "user_data_dir": run_dir,
        "strategy": strategy_name,
        "strategy_path": paths.path(paths.job, "strategies"),
        "recursive_strategy_search": False,
        "internals": {"process_throttle_secs": 5},
    }


def build_bot_bundle(
    config: BotConfig,
    *,
    bot_id: uuid.UUID,
    strategy_name: str,
    strategy_source: str,
    gateway_url: str,
    report_interval_s: int,
    paths: ContainerPaths = CONTAINER_PATHS,
) -> dict[str, Any]:
    """The bundle the container entry runs for a bot: `freqtrade trade`, and every
    `report_interval_s` a status report read from the bot's own trade database."""
    freqtrade = build_bot_config(
        config, bot_id=bot_id, strategy_name=strategy_name, gateway_url=gateway_url, paths=paths
    )
    config_path = paths.path(paths.job, "config.json")
    return {
        "version": BUNDLE_VERSION,
        "kind": "bot",
        "strategy_name": strategy_name,
        "strategy_source": strategy_source,
        "job_dir": paths.job,
        "config": freqtrade,
        "argv": ["trade", "--config", config_path],
        "report": {
            "interval_s": report_interval_s,
            "db_path": freqtrade["db_url"].removeprefix("sqlite:///"),
            "wallet": str(config.dry_run_wallet),
        },
    }
