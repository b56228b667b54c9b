"""The gateway's ASGI application: whitelisted routes in front of a replay or proxy backend."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Protocol

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fta.gateway.endpoints import ENDPOINT_PARAMS, Answer, BinanceError, Request, parse_request
from fta.gateway.limits import DEFAULT_WEIGHT_BUDGET
from fta.gateway.markets import SUPPORTED_EXCHANGES
from fta.gateway.proxy import UPSTREAM_HEADERS, ProxyBackend
from fta.gateway.replay import ReplayBackend

MODES = ("replay", "proxy")
UPSTREAM_TIMEOUT_SECONDS = 10.0


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
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
) -> Starlette:
    routes = [
        Route(f"/{exchange}/api/v3/{endpoint}", _endpoint_handler(backend, endpoint))
        for exchange, backend in backends.items()
        for endpoint in ENDPOINT_PARAMS
    ]

    async def health(request: HttpRequest) -> Response:
        return JSONResponse({"status": "ok", "mode": mode, "exchanges": sorted(backends)})

    routes.append(Route("/healthz", health))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if on_shutdown is not None:
            await on_shutdown()

    return Starlette(
        routes=routes,
        exception_handlers={404: _http_error, 405: _http_error},
        lifespan=lifespan,
    )


def build_app(
    mode: str,
    upstreams: Mapping[str, str] | None = None,
    *,
    clock: Callable[[], int] = wall_clock_ms,
    weight_budget: int = DEFAULT_WEIGHT_BUDGET,
) -> Starlette:
    """The gateway for `mode`; `upstreams` maps exchange -> base URL (proxy mode only)."""
    if mode == "replay":
        replay = {exchange: ReplayBackend(exchange, clock) for exchange in SUPPORTED_EXCHANGES}
        return create_app(replay, mode=mode)
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
    return create_app(proxies, mode=mode, on_shutdown=client.aclose)
