"""A bot's own freqtrade REST API, and the relay through which its owner reaches it.

Each bot's container runs freqtrade's API server on port `API_PORT`, reachable only on its
tenant's network. Its password, JWT key and websocket token are derived from a key of the
platform and the bot's id (`derive_secrets`): nothing is stored, and the client never sees
them. The portal reaches a bot only through the market-data gateway, which sits on every
tenant network: it sends the gateway a signed request (`relay_signature`) naming the bot's
address, and the gateway forwards it there after checking the signature, its age, its
nonce, the address (`is_bot_api_target`: the upper half of a tenant subnet of the pool, port
`API_PORT`) and the endpoint (`relayable`: an allow-list of freqtrade's routes).

Standard library only: the portal, the worker and the gateway all use it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
import uuid
from dataclasses import dataclass
from typing import Any

API_PORT = 8080
API_USERNAME = "fta"
API_PREFIX = "/api/v1/"

# The relay's own headers (the portal's request to the gateway).
TARGET_HEADER = "x-fta-relay-target"
TIME_HEADER = "x-fta-relay-time"
NONCE_HEADER = "x-fta-relay-nonce"
SIGNATURE_HEADER = "x-fta-relay-signature"
# The gateway's answer carries the bot's own status here (its HTTP status is the relay's).
BOT_STATUS_HEADER = "x-fta-bot-status"
# A signed request is accepted this long after it was made (and this little before, for
# clocks apart); its nonce is remembered as long.
MAX_AGE_SECONDS = 30
MAX_SKEW_SECONDS = 5
NONCE_RE = re.compile(r"[0-9a-f]{32}")
# Bounds of what is relayed, both ways.
MAX_QUERY_CHARS = 2048
MAX_REQUEST_BYTES = 64 * 1024
MAX_ANSWER_BYTES = 4 * 1024 * 1024
_QUERY_RE = re.compile(r"[A-Za-z0-9_.~%&=+,:/-]*")
_SIGNATURE_RE = re.compile(r"[0-9a-f]{64}")
_TARGET_RE = re.compile(r"([0-9]{1,3}(?:\.[0-9]{1,3}){3}):([1-9][0-9]{0,4})")

_ID = r"[0-9]{1,10}"
# freqtrade 2026.9's routes a dry-run bot's owner may call, by method: what a bot in trade
# mode shows of itself, and the controls of a dry run. Not relayed: the strategy's source,
# the webserver mode's heavy work (backtests, pair list evaluation, data downloads, analysis,
# background jobs), market lists, trade deletion and forced entries (refused by the bot's
# config anyway), pair locks and blacklist changes, and the websocket.
_RELAYED: dict[str, tuple[str, ...]] = {
    "GET": (
        "ping",
        "version",
        "show_config",
        "health",
        "sysinfo",
        "logs",
        "status",
        "count",
        "trades",
        f"trade/{_ID}",
        "profit",
        "profit_all",
        "performance",
        "entries",
        "exits",
        "mix_tags",
        "balance",
        "daily",
        "weekly",
        "monthly",
        "stats",
        "whitelist",
        "blacklist",
        "locks",
        "plot_config",
        "pair_candles",
    ),
    "POST": (
        "start",
        "stop",
        "pause",
        "stopentry",
        "stopbuy",
        "reload_config",
        "forceexit",
        "forcesell",
        "pair_candles",
    ),
}
_RELAYED_RE = {method: re.compile("|".join(paths)) for method, paths in _RELAYED.items()}
# Routes relayed only without a query: with one, plot_config loads a strategy by name.
_NO_QUERY = frozenset({"plot_config"})


@dataclass(frozen=True)
class BotApiSecrets:
    password: str
    jwt_secret_key: str
    ws_token: str

    @property
    def authorization(self) -> str:
        """The Authorization header freqtrade's API server accepts from the relay."""
        pair = f"{API_USERNAME}:{self.password}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")


