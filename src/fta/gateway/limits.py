"""Binance's request-weight limit, as the proxy keeps under it and backs off when told to.

Binance counts a weight per request (documented per endpoint) against the caller's IP, per
calendar minute, and reports the minute's total in ``X-MBX-USED-WEIGHT-1M``. Past the limit it
answers 429, and an IP that keeps going is banned with 418; both carry ``Retry-After``
(seconds). The gateway spends at most a configured budget per minute, counting its own
requests and trusting the header when it says more (another process may share the IP), and
sends nothing at all while told to wait.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from fta.gateway.endpoints import DEPTH_DEFAULT_LIMIT, Request

MINUTE_MS = 60_000
# Binance allows 6000 per minute per IP; leave room for anything else behind the same address.
DEFAULT_WEIGHT_BUDGET = 3000
USED_WEIGHT_HEADER = "x-mbx-used-weight-1m"
# Waits when a 429 or 418 comes without Retry-After: the rest of the minute, two minutes
# (Binance's shortest ban); and the longest wait honoured (its longest ban, three days).
BAN_DEFAULT_SECONDS = 120
MAX_RETRY_AFTER_SECONDS = 3 * 24 * 3600

_FIXED_WEIGHTS = {"time": 1, "exchangeInfo": 20, "klines": 2}


def request_weight(request: Request) -> int:
    """The weight Binance's documentation gives the request."""
    if request.endpoint in _FIXED_WEIGHTS:
        return _FIXED_WEIGHTS[request.endpoint]
    if request.endpoint == "depth":
        limit = request.limit or DEPTH_DEFAULT_LIMIT
        return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250
    # ticker/24hr: one symbol, a list of them, or every symbol.
    count = len(request.symbols)
    if count == 0 or count > 100:
        return 80
    return 2 if count <= 20 else 40


def retry_after_seconds(raw: str | None, status: int, now_ms: int) -> int:
    """How long to wait after a 429/418, from its Retry-After header (seconds)."""
    if raw is not None and raw.strip().isdigit():
        return min(max(int(raw.strip()), 1), MAX_RETRY_AFTER_SECONDS)
    if status == 418:
        return BAN_DEFAULT_SECONDS
    return _seconds_to_next_minute(now_ms)


def _seconds_to_next_minute(now_ms: int) -> int:
    return max(1, math.ceil((MINUTE_MS - now_ms % MINUTE_MS) / 1000))


class WeightBudget:
    """Request weight spent in the current minute, and when the exchange allows the next call."""

    def __init__(self, budget: int, wall_clock_ms: Callable[[], int]) -> None:
        if budget < 1:
            raise ValueError("the weight budget must be at least 1 per minute")
        self._budget = budget
        self._clock = wall_clock_ms
        self._minute = -1
        self._used = 0
        self._blocked_until_ms = 0

    def _roll(self, now_ms: int) -> None:
        minute = now_ms // MINUTE_MS
        if minute != self._minute:
            self._minute, self._used = minute, 0

    @property
    def used(self) -> int:
        self._roll(self._clock())
        return self._used

    def wait_seconds(self, weight: int) -> int:
        """0 when a request of `weight` may go now, else how many seconds until it may."""
        now = self._clock()
        if now < self._blocked_until_ms:
            return max(1, math.ceil((self._blocked_until_ms - now) / 1000))
        self._roll(now)
        if self._used + weight > self._budget:
            return _seconds_to_next_minute(now)
        return 0

    def spend(self, weight: int) -> None:
        self._roll(self._clock())
        self._used += weight

    def observe(self, used_header: str | None) -> None:
        """Take the exchange's own count of this minute's weight into account."""
        if used_header is None or not used_header.strip().isdigit():
            return
        self._roll(self._clock())
        self._used = max(self._used, int(used_header.strip()))

    def block(self, seconds: int) -> None:
        """Send nothing for `seconds` (the exchange answered 429 or 418)."""
        self._blocked_until_ms = max(self._blocked_until_ms, self._clock() + seconds * 1000)
