"""The gateway's ASGI application: whitelisted routes in front of a replay or proxy backend,
behind per-tenant (source network) limits."""

from __future__ import annotations

import ipaddress
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Protocol

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from fta.freqtrade.bot_api import in_pool
from fta.gateway.endpoints import ENDPOINT_PARAMS, Answer, BinanceError, Request, parse_request
from fta.gateway.limits import DEFAULT_WEIGHT_BUDGET
from fta.gateway.metrics import METRICS_PATH, GatewayMetrics
from fta.gateway.proxy import UPSTREAM_HEADERS, ProxyBackend
from fta.gateway.recorded import RecordedBackend
from fta.gateway.replay import ReplayBackend
from fta.gateway.tenant_limits import MAX_TRACKED_NETWORKS, TenantLimits
from fta.markets import SUPPORTED_EXCHANGES
from fta.prometheus import CONTENT_TYPE, render

MODES = ("replay", "recorded", "proxy")
UPSTREAM_TIMEOUT_SECONDS = 10.0
HEALTH_PATH = "/healthz"
# FTA_TENANT_SUBNET_POOL's default: the tenants' networks, refused the metrics.
DEFAULT_TENANT_POOL = "10.210.0.0/16"
# A network over its limits is logged once per this many seconds, not once per refusal.
REFUSAL_LOG_SECONDS = 60.0

log = logging.getLogger(__name__)


class Backend(Protocol):
    def known_symbol(self, symbol: str) -> bool: ...

    def known_interval(self, interval: str) -> bool: ...

    async def answer(self, request: Request) -> Answer: ...


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def _endpoint_handler(
    backend: Backend, endpoint: str
) -> Callable[[HttpRequest], Awaitable[Response]]:
    async def handle(request: HttpRequest) -> Response:
        try:
            parsed = parse_request(
                endpoint,
                request.query_params.multi_items(),
                backend.known_symbol,
                backend.known_interval,
            )
        except BinanceError as error:
            return JSONResponse(error.body(), status_code=error.status)
        answer = await backend.answer(parsed)
        headers = {} if answer.retry_after is None else {"Retry-After": str(answer.retry_after)}
        return Response(
            answer.body, status_code=answer.status, media_type="application/json", headers=headers
        )

    return handle


class RefusalsUnlogged(logging.Filter):
    """Keeps the server's access log free of 429 lines: a flood would otherwise cost a log
    line per refusal (the middleware logs each refused network once a minute instead)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        return not (isinstance(args, tuple) and len(args) == 5 and args[4] == 429)


class TenantLimitMiddleware:
    """Answers 429 to a source network over its rate or its requests in flight, before any
    routing or parsing; /healthz is exempt (the container's own health check)."""

    def __init__(self, app: ASGIApp, limits: TenantLimits, metrics: GatewayMetrics) -> None:
        self._app = app
        self._limits = limits
        self._metrics = metrics
        self._logged_at: dict[str, float] = {}
        self._body = json.dumps(
            {
                "code": -1003,
                "msg": (
                    f"Too many requests from this network; at most {limits.rate:g} per second "
                    f"and {limits.concurrency} at once. Retry after the Retry-After seconds."
                ),
            },
            separators=(",", ":"),
        ).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == HEALTH_PATH:
            await self._app(scope, receive, send)
            return
        client = scope.get("client")
        network = self._limits.network_of(client[0] if client else "")
        wait = self._limits.admit(network)
        self._metrics.count(network, "refused" if wait else "admitted")
        if wait:
            self._log_refusal(network)
            await self._refuse(send, wait)
            return
        try:
            await self._app(scope, receive, send)
        finally:
            self._limits.release(network)

    def _log_refusal(self, network: str) -> None:
        now = time.monotonic()
        if now < self._logged_at.get(network, -REFUSAL_LOG_SECONDS) + REFUSAL_LOG_SECONDS:
            return
        if len(self._logged_at) >= MAX_TRACKED_NETWORKS:
            self._logged_at.clear()
        self._logged_at[network] = now
        log.warning(
            "%s is over its limits (%g requests/s, %d in flight): answering 429 "
            "(logged once a minute)",
            network,
            self._limits.rate,
            self._limits.concurrency,
        )

    async def _refuse(self, send: Send, wait: int) -> None:
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(self._body)).encode()),
            (b"retry-after", str(wait).encode()),
        ]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": self._body})


