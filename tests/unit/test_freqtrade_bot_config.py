"""A bot's option allow-list and the freqtrade configuration built from it: always dry-run,
never an exchange key, whatever the client sends."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from fta.freqtrade.bot_api import derive_secrets
from fta.freqtrade.config import ContainerPaths, build_bot_config
from fta.freqtrade.options import BOT_OPTIONS, BotConfig, parse_bot_config

GATEWAY = "http://fta-market-data:8090"
BASE: dict[str, Any] = {"pairs": ["BTC/USDT", "ETH/USDT"], "timeframe": "5m"}
BOT_ID = uuid.UUID("0123456789abcdef0123456789abcdef")
API = derive_secrets(b"k" * 32, BOT_ID)
# Anything that would let a bot trade for real, reach the exchange or open a port.
HOSTILE: dict[str, Any] = {
    "dry_run": False,
    "exchange": {
        "name": "binance",
        "key": "AKIAREALKEY",
        "secret": "s3cr3t",  # pragma: allowlist secret
    },
    "key": "AKIAREALKEY",
    "secret": "s3cr3t",  # pragma: allowlist secret
    "api_server": {"enabled": True, "listen_port": 8080},
    "telegram": {"enabled": True, "token": "t"},
    "db_url": "postgresql://elsewhere",
    "ccxt_config": {"urls": {"api": "https://api.binance.com"}},
    "trading_mode": "futures",
    "user_data_dir": "/",
}


def _errors(raw: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        parse_bot_config(raw)
    return " | ".join(error["msg"] for error in caught.value.errors())


def _build(config: BotConfig, **kwargs: Any) -> dict[str, Any]:
    return build_bot_config(
        config, bot_id=BOT_ID, strategy_name="Mine", gateway_url=GATEWAY, api=API, **kwargs
    )


def test_defaults_and_stake_currency() -> None:
    config = parse_bot_config(BASE)
    assert config.exchange == "binance" and config.stake_currency == "USDT"
    assert (config.stake_amount, config.dry_run_wallet) == (Decimal(100), Decimal(1000))
    assert config.max_open_trades == 3
    assert BOT_OPTIONS == (
        "exchange",
        "pairs",
        "timeframe",
        "stake_amount",
        "max_open_trades",
        "dry_run_wallet",
    )


@pytest.mark.parametrize("option", sorted(HOSTILE))
def test_every_other_option_is_refused(option: str) -> None:
    message = _errors({**BASE, option: HOSTILE[option]})
    if option == "dry_run":
        assert "bots always run in dry-run mode" in message
    elif option == "exchange":
        assert "binance" in message  # exchange is a name, not a block of settings
    else:
        assert f"unknown option '{option}'" in message


def test_dry_run_true_is_refused_as_well() -> None:
    assert "cannot be set" in _errors({**BASE, "dry_run": True})


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"stake_amount": "1000.00000001"}, "stake_amount must not exceed dry_run_wallet"),
        ({"stake_amount": 0}, "greater than 0"),
        ({"dry_run_wallet": "-1"}, "greater than 0"),
        ({"max_open_trades": 51}, "less than or equal to 50"),
        ({"pairs": []}, "at least 1"),
        ({"pairs": ["BTC/USDT", "BTC/USDT"]}, "must not repeat"),
        ({"pairs": ["BTC/USDT", "ETH/BTC"]}, "same quote currency"),
        ({"timeframe": "2m"}, "Input should be"),
    ],
)
def test_bounds(change: dict[str, Any], expected: str) -> None:
    assert expected in _errors({**BASE, **change})


def test_the_built_config_is_always_dry_run_without_keys() -> None:
    config = parse_bot_config({**BASE, "stake_amount": "12.5", "dry_run_wallet": 50})
    built = _build(config)
    assert built["dry_run"] is True
    assert (built["stake_amount"], built["dry_run_wallet"]) == (12.5, 50)
    assert built["stake_currency"] == "USDT"
    exchange = built["exchange"]
    assert all(exchange[name] == "" for name in ("key", "secret", "password", "uid"))
    assert exchange["enable_ws"] is False and exchange["pair_whitelist"] == BASE["pairs"]
    urls = exchange["ccxt_config"]["urls"]["api"]
    assert all(url.startswith(f"{GATEWAY}/binance/") for url in urls.values())
    assert not {"webhook", "external_message_consumer"} & set(built)
    # Its own API server, on its tenant network only, with secrets derived for this bot.
    api = built["api_server"]
    assert api["enabled"] is True and api["listen_port"] == 8080
    assert (api["username"], api["password"]) == ("fta", API.password)
    assert api["jwt_secret_key"] == API.jwt_secret_key and api["ws_token"] == [API.ws_token]
    assert api["CORS_origins"] == [] and api["enable_openapi"] is False
    assert built["telegram"]["enabled"] is False
    assert built["strategy"] == "Mine" and built["trading_mode"] == "spot"
    run_dir = f"/freqtrade/user_data/bots/{BOT_ID.hex}"
    assert built["user_data_dir"] == run_dir
    assert built["db_url"] == f"sqlite:///{run_dir}/tradesv3.dryrun.sqlite"
    text = json.dumps(built)
    assert "AKIA" not in text and "api.binance.com" not in text


def test_a_config_built_without_validation_is_validated_again() -> None:
    """model_construct skips validation: build_bot_config does not trust its argument."""
    smuggled = BotConfig.model_construct(**{**BASE, "stake_amount": Decimal(10**12)})
    with pytest.raises(ValidationError):
        _build(smuggled)


@pytest.mark.parametrize("name", ["Not-A-Class", "class", "", "x" * 101])
def test_the_strategy_name_must_be_a_class_name(name: str) -> None:
    with pytest.raises(ValueError, match="Python class name"):
        build_bot_config(
            parse_bot_config(BASE), bot_id=BOT_ID, strategy_name=name, gateway_url=GATEWAY, api=API
        )


def test_container_paths_can_move() -> None:
    paths = ContainerPaths(user_data="/data", job="/srv/job")
    built = _build(parse_bot_config(BASE), paths=paths)
    assert built["user_data_dir"] == f"/data/bots/{BOT_ID.hex}"
    assert built["strategy_path"] == "/srv/job/strategies"
