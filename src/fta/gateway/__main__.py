"""`python -m fta.gateway`: run the market-data gateway with uvicorn.

Environment: FTA_MARKET_DATA_MODE (replay|recorded|proxy, default replay),
FTA_MARKET_DATA_STORE (the recorded candle store, recorded mode, default
/var/lib/fta/market-data), FTA_GATEWAY_PORT (default 8090), FTA_GATEWAY_HOST (default
0.0.0.0: it serves job containers on other networks),
FTA_MARKET_DATA_UPSTREAM (Binance base URL for proxy mode, default https://api.binance.com),
FTA_MARKET_DATA_WEIGHT_BUDGET (Binance request weight the proxy spends per minute at most),
FTA_GATEWAY_TENANT_RATE (requests per second a tenant's network may send, sustained, default
100), FTA_GATEWAY_TENANT_BURST (requests at once beyond that rate, default 200),
FTA_GATEWAY_TENANT_CONCURRENCY (requests a tenant's network may have in flight, default 24),
FTA_TENANT_SUBNET_PREFIX (the prefix of a tenant's subnet, which keys those limits, default 27).
Its metrics (fta.gateway.metrics) are served at /metrics, except to FTA_TENANT_SUBNET_POOL.

The relay to bots' APIs (fta.gateway.relay) listens beside it when FTA_BOT_RELAY_KEY is set:
on FTA_BOT_RELAY_HOST (default 0.0.0.0) and FTA_BOT_RELAY_PORT (default 8091), for the tenant
pool FTA_TENANT_SUBNET_POOL (default 10.210.0.0/16). Outside development (FTA_MODE) a
placeholder or short key is refused.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

import uvicorn
from starlette.types import ASGIApp

from fta.gateway.app import DEFAULT_TENANT_POOL, RefusalsUnlogged, build_app
from fta.gateway.limits import DEFAULT_WEIGHT_BUDGET
from fta.gateway.relay import DEFAULT_PORT as RELAY_PORT
from fta.gateway.relay import BotRelay, create_relay_app
from fta.gateway.tenant_limits import (
    DEFAULT_BURST,
    DEFAULT_CONCURRENCY,
    DEFAULT_IPV4_PREFIX,
    DEFAULT_RATE,
    TenantLimits,
)
from fta.logs import configure_logging
from fta.settings import check_relay_key


def main() -> None:
    mode = os.environ.get("FTA_MARKET_DATA_MODE", "replay")
    upstream = os.environ.get("FTA_MARKET_DATA_UPSTREAM", "https://api.binance.com")
    port = int(os.environ.get("FTA_GATEWAY_PORT", "8090"))
    host = os.environ.get("FTA_GATEWAY_HOST", "0.0.0.0")  # noqa: S104 - containerised service
    budget = int(os.environ.get("FTA_MARKET_DATA_WEIGHT_BUDGET", str(DEFAULT_WEIGHT_BUDGET)))
    tenant_limits = TenantLimits(
        rate=float(os.environ.get("FTA_GATEWAY_TENANT_RATE", str(DEFAULT_RATE))),
        burst=int(os.environ.get("FTA_GATEWAY_TENANT_BURST", str(DEFAULT_BURST))),
        concurrency=int(os.environ.get("FTA_GATEWAY_TENANT_CONCURRENCY", str(DEFAULT_CONCURRENCY))),
        ipv4_prefix=int(os.environ.get("FTA_TENANT_SUBNET_PREFIX", str(DEFAULT_IPV4_PREFIX))),
        clock=time.monotonic,
    )
    upstreams = {"binance": upstream} if mode == "proxy" else None
    store_root = os.environ.get("FTA_MARKET_DATA_STORE", "/var/lib/fta/market-data")
    app = build_app(
        mode,
        upstreams,
        weight_budget=budget,
        tenant_limits=tenant_limits,
        tenant_pool=os.environ.get("FTA_TENANT_SUBNET_POOL", DEFAULT_TENANT_POOL),
        store_root=store_root,
    )
    logging.getLogger("uvicorn.access").addFilter(RefusalsUnlogged())
    servers = [_server(app, host, port)]
    relay = relay_app()
    if relay is not None:
        relay_host = os.environ.get("FTA_BOT_RELAY_HOST", "0.0.0.0")  # noqa: S104
        servers.append(
            _server(relay, relay_host, int(os.environ.get("FTA_BOT_RELAY_PORT", RELAY_PORT)))
        )
    asyncio.run(_serve(servers))


def relay_app() -> ASGIApp | None:
    """The bot relay's application, or None when no relay key is set."""
    key = os.environ.get("FTA_BOT_RELAY_KEY", "")
    if not key:
        return None
    if os.environ.get("FTA_MODE", "development") != "development":
        check_relay_key(key)
    relay = BotRelay(
        key.encode(),
        pool=os.environ.get("FTA_TENANT_SUBNET_POOL", "10.210.0.0/16"),
        prefix=int(os.environ.get("FTA_TENANT_SUBNET_PREFIX", str(DEFAULT_IPV4_PREFIX))),
    )
    return create_relay_app(relay)


def _server(app: ASGIApp, host: str, port: int) -> uvicorn.Server:
    # log_config=None: uvicorn's records reach the root handler, which redacts secrets.
    config = uvicorn.Config(
        app, host=host, port=port, server_header=False, proxy_headers=False, log_config=None
    )
    return uvicorn.Server(config)


async def _serve(servers: list[uvicorn.Server]) -> None:
    """Both listeners in one loop; a signal stops each (uvicorn passes it on)."""
    await asyncio.gather(*(server.serve() for server in servers))


if __name__ == "__main__":
    configure_logging()
    main()
