"""The relay to bots' own freqtrade APIs: a listener of its own beside the market data, for
the portal alone (fta.freqtrade.bot_api).

The gateway already sits on every tenant network, so it is the one place that can reach a
bot's API server; the portal never joins a tenant network. Every request must:

- come from outside the tenant pool (a tenant's container asking is refused at once, 403);
- carry the portal's HMAC over its method, target, path, query, body and the Authorization
  it forwards, made within the last `MAX_AGE_SECONDS`, with a nonce not seen before (401);
- name as target an address of a tenant subnet's dynamic range, on the bots' API port, and
  a relayed freqtrade route (403).

It is then forwarded with only its Authorization, Accept and Content-Type headers, within
`TOTAL_SECONDS`, and the bot's answer, hostile like everything a tenant runs, comes back
only as JSON of at most `MAX_ANSWER_BYTES`, uncompressed, without any of the bot's headers:
the relay answers 200 with the bot's status in `X-FTA-Bot-Status`. Its own refusals are JSON
`{"detail": ...}` without that header. A tenant's bots have `PER_TENANT_IN_FLIGHT` requests
in flight at most, all tenants `MAX_IN_FLIGHT` (429 and 503 past them).

A bot's websocket (`message/ws`) is admitted the same way, its upgrade signed, and relayed
message by message (fta.freqtrade.bot_ws); the bot's websocket token comes in the signed
Authorization header and goes to the bot in its query, as freqtrade reads it.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from urllib.parse import quote

import anyio
import httpx
from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from fta.freqtrade import bot_api, bot_ws
from fta.freqtrade.bot_api import (
    API_PREFIX,
    BOT_STATUS_HEADER,
    MAX_AGE_SECONDS,
    MAX_ANSWER_BYTES,
    MAX_REQUEST_BYTES,
    MAX_SKEW_SECONDS,
    NONCE_HEADER,
    NONCE_RE,
    SIGNATURE_HEADER,
    TARGET_HEADER,
    TIME_HEADER,
)
from fta.freqtrade.bot_ws import relay_websocket

log = logging.getLogger(__name__)

DEFAULT_PORT = 8091
METHODS = ["GET", "POST", "PUT", "DELETE"]
CONNECT_SECONDS = 3.0
# The bot's whole answer, however slowly it drips.
TOTAL_SECONDS = 20.0
MAX_IN_FLIGHT = 64
PER_TENANT_IN_FLIGHT = 8
# Nonces are remembered for the age a request may have; past this many at once the relay
# refuses (503) rather than forget one early.
MAX_NONCES = 100_000
_STAMP = re.compile(r"[0-9]{1,12}")
_DIGITS = re.compile(r"[0-9]{1,19}")


class _Refused(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class NonceCache:
    """The nonces of accepted requests, each until its request is too old to be accepted."""

    def __init__(self, clock: Callable[[], float], limit: int = MAX_NONCES) -> None:
        self._clock = clock
        self._limit = limit
        self._seen: OrderedDict[str, float] = OrderedDict()

    def admit(self, nonce: str) -> bool:
        """True the first time `nonce` is seen within its lifetime; False for a replay."""
        now = self._clock()
        while self._seen:
            oldest, until = next(iter(self._seen.items()))
            if until > now:
                break
            del self._seen[oldest]
        if nonce in self._seen:
            return False
        if len(self._seen) >= self._limit:
            raise _Refused(503, "too many relayed requests at once: retry in a minute")
        self._seen[nonce] = now + MAX_AGE_SECONDS + MAX_SKEW_SECONDS
        return True


class BotRelay:
    """The relay's one route; `clock` is wall-clock seconds (the portal's timestamps)."""

    def __init__(
        self,
        key: bytes,
        *,
        pool: str,
        prefix: int,
        clock: Callable[[], float] = time.time,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if not isinstance(ipaddress.ip_network(pool), ipaddress.IPv4Network):
            raise ValueError("the tenant subnet pool must be IPv4")
        self._key = key
        self._pool = pool
        self._prefix = prefix
        self._clock = clock
        self._nonces = NonceCache(clock)
        self._in_flight = 0
        self._per_tenant: dict[str, int] = {}
        self._sockets = 0
        self._tenant_sockets: dict[str, int] = {}
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(TOTAL_SECONDS, connect=CONNECT_SECONDS),
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_connections=MAX_IN_FLIGHT, max_keepalive_connections=0),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def handle(self, request: Request) -> Response:
        try:
            target, body = await self._admit(request)
            tenant = self._tenant_of(target[0])
            self._take(tenant)
            try:
                return await self._forward(request, target, body)
            finally:
                self._give_back(tenant)
        except _Refused as refusal:
            return JSONResponse({"detail": refusal.detail}, status_code=refusal.status)

    async def _admit(
        self, request: HTTPConnection, *, websocket: bool = False
    ) -> tuple[tuple[str, int], bytes]:
        """The request's target and body, once every check passed."""
        peer = request.client.host if request.client else ""
        if bot_api.in_pool(peer, self._pool):
            log.warning("relay request from tenant network address %s refused", peer)
            raise _Refused(403, "the relay does not serve tenant networks")
        headers = request.headers
        target_text = headers.get(TARGET_HEADER, "")
        nonce = headers.get(NONCE_HEADER, "")
        signature = headers.get(SIGNATURE_HEADER, "")
        stamp = headers.get(TIME_HEADER, "")
        if not (
            target_text and signature and _STAMP.fullmatch(stamp) and NONCE_RE.fullmatch(nonce)
        ):
            raise _Refused(401, "unsigned relay request")
        target = bot_api.parse_target(target_text)
        path = request.url.path
        query = request.url.query
        endpoint = path.removeprefix(API_PREFIX)
        method = "GET" if websocket else request.scope["method"]
        if (
            target is None
            or not bot_api.is_bot_api_target(*target, self._pool, self._prefix)
            or not path.startswith(API_PREFIX)
            or not bot_api.valid_query(query)
            or not (
                (websocket and endpoint == bot_ws.WS_ENDPOINT and not query)
                or (not websocket and bot_api.relayable(method, endpoint, query))
            )
        ):
            raise _Refused(403, "not a bot API request the relay forwards")
        body = await _read_capped(request) if isinstance(request, Request) else b""
        expected = bot_api.relay_signature(
            self._key,
            method=method,
            target=target_text,
            path=path,
            query=query,
            timestamp=int(stamp),
            nonce=nonce,
            body=body,
            authorization=headers.get("authorization", ""),
        )
        if not bot_api.signature_matches(expected, signature):
            raise _Refused(401, "bad relay signature")
        age = self._clock() - int(stamp)
        if not -MAX_SKEW_SECONDS <= age <= MAX_AGE_SECONDS:
            raise _Refused(401, "relay request too old or from the future")
        if not self._nonces.admit(nonce):
            raise _Refused(401, "relay request replayed")
        return target, body

    async def handle_ws(self, websocket: WebSocket) -> None:
        """A bot's websocket: the portal's signed upgrade, then the bot's messages one by one
        as JSON text, and the client's requests as freqtrade knows them (fta.freqtrade.bot_ws).
        The bot's token travels in the signed Authorization header, to its query here."""
        try:
            (address, port), _ = await self._admit(websocket, websocket=True)
            tenant = self._tenant_of(address)
            if self._sockets >= bot_ws.MAX_SOCKETS:
                raise _Refused(503, "the relay is busy: retry in a moment")
            if self._tenant_sockets.get(tenant, 0) >= bot_ws.PER_TENANT_SOCKETS:
                raise _Refused(429, "too many websockets to this account's bots at once")
        except _Refused as refusal:
            # Closed before it is accepted: the portal sees the upgrade refused (HTTP 403).
            log.warning("bot websocket refused: %s", refusal.detail)
            await websocket.close()
            return
        token = websocket.headers.get("authorization", "").removeprefix("Bearer ")
        url = f"ws://{address}:{port}{API_PREFIX}{bot_ws.WS_ENDPOINT}?token={quote(token)}"
        self._sockets += 1
        self._tenant_sockets[tenant] = self._tenant_sockets.get(tenant, 0) + 1
        try:
            try:
                bot = await connect(
                    url,
                    open_timeout=CONNECT_SECONDS,
                    max_size=bot_ws.MAX_BOT_MESSAGE_BYTES,
                    compression=None,
                    proxy=None,
                    user_agent_header=None,
                )
            except (OSError, TimeoutError, WebSocketException) as error:
                log.warning("bot websocket at %s:%s not reached: %s", address, port, error)
                await websocket.close()
                return
            await websocket.accept()
            async with bot:
                await relay_websocket(websocket, bot, to_client=lambda text: text)
        finally:
            self._sockets -= 1
            left = self._tenant_sockets[tenant] - 1
            if left:
                self._tenant_sockets[tenant] = left
            else:
                del self._tenant_sockets[tenant]

    def _tenant_of(self, address: str) -> str:
        return str(ipaddress.ip_network((address, self._prefix), strict=False))

    def _take(self, tenant: str) -> None:
        if self._in_flight >= MAX_IN_FLIGHT:
            raise _Refused(503, "the relay is busy: retry in a moment")
        if self._per_tenant.get(tenant, 0) >= PER_TENANT_IN_FLIGHT:
            raise _Refused(429, "too many requests to this account's bots at once")
        self._in_flight += 1
        self._per_tenant[tenant] = self._per_tenant.get(tenant, 0) + 1

    def _give_back(self, tenant: str) -> None:
        self._in_flight -= 1
        left = self._per_tenant[tenant] - 1
        if left:
            self._per_tenant[tenant] = left
        else:
            del self._per_tenant[tenant]

    async def _forward(self, request: Request, target: tuple[str, int], body: bytes) -> Response:
        address, port = target
        headers = {
            "Accept": "application/json",
            "Accept-Encoding": "identity",
            "Authorization": request.headers.get("authorization", ""),
        }
        if body:
            headers["Content-Type"] = "application/json"
        url = f"http://{address}:{port}{request.url.path}"
        if request.url.query:
            url += "?" + request.url.query
        outgoing = self._client.build_request(request.method, url, headers=headers, content=body)
        try:
            with anyio.fail_after(TOTAL_SECONDS):
                answer = await self._client.send(outgoing, stream=True)
                try:
                    status, answer_body = await _bounded_answer(answer)
                finally:
                    await answer.aclose()
        except TimeoutError:
            raise _Refused(504, "the bot's API did not answer in time") from None
        except httpx.TimeoutException:
            raise _Refused(504, "the bot's API did not answer in time") from None
        except httpx.HTTPError:
            raise _Refused(502, "the bot's API did not accept the connection") from None
        return Response(
            answer_body,
            status_code=200,
            media_type="application/json",
            headers={BOT_STATUS_HEADER: str(status)},
        )


