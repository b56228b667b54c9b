"""Proxy mode: forwards validated whitelisted GETs to the exchange, cached and de-duplicated.

All tenants' bots ask for the same candles and tickers: each distinct request (endpoint plus
validated parameters) reaches the exchange at most once per time-to-live, and concurrent
identical requests share one upstream call (single-flight), so 100 bots polling one pair cost
one upstream request per TTL.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from fta.gateway.endpoints import Request
from fta.gateway.synthetic import INTERVAL_MS

Answer = tuple[int, bytes]
CacheKey = tuple[str, tuple[tuple[str, str], ...]]

# Seconds an answer stays fresh. Short for what moves; markets change rarely.
TTL_SECONDS: dict[str, float] = {
    "time": 1.0,
    "exchangeInfo": 300.0,
    "klines": 2.0,
    "ticker/24hr": 2.0,
    "depth": 1.0,
}
# Candles that closed before the request was made never change.
CLOSED_KLINES_TTL_SECONDS = 3600.0
_LONGEST_INTERVAL_MS = 31 * 24 * 3600 * 1000  # 1M, the only interval of variable length
MAX_BODY_BYTES = 64 * 1024 * 1024


def _error(status: int, code: int, msg: str) -> Answer:
    return status, json.dumps({"code": code, "msg": msg}, separators=(",", ":")).encode()


@dataclass
class _Entry:
    expires: float
    answer: Answer


class ProxyBackend:
    """Forwards to `upstream` (e.g. https://api.binance.com) through `client`."""

    def __init__(
        self,
        upstream: str,
        client: httpx.AsyncClient,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall_clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        max_entries: int = 4096,
    ) -> None:
        self._upstream = upstream.rstrip("/")
        self._client = client
        self._monotonic = monotonic
        self._wall_clock_ms = wall_clock_ms
        self._max_entries = max_entries
        self._cache: OrderedDict[CacheKey, _Entry] = OrderedDict()
        self._inflight: dict[CacheKey, asyncio.Task[Answer]] = {}
        self.upstream_calls = 0

    # The exchange itself judges symbols and intervals; their format was checked already.
    def known_symbol(self, symbol: str) -> bool:
        return True

    def known_interval(self, interval: str) -> bool:
        return True

    async def answer(self, request: Request) -> Answer:
        key: CacheKey = (request.endpoint, tuple(request.upstream_params()))
        entry = self._cache.get(key)
        if entry is not None:
            if entry.expires > self._monotonic():
                self._cache.move_to_end(key)
                return entry.answer
            del self._cache[key]
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(self._fetch(request, key))
            self._inflight[key] = task
            task.add_done_callback(lambda _: self._inflight.pop(key, None))
        # A client that disconnects must not cancel the call the others are waiting on.
        return await asyncio.shield(task)

    def _ttl(self, request: Request) -> float:
        if request.endpoint == "klines" and request.end_time is not None:
            length = INTERVAL_MS.get(request.interval, _LONGEST_INTERVAL_MS)
            if request.end_time + length < self._wall_clock_ms():
                return CLOSED_KLINES_TTL_SECONDS
        return TTL_SECONDS[request.endpoint]

    async def _fetch(self, request: Request, key: CacheKey) -> Answer:
        url = f"{self._upstream}/api/v3/{request.endpoint}"
        self.upstream_calls += 1
        try:
            async with self._client.stream("GET", url, params=list(key[1])) as response:
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_BODY_BYTES:
                        return _error(502, -1001, "Upstream answer too large.")
                status = response.status_code
        except httpx.HTTPError:
            return _error(502, -1001, "Upstream unavailable.")
        if status >= 500:
            return _error(502, -1001, "Upstream error.")
        answer: Answer = (status, bytes(body))
        if status == 200:
            self._store(key, answer, self._ttl(request))
        return answer

    def _store(self, key: CacheKey, answer: Answer, ttl: float) -> None:
        self._cache[key] = _Entry(self._monotonic() + ttl, answer)
        self._cache.move_to_end(key)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)
