"""ASGI layers around the whole portal: the request body cap and the security headers.

nginx caps bodies and sets headers too; these keep the portal safe when reached directly.
"""

from __future__ import annotations

import re

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fta.web import problems

_DIGITS = re.compile(r"[0-9]{1,19}")

# JSON, text and downloads: nothing to run, embed or frame.
API_CSP = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; sandbox"
# Pages: the same default as nginx's, so that reaching the portal directly changes nothing.
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
ALWAYS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-resource-policy": "same-origin",
}


class BodyTooLarge(HTTPException):
    """Raised from `receive`: FastAPI lets an HTTPException through its body parsing, so the
    portal's handler answers with a problem document."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(
            413, f"request too large: bodies are limited to {max_bytes} bytes, send less data"
        )


class BodySizeLimit:
    """Refuses bodies over `max_bytes`: a declared Content-Length at once, a chunked body
    (which declares none) as soon as what arrived passes the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            if not _DIGITS.fullmatch(declared):
                detail = "the Content-Length header is not a number of bytes"
                await problems.problem(400, "Bad request", detail)(scope, receive, send)
                return
            if int(declared) > self.max_bytes:
                refusal = BodyTooLarge(self.max_bytes)
                answer = problems.problem(413, "Request too large", refusal.detail)
                await answer(scope, receive, send)
                return
        received = 0
        started = False

        async def capped_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, capped_receive, tracked_send)
        except BodyTooLarge as refusal:
            if started:
                raise
            answer = problems.problem(413, "Request too large", refusal.detail)
            await answer(scope, receive, send)


class SecurityHeaders:
    """Headers every answer carries; a route may choose its own CSP and Cache-Control."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in ALWAYS.items():
                    headers[name] = value
                page = headers.get("content-type", "").startswith("text/html")
                headers.setdefault("content-security-policy", PAGE_CSP if page else API_CSP)
                # Answers are per client and often secret: no browser or proxy keeps a copy.
                headers.setdefault("cache-control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)