async def _read_capped(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (
        not _DIGITS.fullmatch(declared) or int(declared) > MAX_REQUEST_BYTES
    ):
        raise _Refused(413, "relayed request bodies are limited")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_REQUEST_BYTES:
            raise _Refused(413, "relayed request bodies are limited")
    return bytes(body)


async def _bounded_answer(answer: httpx.Response) -> tuple[int, bytes]:
    """The bot's status and JSON body, refused when it is anything else or too large."""
    if not 100 <= answer.status_code <= 599:
        raise _Refused(502, "the bot's API answered nonsense")
    media_type = answer.headers.get("content-type", "").split(";")[0].strip().lower()
    encoding = answer.headers.get("content-encoding", "identity").strip().lower()
    if media_type != "application/json" or encoding not in ("", "identity"):
        raise _Refused(502, "the bot's API answered something else than JSON")
    declared = answer.headers.get("content-length")
    if declared is not None and _DIGITS.fullmatch(declared) and int(declared) > MAX_ANSWER_BYTES:
        raise _Refused(502, "the bot's answer is too large: ask for less (limit)")
    body = bytearray()
    async for chunk in answer.aiter_raw():
        body += chunk
        if len(body) > MAX_ANSWER_BYTES:
            raise _Refused(502, "the bot's answer is too large: ask for less (limit)")
    return answer.status_code, bytes(body)


def create_relay_app(relay: BotRelay) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await relay.aclose()

    async def not_served(request: Request, exc: Exception) -> Response:
        return JSONResponse({"detail": "not a bot API request the relay forwards"}, 403)

    return Starlette(
        routes=[
            WebSocketRoute(f"{API_PREFIX}{bot_ws.WS_ENDPOINT}", relay.handle_ws),
            Route("/{path:path}", relay.handle, methods=METHODS),
        ],
        exception_handlers={404: not_served, 405: not_served},
        lifespan=lifespan,
    )
