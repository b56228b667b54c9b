"""What passes over a bot's freqtrade websocket (`/api/v1/message/ws`) relayed to its owner
(fta.bots.relay_api, fta.gateway.relay): the client's few requests, checked and re-encoded,
and the bot's messages, hostile like everything a tenant runs, as re-encoded JSON text only.

freqtrade's requests are `{"type": "subscribe", "data": [<message types>]}`,
`{"type": "whitelist"}` and `{"type": "analyzed_df", "data": {"limit": n, "pair": p}}`;
nothing else reaches the bot. Its messages come back one by one, each at most
`MAX_BOT_MESSAGE_BYTES` (past it the socket closes with 1009: ask for fewer candles).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

import anyio
from anyio.abc import TaskGroup
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

WS_ENDPOINT = "message/ws"
MAX_CLIENT_MESSAGE_BYTES = 4096
MAX_BOT_MESSAGE_BYTES = 2 * 1024 * 1024
# freqtrade's default, and the most a client may ask for.
MAX_ANALYZED_CANDLES = 1500
# A client's requests: this many at once, then one every REFILL_SECONDS.
CLIENT_BURST = 20
REFILL_SECONDS = 0.5
# Websockets open at once through the relay: per tenant, and in all.
PER_TENANT_SOCKETS = 4
MAX_SOCKETS = 64
# Close codes: the RFC's; a refused request closes with 4000 + the HTTP status it would have
# had (4401, 4403, 4404, 4409, 4429: REFUSED_BASE + status).
NORMAL = 1000
GOING_AWAY = 1001
POLICY_VIOLATION = 1008
TOO_BIG = 1009
UNAVAILABLE = 1013
REFUSED_BASE = 4000

_MESSAGE_TYPE = re.compile(r"[a-z_]{1,32}")
_PAIR = re.compile(r"[A-Z0-9]{1,20}/[A-Z0-9]{1,20}(:[A-Z0-9]{1,20})?")
# <, > and & only ever occur inside JSON strings: escaped, no message reads as markup.
_HTML_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


class Refused(Exception):
    """The message may not pass; `code` is the close code the socket ends with."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _encode(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.translate(_HTML_SAFE)


def client_request(text: str) -> str:
    """The client's request, re-encoded, if it is one freqtrade's clients send."""
    if len(text.encode("utf-8")) > MAX_CLIENT_MESSAGE_BYTES:
        raise Refused(TOO_BIG, f"requests are limited to {MAX_CLIENT_MESSAGE_BYTES} bytes")
    try:
        request = json.loads(text)
    except (ValueError, RecursionError):
        raise Refused(POLICY_VIOLATION, "requests are JSON objects") from None
    if not isinstance(request, dict) or not set(request) <= {"type", "data"}:
        raise Refused(POLICY_VIOLATION, 'a request is {"type": ..., "data": ...}')
    kind, data = request.get("type"), request.get("data")
    if kind == "subscribe" and isinstance(data, list) and len(data) <= 32:
        if all(isinstance(t, str) and _MESSAGE_TYPE.fullmatch(t) for t in data):
            return _encode({"type": kind, "data": data})
    elif kind == "whitelist" and data is None:
        return _encode({"type": kind})
    elif kind == "analyzed_df" and (data is None or isinstance(data, dict)):
        data = data or {}
        limit, pair = data.get("limit", MAX_ANALYZED_CANDLES), data.get("pair")
        if (
            set(data) <= {"limit", "pair"}
            and isinstance(limit, int)
            and not isinstance(limit, bool)
            and 1 <= limit <= MAX_ANALYZED_CANDLES
            and (pair is None or (isinstance(pair, str) and _PAIR.fullmatch(pair)))
        ):
            return _encode({"type": kind, "data": {"limit": limit, "pair": pair}})
    raise Refused(
        POLICY_VIOLATION,
        "only subscribe, whitelist and analyzed_df requests (limit 1 to "
        f"{MAX_ANALYZED_CANDLES}) are relayed",
    )


def bot_message(text: str) -> str:
    """The bot's message as the client gets it: its JSON re-encoded."""
    if len(text.encode("utf-8")) > MAX_BOT_MESSAGE_BYTES:
        raise Refused(TOO_BIG, "the bot's message is too large: ask for fewer candles (limit)")
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        raise Refused(UNAVAILABLE, "the bot sent something else than JSON") from None
    if not isinstance(message, dict):
        raise Refused(UNAVAILABLE, "the bot sent something else than a message")
    try:
        return _encode(message)
    except ValueError:  # NaN or infinity, which JSON has not
        raise Refused(UNAVAILABLE, "the bot sent something else than JSON") from None


class RequestBudget:
    """A client's requests: CLIENT_BURST at once, then one per REFILL_SECONDS."""

    def __init__(self, now: float) -> None:
        self._tokens = float(CLIENT_BURST)
        self._at = now

    def spend(self, now: float) -> None:
        self._tokens = min(CLIENT_BURST, self._tokens + (now - self._at) / REFILL_SECONDS)
        self._at = now
        if self._tokens < 1:
            raise Refused(POLICY_VIOLATION, "too many requests on this websocket")
        self._tokens -= 1


async def relay_websocket(
    client: WebSocket,
    bot: ClientConnection,
    *,
    to_client: Callable[[str], str],
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Passes the client's requests (checked, within its budget) to the bot and the bot's
    messages (through `to_client`) to the client, until either side closes or breaks a rule;
    then closes both, the client with the reason."""
    budget = RequestBudget(clock())

    async def from_client() -> None:
        while True:
            message = await client.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                raise Refused(POLICY_VIOLATION, "requests are JSON text")
            budget.spend(clock())
            await bot.send(client_request(text))

    async def from_bot() -> None:
        async for message in bot:
            if not isinstance(message, str):
                raise Refused(UNAVAILABLE, "the bot sent binary data")
            await client.send_text(to_client(message))
        raise Refused(GOING_AWAY, "the bot's websocket closed")

    endings: list[Refused] = []

    async def run(pump: Callable[[], Awaitable[None]], group: TaskGroup) -> None:
        try:
            await pump()
            endings.append(Refused(NORMAL, ""))
        except Refused as refused:
            endings.append(refused)
        except ConnectionClosed as closed:
            too_big = closed.rcvd is not None and closed.rcvd.code == TOO_BIG
            endings.append(
                Refused(TOO_BIG, "the bot's message is too large: ask for fewer candles (limit)")
                if too_big or (closed.sent is not None and closed.sent.code == TOO_BIG)
                else Refused(GOING_AWAY, "the bot's websocket closed")
            )
        except (OSError, RuntimeError, WebSocketDisconnect):
            endings.append(Refused(GOING_AWAY, "the connection ended"))
        group.cancel_scope.cancel()

    async with anyio.create_task_group() as group:
        group.start_soon(run, from_client, group)
        group.start_soon(run, from_bot, group)
    ending = endings[0] if endings else Refused(NORMAL, "")
    with suppress(Exception):
        await client.close(code=ending.code, reason=ending.reason)
    with suppress(Exception):
        await bot.close()
