"""The proxy's HTTP side: reads each request whole with h11 (bounded in size and time), has it
judged, and sends the engine a request of its own making over the Unix socket; the engine's
answer streams back as it comes (follows and waits last as long as the container runs)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import h11

from fta.socketproxy.canonical import MAX_BODY_BYTES
from fta.socketproxy.config import ProxyConfig
from fta.socketproxy.errors import Refused
from fta.socketproxy.routes import Forward, judge
from fta.socketproxy.scope import scoped

log = logging.getLogger("fta.socketproxy")

MAX_CONNECTIONS = 256
REQUEST_SECONDS = 10.0
IDLE_SECONDS = 60.0
# An engine call answers within this, but for follows, waits and streams.
ENGINE_SECONDS = 60.0
LONG_LIVED_SECONDS = 3600.0
READ_BYTES = 65536
_HOP_BY_HOP = {b"connection", b"keep-alive", b"proxy-connection", b"upgrade"}


class ClientGone(Exception):
    pass


class SocketProxy:
    def __init__(self, config: ProxyConfig) -> None:
        self.config = config
        self._slots = asyncio.Semaphore(MAX_CONNECTIONS)

    async def serve(self, host: str = "0.0.0.0") -> None:  # noqa: S104 - its own network only
        server = await asyncio.start_server(self._connection, host, self.config.listen_port)
        log.info(
            "socket proxy for installation %s on :%d", self.config.instance, self.config.listen_port
        )
        async with server:
            await server.serve_forever()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with self._slots:
            client = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
            try:
                idle = IDLE_SECONDS
                while True:
                    request = await _read_request(client, reader, first_timeout=idle)
                    if request is None:
                        break
                    await self._answer(client, reader, writer, *request)
                    if client.our_state is not h11.DONE or client.their_state is not h11.DONE:
                        break
                    client.start_next_cycle()
            except (ConnectionError, TimeoutError, h11.ProtocolError, ClientGone):
                pass
            finally:
                writer.close()
                with contextlib.suppress(ConnectionError, OSError):
                    await writer.wait_closed()

    async def _answer(
        self,
        client: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        request: h11.Request,
        body: bytes,
    ) -> None:
        method = request.method.decode("ascii", "replace")
        target = request.target.decode("ascii", "replace")
        try:
            if not request.target.isascii():
                raise Refused(400, "the request target is not ASCII")
            if len(body) > MAX_BODY_BYTES:
                raise Refused(413, f"body over {MAX_BODY_BYTES} bytes")
            forward = judge(method, target, body, self.config)
            forward = await scoped(forward, self.config, self._inspect)
        except Refused as refused:
            log.info(
                "%s %s -> %d %s", method, target.split("?", 1)[0], refused.status, refused.reason
            )
            await _send_refusal(client, writer, refused)
            return
        log.info("%s %s", method, forward.path)
        await self._forward(client, reader, writer, forward)

    async def _inspect(self, path: str) -> tuple[int, Any]:
        reader, writer = await asyncio.open_unix_connection(self.config.docker_socket)
        try:
            engine = h11.Connection(h11.CLIENT)
            _send_engine_request(engine, writer, "GET", path, None)
            await writer.drain()
            response = await _next_response(engine, reader, ENGINE_SECONDS)
            chunks = []
            while True:
                event = await _next_event(engine, reader, ENGINE_SECONDS)
                if isinstance(event, h11.Data):
                    chunks.append(bytes(event.data))
                    if sum(map(len, chunks)) > 16 * 1024 * 1024:
                        raise Refused(502, "the engine's inspect is too large")
                elif isinstance(event, h11.EndOfMessage):
                    break
                else:
                    raise Refused(502, "the engine closed the connection")
            try:
                return response.status_code, json.loads(b"".join(chunks) or b"null")
            except ValueError:
                return response.status_code, None
        finally:
            writer.close()

    async def _forward(
        self,
        client: h11.Connection,
        client_reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        forward: Forward,
    ) -> None:
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(self.config.docker_socket)
        except OSError as error:
            await _send_refusal(client, writer, Refused(502, f"engine unreachable: {error}"))
            return
        timeout = LONG_LIVED_SECONDS if forward.long_lived else ENGINE_SECONDS
        try:
            engine = h11.Connection(h11.CLIENT)
            _send_engine_request(engine, up_writer, forward.method, forward.target, forward.body)
            await up_writer.drain()
            response = await _next_response(engine, up_reader, timeout)
            headers = [(k, v) for k, v in response.headers if k.lower() not in _HOP_BY_HOP]
            writer.write(
                client.send(
                    h11.Response(
                        status_code=response.status_code, headers=headers, reason=response.reason
                    )
                )
                or b""
            )
            await writer.drain()
            while True:
                event = await _with_client_watch(
                    _next_event(engine, up_reader, timeout), client, client_reader
                )
                if isinstance(event, h11.Data):
                    writer.write(client.send(h11.Data(data=event.data)) or b"")
                    await writer.drain()
                elif isinstance(event, h11.EndOfMessage):
                    writer.write(client.send(h11.EndOfMessage()) or b"")
                    await writer.drain()
                    return
                else:
                    raise ClientGone("the engine closed mid-answer")
        except Refused as refused:
            if client.our_state is h11.SEND_RESPONSE:
                await _send_refusal(client, writer, refused)
            else:
                raise ClientGone(refused.reason) from None
        finally:
            up_writer.close()


async def _read_request(
    client: h11.Connection, reader: asyncio.StreamReader, *, first_timeout: float
) -> tuple[h11.Request, bytes] | None:
    request: h11.Request | None = None
    body = bytearray()
    timeout = first_timeout
    while True:
        event = client.next_event()
        if event is h11.NEED_DATA:
            data = await asyncio.wait_for(reader.read(READ_BYTES), timeout)
            client.receive_data(data)
            timeout = REQUEST_SECONDS
            continue
        if isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data) and request is not None:
            body += event.data
            if len(body) > MAX_BODY_BYTES:
                return request, bytes(body)  # refused as too large, unread rest and all
        elif isinstance(event, h11.EndOfMessage) and request is not None:
            return request, bytes(body)
        else:  # ConnectionClosed, or PAUSED after a request we never finished
            return None


def _send_engine_request(
    engine: h11.Connection,
    writer: asyncio.StreamWriter,
    method: str,
    target: str,
    body: bytes | None,
) -> None:
    headers = [("Host", "docker"), ("Connection", "close")]
    if body is not None:
        headers += [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    writer.write(engine.send(h11.Request(method=method, target=target, headers=headers)) or b"")
    if body:
        writer.write(engine.send(h11.Data(data=body)) or b"")
    writer.write(engine.send(h11.EndOfMessage()) or b"")


async def _next_event(engine: h11.Connection, reader: asyncio.StreamReader, timeout: float) -> Any:
    while True:
        event = engine.next_event()
        if event is not h11.NEED_DATA:
            return event
        try:
            data = await asyncio.wait_for(reader.read(READ_BYTES), timeout)
        except TimeoutError as error:
            raise Refused(504, "the engine did not answer in time") from error
        engine.receive_data(data)


async def _next_response(
    engine: h11.Connection, reader: asyncio.StreamReader, timeout: float
) -> h11.Response:
    while True:
        event = await _next_event(engine, reader, timeout)
        if isinstance(event, h11.Response):
            return event
        if not isinstance(event, h11.InformationalResponse):
            raise Refused(502, "the engine closed the connection")


async def _with_client_watch(
    step: Any, client: h11.Connection, client_reader: asyncio.StreamReader
) -> Any:
    """Awaits `step`, but gives up as soon as the client hangs up: a follow the worker has
    closed must not hold the engine's stream open until the container ends."""
    step_task = asyncio.ensure_future(step)
    watch = asyncio.ensure_future(client_reader.read(READ_BYTES))
    try:
        done, _ = await asyncio.wait({step_task, watch}, return_when=asyncio.FIRST_COMPLETED)
        if watch in done:
            data = watch.result()
            if not data:
                raise ClientGone("the client hung up")
            client.receive_data(data)  # the next request, kept for after this answer
        return await step_task
    finally:
        for task in (step_task, watch):
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task


async def _send_refusal(
    client: h11.Connection, writer: asyncio.StreamWriter, refused: Refused
) -> None:
    body = json.dumps({"message": f"socket proxy: {refused.reason}"}).encode()
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        ("Connection", "close"),
    ]
    writer.write(client.send(h11.Response(status_code=refused.status, headers=headers)) or b"")
    writer.write(client.send(h11.Data(data=body)) or b"")
    writer.write(client.send(h11.EndOfMessage()) or b"")
    await writer.drain()
