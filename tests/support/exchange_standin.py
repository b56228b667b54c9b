"""A stand-in for Binance's public REST API on loopback.

`ExchangeStandin` serves the paths the gateway forwards (`/api/v3/...`) with the gateway's own
synthetic data, validated as the gateway validates, counts every request it gets (path,
parameters, headers, time), reports the minute's request weight in ``X-MBX-USED-WEIGHT-1M`` and
answers 429 past Binance's limit; `refuse()` makes it answer 429 or 418 with Retry-After on
demand. Its exchangeInfo lists `LISTED_MARKETS` spot markets: the fixture's, which it serves
candles of, and `EXTRA_MARKETS`, listed only (one of them halted).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from fta.gateway.endpoints import ENDPOINT_PARAMS, BinanceError, parse_request
from fta.gateway.limits import MINUTE_MS, request_weight
from fta.gateway.replay import ReplayBackend
from fta.markets import INTERVAL_MS, exchange_info, interval_open

BINANCE_WEIGHT_LIMIT = 6000
# (base, quote, status) of the markets listed beyond the fixture's.
EXTRA_MARKETS: tuple[tuple[str, str, str], ...] = (
    ("PEPE", "USDT", "TRADING"),
    ("LINK", "USDT", "TRADING"),
    ("AVAX", "USDT", "TRADING"),
    ("DOT", "USDT", "TRADING"),
    ("LTC", "USDT", "TRADING"),
    ("TRX", "USDT", "TRADING"),
    ("ATOM", "USDT", "TRADING"),
    ("NEAR", "USDT", "TRADING"),
    ("UNI", "USDT", "TRADING"),
    ("SHIB", "USDT", "TRADING"),
    ("LINK", "BTC", "TRADING"),
    ("LUNA", "USDT", "BREAK"),
)
LISTED_MARKETS = len(exchange_info("binance")["symbols"]) + len(EXTRA_MARKETS)


def _extra_symbols() -> list[dict[str, Any]]:
    """Entries shaped like the fixture's first market, under other names and statuses."""
    template = exchange_info("binance")["symbols"][0]
    return [
        {
            **template,
            "symbol": f"{base}{quote}",
            "baseAsset": base,
            "quoteAsset": quote,
            "status": status,
        }
        for base, quote, status in EXTRA_MARKETS
    ]


@dataclass(frozen=True)
class Seen:
    """One request the stand-in received."""

    at_ms: int
    path: str
    params: tuple[tuple[str, str], ...]
    headers: dict[str, str]
    status: int


class ExchangeStandin:
    """Binance's public market-data REST paths on 127.0.0.1, in a background thread."""

    def __init__(self, *, latency_seconds: float = 0.05) -> None:
        self.latency_seconds = latency_seconds
        self._backend = ReplayBackend("binance", lambda: time.time_ns() // 1_000_000)
        self._lock = threading.Lock()
        self._seen: list[Seen] = []
        self._refusals: list[tuple[int, int]] = []  # (status, retry_after), next first
        self._minute = -1
        self._weight = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> ExchangeStandin:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def refuse(self, status: int, retry_after: int, times: int = 1) -> None:
        """Answer the next `times` requests with `status` (429 or 418) and Retry-After."""
        with self._lock:
            self._refusals.extend([(status, retry_after)] * times)

    def seen(self, path: str | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self._seen if path is None or s.path == path]

    def count(self, path: str, **params: str) -> int:
        """Requests of `path` whose parameters include `params`."""
        wanted = set(params.items())
        return sum(1 for s in self.seen(path) if wanted <= set(s.params))

    def _answer(self, raw_path: str, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        parts = urlsplit(raw_path)
        params = tuple(parse_qsl(parts.query, keep_blank_values=True))
        now = time.time_ns() // 1_000_000
        status, body, extra = 200, b"", {}
        endpoint = parts.path.removeprefix("/api/v3/")
        with self._lock:
            if now // MINUTE_MS != self._minute:
                self._minute, self._weight = now // MINUTE_MS, 0
            refusal = self._refusals.pop(0) if self._refusals else None
        if refusal is not None:
            status = refusal[0]
            extra["Retry-After"] = str(refusal[1])
            body = b'{"code":-1003,"msg":"Too much request weight used."}'
        elif endpoint not in ENDPOINT_PARAMS or not parts.path.startswith("/api/v3/"):
            status, body = 404, b'{"code":-404,"msg":"Not found."}'
        else:
            status, body, extra = self._serve(endpoint, params)
        with self._lock:
            self._seen.append(Seen(now, parts.path, params, headers, status))
            extra["X-MBX-USED-WEIGHT-1M"] = str(self._weight)
        return status, body, extra

    def _serve(
        self, endpoint: str, params: tuple[tuple[str, str], ...]
    ) -> tuple[int, bytes, dict[str, str]]:
        backend = self._backend
        try:
            request = parse_request(
                endpoint, list(params), backend.known_symbol, backend.known_interval
            )
        except BinanceError as error:
            return error.status, json.dumps(error.body()).encode(), {}
        with self._lock:
            self._weight += request_weight(request)
            if self._weight > BINANCE_WEIGHT_LIMIT:
                left = 60 - (time.time_ns() // 1_000_000 % MINUTE_MS) // 1000
                body = b'{"code":-1003,"msg":"Too much request weight used."}'
                return 429, body, {"Retry-After": str(left)}
        answer = asyncio.run(backend.answer(request))
        if endpoint == "exchangeInfo" and not params and answer.status == 200:
            info = json.loads(answer.body)
            info["symbols"].extend(_extra_symbols())
            return 200, json.dumps(info, separators=(",", ":")).encode(), {}
        return answer.status, answer.body, {}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if standin.latency_seconds:
                    time.sleep(standin.latency_seconds)
                headers = {name.lower(): value for name, value in self.headers.items()}
                status, body, extra = standin._answer(self.path, headers)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler


@dataclass
class Bot:
    """A client polling klines the way a freqtrade dry-run bot does."""

    pairs: tuple[str, ...]
    interval: str
    # Open time of the newest closed candle held per pair.
    newest_closed: dict[str, int]
    errors: int = 0
    requests: int = 0


async def poll_like_freqtrade(
    client: httpx.AsyncClient,
    bot: Bot,
    *,
    until_ms: int,
    loop_seconds: float,
    first_delay: float = 0.0,
) -> None:
    """Each loop, fetch the latest candles of every pair whose just-closed candle is missing.

    Like freqtrade: ask for the newest candles (no start time), drop the one still forming,
    and ask again on the next loop while the exchange has not published the closed one.
    """
    length = INTERVAL_MS[bot.interval]
    await asyncio.sleep(first_delay)
    while (now := time.time_ns() // 1_000_000) < until_ms:
        just_closed = interval_open(bot.interval, now) - length
        for pair in bot.pairs:
            if bot.newest_closed.get(pair, -1) >= just_closed:
                continue
            bot.requests += 1
            response = await client.get(
                "/binance/api/v3/klines",
                params={"symbol": pair, "interval": bot.interval, "limit": "1000"},
            )
            if response.status_code != 200:
                bot.errors += 1
                continue
            rows = response.json()
            closed = [row[0] for row in rows if row[6] < time.time_ns() // 1_000_000]
            if closed:
                bot.newest_closed[pair] = closed[-1]
        await asyncio.sleep(loop_seconds)
