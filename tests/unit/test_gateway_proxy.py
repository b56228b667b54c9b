"""Proxy mode of the market-data gateway, against a small upstream served on loopback."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from fta.gateway.app import create_app
from fta.gateway.proxy import CLOSED_KLINES_TTL_SECONDS, TTL_SECONDS, ProxyBackend

BASE = "/binance/api/v3"
KLINES = {"symbol": "BTCUSDT", "interval": "5m", "limit": "2"}


@dataclass
class Upstream:
    """What the fake exchange saw, and how it answers."""

    url: str
    calls: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)
    delay_seconds: float = 0.0
    status: int = 200
    lock: threading.Lock = field(default_factory=threading.Lock)

    def paths(self) -> list[str]:
        with self.lock:
            return [path for path, _ in self.calls]


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    state = Upstream(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            with state.lock:
                state.calls.append((parts.path, parse_qsl(parts.query)))
            time.sleep(state.delay_seconds)
            if state.status == 200:
                body = json.dumps({"path": parts.path, "n": len(state.calls)}).encode()
            else:
                body = json.dumps({"code": -1121, "msg": "Invalid symbol."}).encode()
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _with_gateway(
    upstream_url: str, clock: Clock, scenario: Any, *, wall_ms: int = 1_709_296_496_789
) -> Any:
    async with httpx.AsyncClient(timeout=5) as upstream_client:
        backend = ProxyBackend(
            upstream_url, upstream_client, monotonic=clock, wall_clock_ms=lambda: wall_ms
        )
        app = create_app({"binance": backend}, mode="proxy")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            return await scenario(client, backend)


def run(upstream_url: str, scenario: Any, clock: Clock | None = None, **kwargs: Any) -> Any:
    return asyncio.run(_with_gateway(upstream_url, clock or Clock(), scenario, **kwargs))


def test_forwards_only_validated_parameters(upstream: Upstream) -> None:
    async def scenario(client: httpx.AsyncClient, backend: ProxyBackend) -> httpx.Response:
        return await client.get(f"{BASE}/klines", params={**KLINES, "startTime": "0017"})

    response = run(upstream.url, scenario)
    assert response.status_code == 200
    assert response.json()["path"] == "/api/v3/klines"
    assert upstream.calls == [
        (
            "/api/v3/klines",
            [("symbol", "BTCUSDT"), ("interval", "5m"), ("startTime", "17"), ("limit", "2")],
        )
    ]


def test_answers_are_cached_for_their_ttl(upstream: Upstream) -> None:
    clock = Clock()

    async def scenario(client: httpx.AsyncClient, backend: ProxyBackend) -> list[int]:
        numbers = []
        for advance in (0.0, TTL_SECONDS["klines"] / 2, TTL_SECONDS["klines"]):
            clock.now += advance
            numbers.append((await client.get(f"{BASE}/klines", params=KLINES)).json()["n"])
        return numbers

    assert run(upstream.url, scenario, clock) == [1, 1, 2]
    assert len(upstream.calls) == 2


def test_closed_candles_are_cached_long(upstream: Upstream) -> None:
    clock = Clock()
    old = {**KLINES, "startTime": "1704067200000", "endTime": "1704070800000"}

    async def scenario(client: httpx.AsyncClient, backend: ProxyBackend) -> None:
        await client.get(f"{BASE}/klines", params=old)
        clock.now += CLOSED_KLINES_TTL_SECONDS - 1
        await client.get(f"{BASE}/klines", params=old)

    run(upstream.url, scenario, clock)
    assert len(upstream.calls) == 1


def test_concurrent_identical_requests_share_one_upstream_call(upstream: Upstream) -> None:
    upstream.delay_seconds = 0.3

    async def scenario(client: httpx.AsyncClient, backend: ProxyBackend) -> list[httpx.Response]:
        same = [client.get(f"{BASE}/depth", params={"symbol": "ETHUSDT"}) for _ in range(20)]
        other = client.get(f"{BASE}/depth", params={"symbol": "BTCUSDT"})
        return list(await asyncio.gather(*same, other))

    responses = run(upstream.url, scenario)
    assert all(response.status_code == 200 for response in responses)
    assert len({response.json()["n"] for response in responses[:20]}) == 1
    assert sorted(upstream.paths()) == ["/api/v3/depth", "/api/v3/depth"]


def test_bad_requests_never_reach_upstream(upstream: Upstream) -> None:
    async def scenario(client: httpx.AsyncClient, backend: ProxyBackend) -> list[int]:
        return [
            (await client.get(f"{BASE}/klines", params={"symbol": "BTCUSDT"})).status_code,
            (await client.get(f"{BASE}/klines", params={**KLINES, "x": "1"})).status_code,
            (await client.get(f"{BASE}/account")).status_code,
            (await client.get("/binance/sapi/v1/capital/config/getall")).status_code,
            (await client.delete(f"{BASE}/klines")).status_code,
        ]

    assert run(upstream.url, scenario) == [400, 400, 404, 404, 405]
    assert upstream.calls == []


def test_upstream_errors_are_forwarded_or_hidden(upstream: Upstream) -> None:
    async def scenario(client: httpx.AsyncClient, backend: ProxyBackend) -> list[httpx.Response]:
        upstream.status = 400
        binance_error = await client.get(f"{BASE}/klines", params=KLINES)
        upstream.status = 503
        server_error = await client.get(f"{BASE}/depth", params={"symbol": "BTCUSDT"})
        upstream.status = 200
        after = await client.get(f"{BASE}/klines", params=KLINES)
        return [binance_error, server_error, after]

    binance_error, server_error, after = run(upstream.url, scenario)
    assert binance_error.status_code == 400 and binance_error.json()["code"] == -1121
    assert server_error.status_code == 502 and server_error.json()["code"] == -1001
    assert after.status_code == 200  # errors are not cached
    assert len(upstream.calls) == 3


def test_unreachable_upstream_answers_502() -> None:
    async def scenario(client: httpx.AsyncClient, backend: ProxyBackend) -> httpx.Response:
        return await client.get(f"{BASE}/time")

    with socket.socket() as probe:  # a loopback port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    response = run(f"http://127.0.0.1:{port}", scenario)
    assert response.status_code == 502
    assert response.json() == {"code": -1001, "msg": "Upstream unavailable."}


def test_the_cache_answers_are_counted_in_the_metrics(upstream: Upstream) -> None:
    clock = Clock()

    async def scenario(client: httpx.AsyncClient, backend: ProxyBackend) -> str:
        for advance in (0.0, TTL_SECONDS["klines"] / 2, TTL_SECONDS["klines"]):
            clock.now += advance
            await client.get(f"{BASE}/klines", params=KLINES)
        return (await client.get("/metrics")).text

    metrics = run(upstream.url, scenario, clock)
    assert 'fta_gateway_cache_answers_total{exchange="binance",result="hit"} 1\n' in metrics
    assert 'fta_gateway_cache_answers_total{exchange="binance",result="miss"} 2\n' in metrics
    assert 'fta_gateway_upstream_calls_total{exchange="binance"} 2\n' in metrics
