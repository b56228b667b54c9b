"""Binance request weights, the per-minute budget and the waits after 429/418."""

from __future__ import annotations

import pytest

from fta.gateway.endpoints import Request
from fta.gateway.limits import (
    BAN_DEFAULT_SECONDS,
    MAX_RETRY_AFTER_SECONDS,
    WeightBudget,
    request_weight,
    retry_after_seconds,
)

MINUTE = 1_709_296_440_000  # a whole minute, in ms


@pytest.mark.parametrize(
    ("request_", "weight"),
    [
        (Request("time"), 1),
        (Request("exchangeInfo"), 20),
        (Request("klines", ("BTCUSDT",), True, interval="1m", limit=1000), 2),
        (Request("depth", ("BTCUSDT",), True), 5),
        (Request("depth", ("BTCUSDT",), True, limit=100), 5),
        (Request("depth", ("BTCUSDT",), True, limit=101), 25),
        (Request("depth", ("BTCUSDT",), True, limit=1000), 50),
        (Request("depth", ("BTCUSDT",), True, limit=5000), 250),
        (Request("ticker/24hr", ("BTCUSDT",), True), 2),
        (Request("ticker/24hr", tuple(f"S{i}" for i in range(20))), 2),
        (Request("ticker/24hr", tuple(f"S{i}" for i in range(21))), 40),
        (Request("ticker/24hr"), 80),
    ],
)
def test_documented_weights(request_: Request, weight: int) -> None:
    assert request_weight(request_) == weight


def test_retry_after() -> None:
    assert retry_after_seconds("7", 429, MINUTE) == 7
    assert retry_after_seconds("0", 429, MINUTE) == 1
    assert retry_after_seconds(str(10**9), 418, MINUTE) == MAX_RETRY_AFTER_SECONDS
    # Without a usable header: the rest of the minute (429), Binance's shortest ban (418).
    assert retry_after_seconds(None, 429, MINUTE + 45_500) == 15
    assert retry_after_seconds("soon", 418, MINUTE) == BAN_DEFAULT_SECONDS


class Clock:
    def __init__(self) -> None:
        self.now = MINUTE

    def __call__(self) -> int:
        return self.now


def test_budget_counts_per_calendar_minute() -> None:
    clock = Clock()
    budget = WeightBudget(10, clock)
    for _ in range(5):
        assert budget.wait_seconds(2) == 0
        budget.spend(2)
    clock.now += 30_000
    assert budget.wait_seconds(2) == 30  # until the next minute
    assert budget.wait_seconds(0) == 0
    clock.now += 30_000
    assert budget.used == 0 and budget.wait_seconds(2) == 0


def test_budget_trusts_the_exchange_when_it_counts_more() -> None:
    clock = Clock()
    budget = WeightBudget(100, clock)
    budget.spend(2)
    budget.observe("95")
    assert budget.used == 95
    assert budget.wait_seconds(5) == 0 and budget.wait_seconds(6) == 60
    budget.observe("3")  # a lower count (an older answer) changes nothing
    budget.observe("n/a")
    assert budget.used == 95


def test_blocked_means_no_request_at_all() -> None:
    clock = Clock()
    budget = WeightBudget(100, clock)
    budget.block(120)
    assert budget.wait_seconds(1) == 120
    clock.now += 119_500
    assert budget.wait_seconds(1) == 1
    clock.now += 500
    assert budget.wait_seconds(1) == 0
    with pytest.raises(ValueError, match="at least 1"):
        WeightBudget(0, clock)
