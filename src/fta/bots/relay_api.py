"""/bots/{bot_id}/api/v1/...: each running bot's own freqtrade REST API, for its owner.

Made for freqtrade's own clients, unchanged: `FtRestClient("https://<portal>/bots/<id>",
"<any name>", "<credential>")` and FreqUI. The caller authenticates with HTTP Basic (any
user name; the password is a personal API token or an access token of POST
/api/v1/auth/token) or `Authorization: Bearer` with the same, or with a token of this bot's
`token/login`; a page of the portal may read (GET) with its log-in cookie. Another tenant's
bot answers 404, a route outside the allow-list (fta.freqtrade.bot_api) 403, a bot that does
not run 409. The request goes to the bot through the relay in the market-data gateway, signed
with the relay key, with the bot's own credentials added (the caller never sees them); the
bot's answer comes back as JSON only, re-encoded, capped, without its headers.

`token/login` and `token/refresh` are answered here, not by the bot: short-lived tokens signed
by the portal, valid for this bot alone, and only while the credential they were made from
is (fta.bots.relay).

The websocket `message/ws` (FreqUI's live messages) is relayed too: the caller's credential
in its `token` query (as FreqUI sends it) or its Authorization header, the same checks, then
the client's subscribe, whitelist and analyzed_df requests go to the bot and the bot's
messages come back as re-encoded JSON text (fta.freqtrade.bot_ws). Refusals close the socket
with 4401, 4403, 4404, 4409 (the HTTP status a request would have had) or 1013 (retry later).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import secrets
import time
import uuid
import weakref
from typing import Annotated

import anyio
import httpx
from fastapi import APIRouter, Path, Request, WebSocket
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from fta.accounts.models import TokenScope
from fta.accounts.service import Principal, authenticate
from fta.bots import relay
from fta.bots.service import get_bot
from fta.db import session_scope
from fta.errors import DomainError, Forbidden, Invalid, RetryLater, Unauthorized, Unavailable
from fta.freqtrade import bot_ws
from fta.freqtrade.bot_api import (
    API_PREFIX,
    BOT_STATUS_HEADER,
    MAX_ANSWER_BYTES,
    MAX_REQUEST_BYTES,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TARGET_HEADER,
    TIME_HEADER,
    relay_signature,
    relayable,
    valid_query,
)
from fta.settings import get_settings
from fta.web import session_cookie
from fta.web.problems import SafeJSONResponse

log = logging.getLogger(__name__)

router = APIRouter(prefix="/bots/{bot_id}/api/v1", include_in_schema=False)

METHODS = ["GET", "POST", "PUT", "DELETE"]
# The relay's own bound is 20 s for the bot's answer; this covers the hop to the relay too.
RELAY_SECONDS = 25.0
RELAY_CONNECT_SECONDS = 10.0
# <, > and & only ever occur inside JSON strings: escaped, no answer reads as markup.
_HTML_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})
_NO_CREDENTIAL = (
    "send your API credential: HTTP Basic with any user name and, as the password, a "
    "personal API token or an access token from POST /api/v1/auth/token (or the same as "
    "Authorization: Bearer)"
)

BotId = Annotated[uuid.UUID, Path(description="the bot's id")]


class BadAnswer(DomainError):
    status = 502
    title = "Bad gateway"


class SlowAnswer(DomainError):
    status = 504
    title = "Gateway timeout"


# --- who calls -----------------------------------------------------------------------------


def _credential(request: Request) -> tuple[str | None, bool]:
    """The credential of the request, and whether it came from the log-in cookie (which only
    reads: the pages' CSRF checks do not cover this path)."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("unreadable HTTP Basic credentials") from None
        return decoded.partition(":")[2] or None, False
    if scheme.lower() == "bearer":
        return value or None, False
    if header:
        raise Unauthorized("use HTTP Basic or Bearer authentication")
    if request.method == "GET":
        return session_cookie.token_of(request), True
    return None, False


def _principal(credential: str | None, bot_id: uuid.UUID) -> Principal:
    """The caller, from its credential: a bot token of this bot, or an API credential."""
    if not credential:
        raise Unauthorized(_NO_CREDENTIAL)
    with session_scope() as session:
        principal = relay.bot_token_principal(session, credential, bot_id, "access")
        if principal is None:
            principal = authenticate(session, credential)
    if principal.tenant_id is None:
        raise Forbidden("platform administrators have no bots; use a client account")
    return principal


# --- token/login and token/refresh ---------------------------------------------------------


def _login(credential: str | None, bot_id: uuid.UUID) -> dict[str, str]:
    if not credential:
        raise Unauthorized(_NO_CREDENTIAL)
    with session_scope() as session:
        principal = authenticate(session, credential)
        if principal.tenant_id is None:
            raise Forbidden("platform administrators have no bots; use a client account")
        get_bot(session, principal.tenant_id, bot_id)
    return relay.issue_bot_tokens(principal, bot_id)


@router.post("/token/login")
async def token_login(bot_id: BotId, request: Request) -> Response:
    """freqtrade's log-in: an access token (15 minutes) and a refresh token for this bot."""
    credential, _ = _credential(request)
    tokens = await run_in_threadpool(_login, credential, bot_id)
    return SafeJSONResponse(tokens)


def _refresh(credential: str | None, bot_id: uuid.UUID) -> dict[str, str]:
    if not credential:
        raise Unauthorized("send the refresh token as Authorization: Bearer")
    with session_scope() as session:
        principal = relay.bot_token_principal(session, credential, bot_id, "refresh")
        if principal is None or principal.tenant_id is None:
            raise Unauthorized("invalid or expired refresh token: log in again (token/login)")
        get_bot(session, principal.tenant_id, bot_id)
    return {"access_token": relay.issue_bot_tokens(principal, bot_id)["access_token"]}


@router.post("/token/refresh")
async def token_refresh(bot_id: BotId, request: Request) -> Response:
    credential, _ = _credential(request)
    token = await run_in_threadpool(_refresh, credential, bot_id)
    return SafeJSONResponse(token)


# --- the websocket ---------------------------------------------------------------------------


def _ws_target(credential: str | None, bot_id: uuid.UUID) -> relay.RelayTarget:
    """Authentication (401), the bot's owner (404), a running bot (409)."""
    principal = _principal(credential, bot_id)
    tenant_id = principal.tenant_id
    assert tenant_id is not None  # noqa: S101 - checked by _principal
    with session_scope() as session:
        return relay.relay_target(session, tenant_id, bot_id)


@router.websocket(f"/{bot_ws.WS_ENDPOINT}")
async def relay_websocket_to_bot(
    bot_id: BotId, websocket: WebSocket, token: str | None = None
) -> None:
    """The bot's websocket, through the relay."""
    await websocket.accept()
    key = get_settings().bot_relay_key.get_secret_value()
    try:
        credential = token or _header_credential(websocket.headers.get("authorization", ""))
        target = await run_in_threadpool(_ws_target, credential, bot_id)
        if not key:
            raise Unavailable("this installation relays no bot API", 3600)
    except DomainError as refused:
        code = bot_ws.REFUSED_BASE + refused.status if refused.status < 500 else bot_ws.UNAVAILABLE
        await websocket.close(code=code, reason=str(refused.detail)[:120])
        return
    try:
        bot = await _connect_relay(key.encode(), target)
    except (OSError, TimeoutError, WebSocketException) as error:
        log.error("bot websocket relay unreachable: %s", error)
        await websocket.close(code=bot_ws.UNAVAILABLE, reason="the relay is unavailable")
        return
    async with bot:
        await bot_ws.relay_websocket(websocket, bot, to_client=bot_ws.bot_message)


def _header_credential(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value.strip(), validate=True).decode().partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            return None
    return None


def _signed_headers(
    key: bytes, host: str, method: str, path: str, query: str, body: bytes, authorization: str
) -> dict[str, str]:
    """The relay's headers for one request or websocket upgrade, signed with the relay key
    (fta.freqtrade.bot_api.relay_signature)."""
    timestamp, nonce = int(time.time()), secrets.token_hex(16)
    signature = relay_signature(
        key,
        method=method,
        target=host,
        path=path,
        query=query,
        timestamp=timestamp,
        nonce=nonce,
        body=body,
        authorization=authorization,
    )
    return {
        TARGET_HEADER: host,
        TIME_HEADER: str(timestamp),
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: signature,
        "Authorization": authorization,
    }


async def _connect_relay(key: bytes, target: relay.RelayTarget) -> ClientConnection:
    """The relay's websocket to the bot, the upgrade signed like a relayed request; the bot's
    websocket token goes in its Authorization (the relay puts it in the bot's query)."""
    relay_path = f"{API_PREFIX}{bot_ws.WS_ENDPOINT}"
    authorization = f"Bearer {target.ws_token}"
    base = get_settings().bot_relay_url.rstrip("/")
    url = "ws" + base.removeprefix("http") + relay_path
    return await connect(
        url,
        additional_headers=_signed_headers(
            key, target.host, "GET", relay_path, "", b"", authorization
        ),
        open_timeout=RELAY_CONNECT_SECONDS,
        max_size=bot_ws.MAX_BOT_MESSAGE_BYTES,
        compression=None,
        proxy=None,
        user_agent_header=None,
    )


# --- the relay -----------------------------------------------------------------------------


def _target(
    credential: str | None, from_cookie: bool, bot_id: uuid.UUID, method: str, path: str
) -> relay.RelayTarget:
    """Authentication (401), the bot's owner (404), the allow-list (403), a running bot (409)."""
    if from_cookie and credential:
        with session_scope() as session:
            principal = authenticate(session, credential, personal=False)
        if principal.tenant_id is None:
            raise Forbidden("platform administrators have no bots; use a client account")
    else:
        principal = _principal(credential, bot_id)
    if principal.scope is TokenScope.READ and method != "GET":
        raise Forbidden(
            "this personal token may only read (GET): use a token with the write scope "
            "to control the bot"
        )
    tenant_id = principal.tenant_id
    assert tenant_id is not None  # noqa: S101 - checked above
    with session_scope() as session:
        get_bot(session, tenant_id, bot_id)
        if not relayable(method, path):
            raise Forbidden(
                f"{method} /api/v1/{path} is not available through the portal: the routes "
                "relayed are listed in the API documentation (your bot's freqtrade API)"
            )
        return relay.relay_target(session, tenant_id, bot_id)


@router.api_route("/{path:path}", methods=METHODS)
async def relay_to_bot(bot_id: BotId, path: str, request: Request) -> Response:
    """Relays one call of the freqtrade API to the bot."""
    key = get_settings().bot_relay_key.get_secret_value()
    credential, from_cookie = _credential(request)
    target = await run_in_threadpool(_target, credential, from_cookie, bot_id, request.method, path)
    if not key:
        raise Unavailable("this installation relays no bot API (FTA_BOT_RELAY_KEY is unset)", 3600)
    query = request.url.query
    if not valid_query(query) or not relayable(request.method, path, query):
        raise Invalid("the query string is too long, or holds characters or options not relayed")
    body = await _body(request)
    status, answer = await _send(key.encode(), target, request.method, path, query, body)
    return await run_in_threadpool(_answer, status, answer)


async def _body(request: Request) -> bytes:
    """A JSON body to pass on (nothing for GET: freqtrade's client sends `null` there)."""
    if request.method == "GET":
        return b""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_REQUEST_BYTES:
            raise Invalid(f"relayed request bodies are limited to {MAX_REQUEST_BYTES} bytes")
    if body:
        try:
            json.loads(body)
        except (ValueError, RecursionError):
            raise Invalid("the request body is not valid JSON") from None
    return bytes(body)


_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)


