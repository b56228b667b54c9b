"""Proxy mode: forwards validated whitelisted GETs to the exchange, cached and de-duplicated.

All tenants' bots ask for the same candles and tickers. Each distinct request (endpoint plus
validated, normalised parameters) reaches the exchange at most once while its answer is
fresh, and concurrent identical requests share one upstream call (single-flight). A klines
answer whose newest candle is still forming stays fresh until that candle closes, so any
number of bots polling a pair and timeframe cost one upstream request per candle period;
closed candles never change and stay fresh for an hour.

The exchange's request-weight limit is respected (see `limits`): past the configured budget,
or while the exchange asked to wait (429/418), nothing is sent and the last answer known is
served, however old; with none, a 503 says when to come back. Only the gateway's own headers
go upstream, never a client's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from fta.gateway.endpoints import KLINES_DEFAULT_LIMIT, Answer, Request
from fta.gateway.limits import (
    DEFAULT_WEIGHT_BUDGET,
    USED_WEIGHT_HEADER,
    WeightBudget,
    request_weight,
    retry_after_seconds,
)
from fta.gateway.metrics import CacheCounts
from fta.markets import INTERVAL_MS

log = logging.getLogger(__name__)

CacheKey = tuple[str, tuple[tuple[str, str], ...]]

# Seconds an answer stays fresh. Short for what moves; markets change rarely. Klines answers
# that can be read use their newest candle instead (see `_klines_ttl`).
TTL_SECONDS: dict[str, float] = {
    "time": 1.0,
    "exchangeInfo": 300.0,
    "klines": 2.0,
    "ticker/24hr": 2.0,
    "depth": 1.0,
}
# Candles that closed before the request was made never change.
CLOSED_KLINES_TTL_SECONDS = 3600.0
# The exchange may publish a new candle a moment after the close: ask again this soon.
LATE_CANDLE_RETRY_SECONDS = 1.0
_LONGEST_INTERVAL_MS = 31 * 24 * 3600 * 1000  # 1M, the only interval of variable length
MAX_BODY_BYTES = 64 * 1024 * 1024
# The only headers sent upstream.
UPSTREAM_HEADERS = {"User-Agent": "fta-market-data", "Accept": "application/json"}


def _error(status: int, code: int, msg: str, retry_after: int | None = None) -> Answer:
    body = json.dumps({"code": code, "msg": msg}, separators=(",", ":")).encode()
    return Answer(status, body, retry_after)


@dataclass
class _Entry:
    expires: float  # monotonic seconds
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
        weight_budget: int = DEFAULT_WEIGHT_BUDGET,
    ) -> None:
        self._upstream = upstream.rstrip("/")
        self._client = client
        self._monotonic = monotonic
        self._wall_clock_ms = wall_clock_ms
        self._max_entries = max_entries
        self._budget = WeightBudget(weight_budget, wall_clock_ms)
        # Fresh and stale answers alike: a stale one is served while nothing may be sent.
        self._cache: OrderedDict[CacheKey, _Entry] = OrderedDict()
        self._inflight: dict[CacheKey, asyncio.Task[Answer]] = {}
        self.counts = CacheCounts()

    # The exchange itself judges symbols and intervals; their format was checked already.
    def known_symbol(self, symbol: str) -> bool:
        return True

    def known_interval(self, interval: str) -> bool:
        return True

    async def answer(self, request: Request) -> Answer:
        key: CacheKey = (request.endpoint, tuple(request.upstream_params()))
        entry = self._cache.get(key)
        if entry is not None and entry.expires > self._monotonic():
            self._cache.move_to_end(key)
            self.counts.hits += 1
            return entry.answer
        task = self._inflight.get(key)
        if task is not None:
            self.counts.shared += 1
        else:
            self.counts.misses += 1
            task = asyncio.create_task(self._refresh(request, key))
            self._inflight[key] = task
            task.add_done_callback(lambda _: self._inflight.pop(key, None))
        # A client that disconnects must not cancel the call the others are waiting on.
        return await asyncio.shield(task)

    def _stale_or(self, key: CacheKey, answer: Answer) -> Answer:
        entry = self._cache.get(key)
        return entry.answer if entry is not None else answer

    async def _refresh(self, request: Request, key: CacheKey) -> Answer:
        weight = request_weight(request)
        wait = self._budget.wait_seconds(weight)
        if wait:
            busy = _error(
                503,
                -1003,
                f"Market data is briefly unavailable (exchange rate limit); retry in {wait} s.",
                retry_after=wait,
            )
            return self._stale_or(key, busy)
        self._budget.spend(weight)
        started_ms = self._wall_clock_ms()
        url = f"{self._upstream}/api/v3/{request.endpoint}"
        self.counts.upstream_calls += 1
        try:
            async with self._client.stream(
                "GET", url, params=list(key[1]), headers=UPSTREAM_HEADERS
            ) as response:
                self._budget.observe(response.headers.get(USED_WEIGHT_HEADER))
                status = response.status_code
                if status in (418, 429):
                    return self._told_to_wait(key, status, response.headers.get("retry-after"))
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_BODY_BYTES:
                        return _error(502, -1001, "Upstream answer too large.")
        except httpx.HTTPError:
            return self._stale_or(key, _error(502, -1001, "Upstream unavailable."))
        if status >= 500:
            return self._stale_or(key, _error(502, -1001, "Upstream error."))
        answer = Answer(status, bytes(body))
        if status == 200:
            self._store(key, answer, self._ttl(request, answer.body, started_ms))
        return answer

    def _told_to_wait(self, key: CacheKey, status: int, raw_retry_after: str | None) -> Answer:
        seconds = retry_after_seconds(raw_retry_after, status, self._wall_clock_ms())
        self._budget.block(seconds)
        log.warning("exchange answered %d: no upstream request for %d s", status, seconds)
        busy = _error(
            503,
            -1003,
            f"Market data is briefly unavailable (exchange rate limit); retry in {seconds} s.",
            retry_after=seconds,
        )
        return self._stale_or(key, busy)

    def _ttl(self, request: Request, body: bytes, started_ms: int) -> float:
        if request.endpoint == "klines":
            ttl = self._klines_ttl(request, body, started_ms)
            if ttl is not None:
                return ttl
            length = INTERVAL_MS.get(request.interval, _LONGEST_INTERVAL_MS)
            if request.end_time is not None and request.end_time + length < started_ms:
                return CLOSED_KLINES_TTL_SECONDS
        return TTL_SECONDS[request.endpoint]

    def _klines_ttl(self, request: Request, body: bytes, started_ms: int) -> float | None:
        """Fresh until the newest candle closes; for good once every candle asked for closed."""
        try:
            rows = json.loads(body)
            last_close = int(rows[-1][6])
        except (ValueError, TypeError, IndexError, KeyError):
            return None
        if last_close >= started_ms:  # still forming when asked for
            return max(0.0, (last_close + 1 - self._wall_clock_ms()) / 1000)
        complete = (request.end_time is not None and request.end_time <= last_close) or (
            request.start_time is not None and len(rows) >= (request.limit or KLINES_DEFAULT_LIMIT)
        )
        if complete:
            return CLOSED_KLINES_TTL_SECONDS
        # The candle forming now is not published yet.
        length = INTERVAL_MS.get(request.interval, _LONGEST_INTERVAL_MS)
        return min(LATE_CANDLE_RETRY_SECONDS, length / 4000)

    def _store(self, key: CacheKey, answer: Answer, ttl: float) -> None:
        self._cache[key] = _Entry(self._monotonic() + ttl, answer)
        self._cache.move_to_end(key)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)
