"""Per-tenant limits of the shared gateway: a request rate and a number of requests in flight.

Every tenant has exactly one subnet (fta.runtime.network), so a request's tenant is its source
address masked to the tenant subnet prefix; any other source (the control network, loopback)
is keyed by its own masked network alike. Each network gets a token bucket (a sustained rate
and a burst) and a cap on its requests in flight. Over either, the gateway answers 429 at once,
before any parsing or backend work, so one tenant's flood costs the others almost nothing.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable
from dataclasses import dataclass

# ccxt paces Binance at 20 requests/s per process; a tenant runs a few jobs and bots at once.
DEFAULT_RATE = 100.0  # requests per second, sustained
DEFAULT_BURST = 200  # requests at once after a quiet spell
DEFAULT_CONCURRENCY = 24  # requests in flight (a proxied request waits for the exchange)
DEFAULT_IPV4_PREFIX = 27  # FTA_TENANT_SUBNET_PREFIX's default
IPV6_PREFIX = 64
# Idle networks (bucket full, nothing in flight) are forgotten past this many: there are
# 2048 tenant subnets in the default pool, and an idle network's state is the initial one.
MAX_TRACKED_NETWORKS = 4096


@dataclass
class _Bucket:
    tokens: float
    updated: float
    in_flight: int = 0


class TenantLimits:
    """Admission of requests per source network; `clock` is monotonic seconds."""

    def __init__(
        self,
        *,
        rate: float = DEFAULT_RATE,
        burst: int = DEFAULT_BURST,
        concurrency: int = DEFAULT_CONCURRENCY,
        ipv4_prefix: int = DEFAULT_IPV4_PREFIX,
        clock: Callable[[], float],
    ) -> None:
        if not rate > 0:
            raise ValueError("the per-tenant request rate must be positive")
        if burst < 1 or concurrency < 1:
            raise ValueError("the per-tenant burst and concurrency must be at least 1")
        if not 8 <= ipv4_prefix <= 32:
            raise ValueError("the tenant subnet prefix must be between 8 and 32")
        self.rate = rate
        self.burst = burst
        self.concurrency = concurrency
        self._ipv4_prefix = ipv4_prefix
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def network_of(self, host: str) -> str:
        """The network a source address is counted against (a non-address keys itself)."""
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return host
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        prefix = self._ipv4_prefix if address.version == 4 else IPV6_PREFIX
        return str(ipaddress.ip_network((address, prefix), strict=False))

    def admit(self, network: str) -> int:
        """0 when a request from `network` may go (release it when done), else the seconds
        to wait before the next one would be admitted."""
        now = self._clock()
        bucket = self._buckets.get(network)
        if bucket is None:
            if len(self._buckets) >= MAX_TRACKED_NETWORKS:
                self._forget_idle(now)
            bucket = self._buckets[network] = _Bucket(float(self.burst), now)
        else:
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate)
            bucket.updated = now
        if bucket.in_flight >= self.concurrency:
            return 1
        if bucket.tokens < 1.0:
            return max(1, math.ceil((1.0 - bucket.tokens) / self.rate))
        bucket.tokens -= 1.0
        bucket.in_flight += 1
        return 0

    def release(self, network: str) -> None:
        """An admitted request from `network` has been answered."""
        bucket = self._buckets.get(network)
        if bucket is not None and bucket.in_flight > 0:
            bucket.in_flight -= 1

    def in_flight(self, network: str) -> int:
        bucket = self._buckets.get(network)
        return 0 if bucket is None else bucket.in_flight

    @property
    def tracked(self) -> int:
        return len(self._buckets)

    def _forget_idle(self, now: float) -> None:
        idle = [
            network
            for network, bucket in self._buckets.items()
            if bucket.in_flight == 0
            and bucket.tokens + (now - bucket.updated) * self.rate >= self.burst
        ]
        for network in idle:
            del self._buckets[network]