def derive_secrets(key: bytes, bot_id: uuid.UUID) -> BotApiSecrets:
    """The bot's API secrets: a keyed hash of its id per purpose, the same in every process
    that holds `key`, and unguessable without it."""

    def part(purpose: str) -> str:
        message = f"bot-api|{bot_id}|{purpose}".encode()
        return hmac.new(key, message, hashlib.sha256).hexdigest()

    return BotApiSecrets(part("password"), part("jwt_secret_key"), part("ws_token"))


def api_server_section(secrets: BotApiSecrets) -> dict[str, Any]:
    """freqtrade's `api_server` block of a bot: on every address of the container (its
    tenant network is the only one), no browser origin allowed, no interactive docs."""
    return {
        "enabled": True,
        "listen_ip_address": "0.0.0.0",  # noqa: S104 - the container's own network only
        "listen_port": API_PORT,
        "verbosity": "error",
        "enable_openapi": False,
        "jwt_secret_key": secrets.jwt_secret_key,
        "ws_token": [secrets.ws_token],
        "CORS_origins": [],
        "username": API_USERNAME,
        "password": secrets.password,
    }


def relayable(method: str, path: str, query: str = "") -> bool:
    """Whether the portal relays `method` on `path` (after /api/v1/) with `query`."""
    pattern = _RELAYED_RE.get(method)
    if pattern is None or not pattern.fullmatch(path):
        return False
    return not (query and path in _NO_QUERY)


def valid_query(query: str) -> bool:
    return len(query) <= MAX_QUERY_CHARS and _QUERY_RE.fullmatch(query) is not None


def is_bot_api_target(address: str, port: int, pool: str, prefix: int) -> bool:
    """Whether `address:port` may be a bot's API: `API_PORT` on an address of the dynamic
    range (the upper half, broadcast excluded) of one of the pool's tenant subnets. The same
    layout as fta.runtime.network.tenant_subnet: the bridge (.1), the gateway (.2) and the
    DNS address (.3) are in the lower half, never a target."""
    if port != API_PORT:
        return False
    try:
        ip = ipaddress.IPv4Address(address)
        network = ipaddress.IPv4Network(pool)
    except ValueError:
        return False
    if ip not in network or not network.prefixlen <= prefix <= 29:
        return False
    size = 1 << (32 - prefix)
    offset = (int(ip) - int(network.network_address)) % size
    return size // 2 <= offset < size - 1


def in_tenant_range(address: str, pool: str, prefix: int, index: int) -> bool:
    """Whether `address` is in the dynamic range of the pool's `index`-th tenant subnet."""
    if not is_bot_api_target(address, API_PORT, pool, prefix):
        return False
    start = int(ipaddress.IPv4Network(pool).network_address)
    return (int(ipaddress.IPv4Address(address)) - start) >> (32 - prefix) == index


def in_pool(address: str, pool: str) -> bool:
    """Whether `address` (an IPv4-mapped IPv6 address included) is in the tenant pool."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip in ipaddress.ip_network(pool)


def parse_target(value: str) -> tuple[str, int] | None:
    """`address:port` as the relay header carries it, or None."""
    match = _TARGET_RE.fullmatch(value)
    if match is None:
        return None
    return match[1], int(match[2])


def relay_signature(
    key: bytes,
    *,
    method: str,
    target: str,
    path: str,
    query: str,
    timestamp: int,
    nonce: str,
    body: bytes,
    authorization: str,
) -> str:
    """The HMAC-SHA256 that binds one relayed request: everything the gateway forwards, when
    it was made and its nonce."""
    message = "\n".join(
        [
            "fta-bot-relay-v1",
            method,
            target,
            path,
            query,
            str(timestamp),
            nonce,
            hashlib.sha256(body).hexdigest(),
            hashlib.sha256(authorization.encode()).hexdigest(),
        ]
    )
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def signature_matches(expected: str, given: str) -> bool:
    return _SIGNATURE_RE.fullmatch(given) is not None and hmac.compare_digest(expected, given)