async def _http_error(request: HttpRequest, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    messages = {404: "Not served by the market-data gateway.", 405: "Only GET is served."}
    return JSONResponse(
        {"code": -status, "msg": messages.get(status, "Error.")}, status_code=status
    )


def create_app(
    backends: Mapping[str, Backend],
    *,
    mode: str,
    tenant_limits: TenantLimits | None = None,
    tenant_pool: str = DEFAULT_TENANT_POOL,
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
) -> Starlette:
    """The routes of `backends`; `tenant_limits` defaults to the default per-network limits.
    The metrics are refused to `tenant_pool`, the tenants' networks."""
    limits = tenant_limits or TenantLimits(clock=time.monotonic)
    metrics = GatewayMetrics()
    ipaddress.ip_network(tenant_pool)  # a malformed pool stops the start, not a scrape
    routes = [
        Route(f"/{exchange}/api/v3/{endpoint}", _endpoint_handler(backend, endpoint))
        for exchange, backend in backends.items()
        for endpoint in ENDPOINT_PARAMS
    ]

    async def health(request: HttpRequest) -> Response:
        return JSONResponse({"status": "ok", "mode": mode, "exchanges": sorted(backends)})

    async def served_metrics(request: HttpRequest) -> Response:
        if request.client is None or in_pool(request.client.host, tenant_pool):
            raise HTTPException(404)
        caches = {
            exchange: backend.counts
            for exchange, backend in backends.items()
            if isinstance(backend, ProxyBackend)
        }
        text = render(metrics.families(caches, limits.tracked))
        return Response(text, media_type=CONTENT_TYPE)

    routes.append(Route(HEALTH_PATH, health))
    routes.append(Route(METRICS_PATH, served_metrics))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if on_shutdown is not None:
            await on_shutdown()

    return Starlette(
        routes=routes,
        exception_handlers={404: _http_error, 405: _http_error},
        middleware=[Middleware(TenantLimitMiddleware, limits=limits, metrics=metrics)],
        lifespan=lifespan,
    )


def build_app(
    mode: str,
    upstreams: Mapping[str, str] | None = None,
    *,
    clock: Callable[[], int] = wall_clock_ms,
    weight_budget: int = DEFAULT_WEIGHT_BUDGET,
    tenant_limits: TenantLimits | None = None,
    tenant_pool: str = DEFAULT_TENANT_POOL,
    store_root: str | None = None,
) -> Starlette:
    """The gateway for `mode`; `upstreams` maps exchange -> base URL (proxy mode only),
    `store_root` is the recorded candle store (recorded mode only)."""
    if mode == "replay":
        replay = {exchange: ReplayBackend(exchange, clock) for exchange in SUPPORTED_EXCHANGES}
        return create_app(replay, mode=mode, tenant_limits=tenant_limits, tenant_pool=tenant_pool)
    if mode == "recorded":
        if store_root is None:
            raise ValueError("recorded mode needs the recorded candle store's directory")
        recorded: dict[str, Backend] = {
            exchange: RecordedBackend(exchange, store_root, clock)
            for exchange in SUPPORTED_EXCHANGES
        }
        return create_app(recorded, mode=mode, tenant_limits=tenant_limits, tenant_pool=tenant_pool)
    if mode != "proxy":
        raise ValueError(f"unknown market-data mode {mode!r}; expected one of {MODES}")
    if not upstreams or set(upstreams) - set(SUPPORTED_EXCHANGES):
        raise ValueError(f"proxy mode needs upstream URLs for {SUPPORTED_EXCHANGES}")
    client = httpx.AsyncClient(
        timeout=UPSTREAM_TIMEOUT_SECONDS,
        follow_redirects=False,
        headers=UPSTREAM_HEADERS,
        limits=httpx.Limits(max_connections=32),
    )
    proxies: dict[str, Backend] = {
        exchange: ProxyBackend(url, client, wall_clock_ms=clock, weight_budget=weight_budget)
        for exchange, url in upstreams.items()
    }
    return create_app(
        proxies,
        mode=mode,
        tenant_limits=tenant_limits,
        tenant_pool=tenant_pool,
        on_shutdown=client.aclose,
    )
