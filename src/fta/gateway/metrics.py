"""The gateway's own metrics: requests per source network (a tenant's subnet), admitted or
refused over its limits, and in proxy mode each exchange's cache hits and misses and calls to
the exchange. Served at /metrics to the control network only: a request from the tenant pool
gets 404, for a tenant must not read the others' traffic."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from fta.prometheus import Family

METRICS_PATH = "/metrics"


@dataclass
class CacheCounts:
    """A proxy backend's answers: from its cache, after a call of its own to the exchange, or
    after waiting on the same call another request made."""

    hits: int = 0
    misses: int = 0
    shared: int = 0
    upstream_calls: int = 0


@dataclass
class GatewayMetrics:
    # (source network, "admitted" or "refused") -> requests.
    requests: Counter[tuple[str, str]] = field(default_factory=Counter)

    def count(self, network: str, outcome: str) -> None:
        self.requests[network, outcome] += 1

    def families(self, caches: Mapping[str, CacheCounts], tracked: int) -> list[Family]:
        requests = Family(
            "fta_gateway_requests_total",
            "counter",
            "Requests per source network (a tenant's subnet): admitted, or refused over the "
            "network's rate or requests in flight.",
        )
        for (network, outcome), count in sorted(self.requests.items()):
            requests.add(count, network=network, outcome=outcome)
        cache = Family(
            "fta_gateway_cache_answers_total",
            "counter",
            "Proxy mode: answers per exchange, from the cache (hit), after the gateway's own "
            "call to the exchange (miss), or after waiting on another request's call (shared).",
        )
        upstream = Family(
            "fta_gateway_upstream_calls_total", "counter", "Proxy mode: calls to each exchange."
        )
        for exchange, counts in sorted(caches.items()):
            answers = (("hit", counts.hits), ("miss", counts.misses), ("shared", counts.shared))
            for result, count in answers:
                cache.add(count, exchange=exchange, result=result)
            upstream.add(counts.upstream_calls, exchange=exchange)
        networks = Family(
            "fta_gateway_tracked_networks", "gauge", "Source networks the limits keep state for."
        )
        networks.add(tracked)
        return [requests, cache, upstream, networks]
