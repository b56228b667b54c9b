"""`python -m fta.gateway`: run the market-data gateway with uvicorn.

Environment: FTA_MARKET_DATA_MODE (replay|proxy, default replay), FTA_GATEWAY_PORT (default
8090), FTA_GATEWAY_HOST (default 0.0.0.0: it serves job containers on other networks),
FTA_MARKET_DATA_UPSTREAM (Binance base URL for proxy mode, default https://api.binance.com),
FTA_MARKET_DATA_WEIGHT_BUDGET (Binance request weight the proxy spends per minute at most).
"""

from __future__ import annotations

import os

import uvicorn

from fta.gateway.app import build_app
from fta.gateway.limits import DEFAULT_WEIGHT_BUDGET
from fta.logs import configure_logging


def main() -> None:
    mode = os.environ.get("FTA_MARKET_DATA_MODE", "replay")
    upstream = os.environ.get("FTA_MARKET_DATA_UPSTREAM", "https://api.binance.com")
    port = int(os.environ.get("FTA_GATEWAY_PORT", "8090"))
    host = os.environ.get("FTA_GATEWAY_HOST", "0.0.0.0")  # noqa: S104 - containerised service
    budget = int(os.environ.get("FTA_MARKET_DATA_WEIGHT_BUDGET", str(DEFAULT_WEIGHT_BUDGET)))
    upstreams = {"binance": upstream} if mode == "proxy" else None
    app = build_app(mode, upstreams, weight_budget=budget)
    # log_config=None: uvicorn's records reach the root handler, which redacts secrets.
    uvicorn.run(
        app, host=host, port=port, server_header=False, proxy_headers=False, log_config=None
    )


if __name__ == "__main__":
    configure_logging()
    main()