def _client() -> httpx.AsyncClient:
    """One connection pool to the relay per event loop (a client is bound to its loop)."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = httpx.AsyncClient(
            timeout=httpx.Timeout(RELAY_SECONDS, connect=3.0),
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
        )
        _clients[loop] = client
    return client


async def _send(
    key: bytes, target: relay.RelayTarget, method: str, path: str, query: str, body: bytes
) -> tuple[int, bytes]:
    """The bot's status and body through the relay; the relay's refusals as problems."""
    relay_path = f"{API_PREFIX}{path}"
    headers = _signed_headers(
        key, target.host, method, relay_path, query, body, target.authorization
    )
    headers["Accept"] = "application/json"
    if body:
        headers["Content-Type"] = "application/json"
    url = get_settings().bot_relay_url.rstrip("/") + relay_path + (f"?{query}" if query else "")
    client = _client()
    try:
        with anyio.fail_after(RELAY_SECONDS):
            async with client.stream(method, url, headers=headers, content=body) as answer:
                content = bytearray()
                async for chunk in answer.aiter_raw():
                    content += chunk
                    if len(content) > MAX_ANSWER_BYTES:
                        raise BadAnswer("the bot's answer is too large: ask for less (limit)")
                relay_status = answer.status_code
                bot_status = answer.headers.get(BOT_STATUS_HEADER, "")
    except (TimeoutError, httpx.TimeoutException):
        raise SlowAnswer("the bot's API did not answer in time") from None
    except httpx.HTTPError as error:
        log.error("bot API relay unreachable: %s", error)
        raise Unavailable("the bot API relay is unavailable: retry in a minute", 60) from None
    if relay_status == 200 and bot_status.isdigit():
        return int(bot_status), bytes(content)
    raise _relay_refusal(relay_status, bytes(content))


def _relay_refusal(status: int, content: bytes) -> DomainError:
    detail = ""
    try:
        found = json.loads(content)
        if isinstance(found, dict) and isinstance(found.get("detail"), str):
            detail = found["detail"][:200]
    except (ValueError, RecursionError):
        pass
    if status == 429:
        return RetryLater("too many requests to your bots at once: retry in a second", 1)
    if status == 502:
        return Unavailable(
            f"the bot's API does not answer ({detail or 'no answer'}); a bot that is "
            "starting answers once freqtrade runs: retry in a few seconds",
            5,
        )
    if status == 504:
        return SlowAnswer("the bot's API did not answer in time")
    log.error("the bot API relay refused a request (%s): %s", status, detail)
    return Unavailable("the bot API relay refused the request: retry in a minute", 60)


def _answer(status: int, content: bytes) -> Response:
    """The bot's answer as the client gets it: re-encoded JSON (nothing the bot sent reads
    as markup), its status when it is a success or the caller's own error; the bot's
    failures as 502."""
    if status in (401, 403, 407):
        raise BadAnswer(
            "the bot refused the platform's credentials: restart the bot "
            "(POST /api/v1/bots/{id}/restart)"
        )
    if not 200 <= status <= 599 or 300 <= status < 400:
        raise BadAnswer(f"the bot's API answered with status {status}")
    if not content and status == 204:
        return Response(status_code=204)
    try:
        value = json.loads(content)
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (ValueError, RecursionError):
        raise BadAnswer("the bot's API answered something else than JSON") from None
    return Response(
        text.translate(_HTML_SAFE).encode("utf-8"),
        status_code=502 if status >= 500 else status,
        media_type="application/json",
    )
