"""The bot API relay's rules: secrets derived per bot, the addresses a relay may reach, the
freqtrade routes it relays, and the signature that binds a relayed request."""

from __future__ import annotations

import base64
import ipaddress
import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from fta.freqtrade import bot_api
from fta.runtime.network import tenant_subnet
from fta.settings import Mode, Settings

KEY = b"relay-key-for-tests-0123456789abcdef"  # pragma: allowlist secret
BOT = uuid.UUID("00000000-0000-4000-8000-000000000001")
OTHER_BOT = uuid.UUID("00000000-0000-4000-8000-000000000002")
POOL = "10.210.0.0/16"


def test_secrets_are_per_bot_per_key_and_per_purpose() -> None:
    first = bot_api.derive_secrets(KEY, BOT)
    assert first == bot_api.derive_secrets(KEY, BOT)  # the worker and the portal agree
    assert first != bot_api.derive_secrets(KEY, OTHER_BOT)
    assert first != bot_api.derive_secrets(b"another key", BOT)
    values = {first.password, first.jwt_secret_key, first.ws_token}
    assert len(values) == 3 and all(len(value) == 64 for value in values)
    scheme, encoded = first.authorization.split(" ")
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode() == f"fta:{first.password}"


@pytest.mark.parametrize("prefix", [24, 27, 29])
@pytest.mark.parametrize("index", [0, 1, 37])
def test_targets_are_exactly_the_dynamic_ranges_of_the_tenant_subnets(
    prefix: int, index: int
) -> None:
    layout = tenant_subnet(POOL, prefix, index)
    for address in layout.subnet:
        expected = address in layout.dynamic_range and address != layout.subnet.broadcast_address
        assert bot_api.is_bot_api_target(str(address), 8080, POOL, prefix) is expected, address
        assert bot_api.in_tenant_range(str(address), POOL, prefix, index) is expected
        assert not bot_api.in_tenant_range(str(address), POOL, prefix, index + 1)
    for fixed in (layout.bridge_ip, layout.gateway_ip, layout.dns_ip):
        assert not bot_api.is_bot_api_target(str(fixed), 8080, POOL, prefix)


@pytest.mark.parametrize(
    ("address", "port"),
    [
        ("10.210.0.20", 8090),  # another port
        ("10.210.0.20", 80),
        ("10.211.0.20", 8080),  # outside the pool
        ("10.209.0.5", 8080),  # the control network
        ("127.0.0.1", 8080),
        ("169.254.169.254", 8080),
        ("10.210.0.020", 8080),  # not a canonical address
        ("::ffff:10.210.0.20", 8080),
        ("", 8080),
    ],
)
def test_anything_else_is_no_target(address: str, port: int) -> None:
    assert bot_api.is_bot_api_target("10.210.0.20", 8080, POOL, 27)  # the control case
    assert not bot_api.is_bot_api_target(address, port, POOL, 27)


def test_the_relay_header_names_one_address_and_port() -> None:
    assert bot_api.parse_target("10.210.0.20:8080") == ("10.210.0.20", 8080)
    for bad in ("10.210.0.20", "10.210.0.20:8080:1", "host:8080", "10.210.0.20:80a", ""):
        assert bot_api.parse_target(bad) is None


def test_tenant_pool_membership_of_sources() -> None:
    assert bot_api.in_pool("10.210.3.2", POOL)
    assert bot_api.in_pool("::ffff:10.210.3.2", POOL)
    assert not bot_api.in_pool("10.209.0.4", POOL)
    assert not bot_api.in_pool("not an address", POOL)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "ping"),
        ("GET", "status"),
        ("GET", "trades"),
        ("GET", "trade/12"),
        ("GET", "profit"),
        ("GET", "balance"),
        ("GET", "daily"),
        ("GET", "whitelist"),
        ("GET", "blacklist"),
        ("GET", "show_config"),
        ("GET", "logs"),
        ("GET", "pair_candles"),
        ("POST", "start"),
        ("POST", "stop"),
        ("POST", "stopbuy"),
        ("POST", "reload_config"),
        ("POST", "forceexit"),
        ("POST", "forcesell"),
    ],
)
def test_the_routes_a_dry_run_owner_uses_are_relayed(method: str, path: str) -> None:
    assert bot_api.relayable(method, path)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "strategy/Mine"),  # the strategy's source
        ("GET", "strategies"),
        ("POST", "backtest"),
        ("GET", "backtest"),
        ("GET", "backtest/history"),
        ("POST", "pairlists/evaluate"),
        ("POST", "download_data"),
        ("GET", "background"),
        ("POST", "forceenter"),
        ("POST", "forcebuy"),
        ("DELETE", "trades/1"),
        ("POST", "blacklist"),
        ("DELETE", "blacklist"),
        ("POST", "locks"),
        ("GET", "markets"),
        ("GET", "message/ws"),
        ("GET", "token/login"),
        ("POST", "ping"),  # a relayed route, another method
        ("PUT", "start"),
        ("GET", "trade/1/../../strategy/Mine"),
        ("GET", "trade/x"),
        ("GET", "ping/"),
        ("GET", ""),
    ],
)
def test_everything_else_is_not(method: str, path: str) -> None:
    assert not bot_api.relayable(method, path)


