"""Per-tenant limits of the gateway: source networks, token buckets, requests in flight, and
the 429 the application answers over them (on a fake clock)."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest

from fta.gateway.app import RefusalsUnlogged, build_app
from fta.gateway.tenant_limits import MAX_TRACKED_NETWORKS, TenantLimits

KLINES = "/binance/api/v3/klines"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limits(clock: FakeClock, **overrides: float) -> TenantLimits:
    settings = {"rate": 10.0, "burst": 5, "concurrency": 3, "ipv4_prefix": 27, **overrides}
    return TenantLimits(
        rate=float(settings["rate"]),
        burst=int(settings["burst"]),
        concurrency=int(settings["concurrency"]),
        ipv4_prefix=int(settings["ipv4_prefix"]),
        clock=clock,
    )


@pytest.mark.parametrize(
    ("host", "network"),
    [
        ("10.210.0.37", "10.210.0.32/27"),
        ("10.210.0.63", "10.210.0.32/27"),
        ("10.210.0.64", "10.210.0.64/27"),
        ("172.18.0.5", "172.18.0.0/27"),
        ("127.0.0.1", "127.0.0.0/27"),
        ("::ffff:10.210.0.37", "10.210.0.32/27"),
        ("fd00:1:2:3:4:5:6:7", "fd00:1:2:3::/64"),
        ("testclient", "testclient"),
        ("", ""),
    ],
)
def test_a_source_counts_against_its_tenant_subnet(host: str, network: str) -> None:
    assert limits(FakeClock()).network_of(host) == network


def test_the_prefix_follows_the_setting() -> None:
    assert limits(FakeClock(), ipv4_prefix=24).network_of("10.210.7.200") == "10.210.7.0/24"


def test_a_burst_then_the_sustained_rate() -> None:
    clock = FakeClock()
    gate = limits(clock)
    network = "10.210.0.0/27"
    for _ in range(5):
        assert gate.admit(network) == 0
        gate.release(network)
    assert gate.admit(network) == 1  # the burst is spent: one token in 0.1 s, said as 1 s
    clock.now += 0.1
    assert gate.admit(network) == 0
    gate.release(network)
    assert gate.admit(network) == 1
    clock.now += 60  # refills to the burst, no further
    admitted = 0
    while gate.admit(network) == 0:
        gate.release(network)
        admitted += 1
    assert admitted == 5


def test_retry_after_covers_a_slow_rate() -> None:
    clock = FakeClock()
    gate = limits(clock, rate=0.25, burst=1)
    assert gate.admit("a") == 0
    gate.release("a")
    assert gate.admit("a") == 4
    clock.now += 3.0
    assert gate.admit("a") == 1
    clock.now += 1.0
    assert gate.admit("a") == 0


def test_requests_in_flight_are_capped_until_released() -> None:
    clock = FakeClock()
    gate = limits(clock, burst=100)
    network = "10.210.0.0/27"
    assert [gate.admit(network) for _ in range(3)] == [0, 0, 0]
    assert gate.in_flight(network) == 3
    assert gate.admit(network) == 1
    gate.release(network)
    assert gate.admit(network) == 0
    assert gate.in_flight(network) == 3


def test_one_network_over_its_limits_leaves_another_alone() -> None:
    clock = FakeClock()
    gate = limits(clock)
    attacker, victim = "10.210.0.0/27", "10.210.0.32/27"
    refused = 0
    for _ in range(1000):
        if gate.admit(attacker) == 0:
            gate.release(attacker)
        else:
            refused += 1
    assert refused == 995
    assert gate.admit(victim) == 0


def test_refusals_spend_nothing() -> None:
    clock = FakeClock()
    gate = limits(clock, burst=1)
    assert gate.admit("a") == 0
    gate.release("a")
    for _ in range(100):
        assert gate.admit("a") == 1
    clock.now += 0.1
    assert gate.admit("a") == 0


def test_a_release_without_admission_changes_nothing() -> None:
    gate = limits(FakeClock())
    gate.release("never-seen")
    assert gate.admit("a") == 0
    gate.release("a")
    gate.release("a")
    assert gate.in_flight("a") == 0
    assert gate.tracked == 1


def test_idle_networks_are_forgotten_when_many_are_tracked() -> None:
    clock = FakeClock()
    gate = limits(clock, burst=1)
    for index in range(MAX_TRACKED_NETWORKS):
        assert gate.admit(f"n{index}") == 0
        if index:
            gate.release(f"n{index}")
    clock.now += 1.0  # every bucket full again; n0 still has a request in flight
    assert gate.admit("new") == 0
    assert gate.tracked == 2
    assert gate.in_flight("n0") == 1


@pytest.mark.parametrize(
    "settings",
    [{"rate": 0}, {"rate": -1}, {"burst": 0}, {"concurrency": 0}, {"ipv4_prefix": 33}],
)
def test_nonsense_settings_are_refused(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        limits(FakeClock(), **settings)


def _statuses(gate: TenantLimits, requests: list[tuple[str, str]]) -> list[httpx.Response]:
    app = build_app("replay", clock=lambda: 1_709_296_440_000, tenant_limits=gate)

    async def call() -> list[httpx.Response]:
        answers = []
        for client_host, path in requests:
            transport = httpx.ASGITransport(app=app, client=(client_host, 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
                answers.append(
                    await client.get(path, params={"symbol": "BTCUSDT", "interval": "1h"})
                )
        return answers

    return asyncio.run(call())


def test_the_gateway_answers_429_in_binance_format_past_the_limit() -> None:
    clock = FakeClock()
    gate = limits(clock, burst=2)
    answers = _statuses(
        gate,
        [
            ("10.210.0.40", KLINES),
            ("10.210.0.41", KLINES),
            ("10.210.0.42", KLINES),  # same /27: the third request of the burst of two
            ("10.210.0.42", "/binance/api/v3/unknown"),  # refused before routing, too
            ("10.210.0.42", "/healthz"),  # the health check is exempt
            ("10.210.0.70", KLINES),  # another tenant's subnet
        ],
    )
    assert [answer.status_code for answer in answers] == [200, 200, 429, 429, 200, 200]
    refused = answers[2]
    assert refused.headers["retry-after"] == "1"
    assert refused.headers["content-type"] == "application/json"
    body = refused.json()
    assert body["code"] == -1003
    assert "10 per second and 3 at once" in body["msg"]
    assert gate.in_flight("10.210.0.32/27") == 0  # released once answered


def test_a_refused_network_is_logged_once_not_per_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = limits(FakeClock(), burst=1)
    with caplog.at_level(logging.WARNING, logger="fta.gateway.app"):
        answers = _statuses(gate, [("10.210.0.40", KLINES)] * 4 + [("10.210.0.70", KLINES)] * 3)
    assert [answer.status_code for answer in answers] == [200, 429, 429, 429, 200, 429, 429]
    refusals = [record.getMessage() for record in caplog.records]
    assert len(refusals) == 2
    assert refusals[0].startswith("10.210.0.32/27 is over its limits")
    assert refusals[1].startswith("10.210.0.64/27 is over its limits")


@pytest.mark.parametrize(("status", "kept"), [(200, True), (400, True), (429, False)])
def test_the_access_log_leaves_out_refusals(status: int, kept: bool) -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("10.210.0.40:5000", "GET", KLINES, "1.1", status),
        None,
    )
    assert RefusalsUnlogged().filter(record) is kept