def test_plot_config_is_relayed_without_a_query_only() -> None:
    assert bot_api.relayable("GET", "plot_config")
    assert not bot_api.relayable("GET", "plot_config", "strategy=Other")
    assert bot_api.relayable("GET", "trades", "limit=10&offset=5")


def test_queries_are_short_and_plain() -> None:
    assert bot_api.valid_query("pair=BTC%2FUSDT&timeframe=1m&limit=50")
    assert bot_api.valid_query("pair=BTC/USDT")
    assert not bot_api.valid_query("a=" + "x" * 2048)
    for bad in ("a=<script>", "a=b c", "a=\n", "a=\u00e9"):
        assert not bot_api.valid_query(bad)


def test_the_signature_binds_every_part_of_the_request() -> None:
    parts: dict[str, object] = {
        "method": "GET",
        "target": "10.210.0.20:8080",
        "path": "/api/v1/status",
        "query": "",
        "timestamp": 1_800_000_000,
        "nonce": "0" * 32,
        "body": b"",
        "authorization": "Basic abc",
    }
    signature = bot_api.relay_signature(KEY, **parts)  # type: ignore[arg-type]
    assert bot_api.signature_matches(signature, signature)
    changes = {
        "method": "POST",
        "target": "10.210.0.21:8080",
        "path": "/api/v1/profit",
        "query": "limit=1",
        "timestamp": 1_800_000_001,
        "nonce": "1" * 32,
        "body": b"{}",
        "authorization": "Basic abd",
    }
    for name, value in changes.items():
        changed = bot_api.relay_signature(KEY, **{**parts, name: value})  # type: ignore[arg-type]
        assert not bot_api.signature_matches(signature, changed), name
    other_key = bot_api.relay_signature(b"x" * 32, **parts)  # type: ignore[arg-type]
    assert not bot_api.signature_matches(signature, other_key)
    assert not bot_api.signature_matches(signature, signature.upper())
    assert not bot_api.signature_matches(signature, "")


def test_the_pool_layout_matches_the_runtime_for_the_whole_default_pool() -> None:
    """Spot checks over the pool: the first, a middle and the last subnet."""
    pool = ipaddress.ip_network(POOL)
    count = 2 ** (27 - pool.prefixlen)
    for index in (0, count // 2, count - 1):
        layout = tenant_subnet(POOL, 27, index)
        first_dynamic = layout.dynamic_range.network_address
        assert bot_api.in_tenant_range(str(first_dynamic), POOL, 27, index)
        assert not bot_api.in_tenant_range(str(first_dynamic - 1), POOL, 27, index)


@pytest.mark.parametrize("mode", [Mode.PRODUCTION, Mode.TEST])
def test_the_relay_key_is_refused_while_a_placeholder_or_short(mode: Mode) -> None:
    real: dict[str, Any] = {
        "mode": mode,
        "secret_key": "k" * 48,
        "audit_key": "a" * 48,
        "database_url": "postgresql+psycopg://fta@postgres/fta",
    }
    placeholder = "changeme-bot-relay-key-0123456789abcdef"  # pragma: allowlist secret
    with pytest.raises(ValidationError, match="FTA_BOT_RELAY_KEY still holds a placeholder"):
        Settings(**real, bot_relay_key=placeholder)
    with pytest.raises(ValidationError, match="FTA_BOT_RELAY_KEY must be at least 32"):
        Settings(**real, bot_relay_key="short-but-real")
    assert Settings(**real, bot_relay_key="r" * 64).bot_relay_key.get_secret_value() == "r" * 64
    # Unset: the portal relays nothing (processes other than the portal need no key).
    assert Settings(**real, bot_relay_key="").bot_relay_key.get_secret_value() == ""
    # Development takes anything.
    development = Settings(mode=Mode.DEVELOPMENT, bot_relay_key="changeme")
    assert development.bot_relay_key.get_secret_value() == "changeme"
