"""The gateway as a real process: fan-in of many bots, back-off, and live replay on the clock.

Proxy mode runs against the exchange stand-in (tests/support/exchange_standin.py); the bots
are HTTP clients polling klines as freqtrade does. Candles are 1s long so that many candle
periods pass within seconds; the gateway treats every interval alike.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fta.markets import INTERVAL_MS, interval_open
from tests.support.exchange_standin import Bot, ExchangeStandin, poll_like_freqtrade
from tests.support.host_processes import gateway_process

PAIRS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
KLINES = "/binance/api/v3/klines"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@pytest.fixture
def standin() -> Iterator[ExchangeStandin]:
    with ExchangeStandin() as exchange:
        yield exchange


def _wait_for_boundary(interval: str) -> int:
    """Sleep until just after the next candle opens; return its open time."""
    length = INTERVAL_MS[interval]
    target = interval_open(interval, now_ms()) + length
    time.sleep(max(0.0, (target - now_ms()) / 1000 + 0.01))
    return target


def _run_bots(url: str, count: int, interval: str, periods: int) -> tuple[list[Bot], int, int]:
    """`count` bots polling PAIRS for `periods` candle periods; returns them and the window."""
    length = INTERVAL_MS[interval]
    start = _wait_for_boundary(interval)
    end = start + periods * length
    bots = [Bot(PAIRS, interval, {}) for _ in range(count)]

    async def run() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            await asyncio.gather(
                *(
                    poll_like_freqtrade(
                        client,
                        bot,
                        until_ms=end,
                        loop_seconds=length / 10_000,
                        first_delay=random.uniform(0, length / 4000),
                    )
                    for bot in bots
                )
            )

    asyncio.run(run())
    return bots, start, end


def _upstream_klines(standin: ExchangeStandin, start: int, end: int) -> int:
    return sum(1 for seen in standin.seen("/api/v3/klines") if start <= seen.at_ms < end)


def test_twenty_bots_cost_no_more_upstream_requests_than_one(
    standin: ExchangeStandin, tmp_path: Path
) -> None:
    periods = 8
    counts: dict[int, int] = {}
    for bots_count in (1, 20):
        log = tmp_path / f"gateway-{bots_count}.log"
        with gateway_process("proxy", log, upstream=standin.url) as url:
            bots, start, end = _run_bots(url, bots_count, "1s", periods)
        counts[bots_count] = _upstream_klines(standin, start, end)
        assert sum(bot.errors for bot in bots) == 0
        # Every bot ended up holding the last candle closed within the window.
        last_closed = end - 2 * INTERVAL_MS["1s"]
        for bot in bots:
            assert all(bot.newest_closed[pair] >= last_closed for pair in PAIRS), bot
        if bots_count == 20:
            # The bots did poll all along (a loaded machine delays some of their rounds).
            assert sum(bot.requests for bot in bots) >= 20 * len(PAIRS) * (periods // 2)
    # One upstream request per pair and candle period, whatever the number of bots.
    assert len(PAIRS) * periods <= counts[1] <= len(PAIRS) * (periods + 2)
    assert counts[20] <= 1.1 * counts[1], counts


def test_backs_off_on_429_and_418_and_serves_cached_candles(
    standin: ExchangeStandin, tmp_path: Path
) -> None:
    cached = {"symbol": "BTCUSDT", "interval": "1s", "limit": "5"}
    uncached = {"symbol": "ETHUSDT", "interval": "1s", "limit": "5"}
    with (
        gateway_process("proxy", tmp_path / "gateway.log", upstream=standin.url) as url,
        httpx.Client(base_url=url, timeout=10) as client,
    ):
        first = client.get(KLINES, params=cached)
        assert first.status_code == 200
        _wait_for_boundary("1s")  # the cached answer is now stale
        for status, retry_after in ((429, 2), (418, 3)):
            standin.refuse(status, retry_after)
            before = len(standin.seen())
            refused_at = time.monotonic()
            stale = client.get(KLINES, params=cached)
            assert len(standin.seen()) == before + 1  # the request the exchange refused
            assert stale.status_code == 200 and stale.json() == first.json()
            # During the back-off: cached candles still served, nothing sent upstream.
            while time.monotonic() < refused_at + retry_after - 0.5:
                assert client.get(KLINES, params=cached).json() == first.json()
                busy = client.get(KLINES, params=uncached)
                assert busy.status_code == 503, busy.text
                assert busy.json()["code"] == -1003
                assert 1 <= int(busy.headers["retry-after"]) <= retry_after
                time.sleep(0.2)
            assert len(standin.seen()) == before + 1
            time.sleep(max(0.0, refused_at + retry_after + 0.3 - time.monotonic()))
        fresh = client.get(KLINES, params=cached)
        assert fresh.status_code == 200
        assert fresh.json()[-1][0] > first.json()[-1][0]
        assert client.get(KLINES, params=uncached).status_code == 200


def test_clients_headers_never_reach_the_exchange(standin: ExchangeStandin, tmp_path: Path) -> None:
    secrets = {
        "X-MBX-APIKEY": "client-api-key",  # pragma: allowlist secret
        "Authorization": "Bearer client-token",
        "Cookie": "session=client",
        "User-Agent": "client-agent",
        "X-Forwarded-For": "10.210.0.5",
    }
    with gateway_process("proxy", tmp_path / "gateway.log", upstream=standin.url) as url:
        for path, params in (
            ("klines", {"symbol": "BTCUSDT", "interval": "1m"}),
            ("depth", {"symbol": "BTCUSDT", "limit": "5"}),
            ("ticker/24hr", {"symbol": "BTCUSDT"}),
            ("exchangeInfo", {}),
            ("time", {}),
        ):
            response = httpx.get(
                f"{url}/binance/api/v3/{path}", params=params, headers=secrets, timeout=10
            )
            assert response.status_code == 200, response.text
    seen = standin.seen()
    assert len(seen) == 5
    for request in seen:
        assert request.headers["user-agent"] == "fta-market-data"
        assert not {"x-mbx-apikey", "authorization", "cookie", "x-forwarded-for"} & set(
            request.headers
        )
        assert "client" not in " ".join(request.headers.values())


def test_weight_budget_holds_requests_back(standin: ExchangeStandin, tmp_path: Path) -> None:
    # Klines weigh 2: a budget of 7 per minute allows three distinct requests.
    log = tmp_path / "gateway.log"
    with gateway_process("proxy", log, upstream=standin.url, MARKET_DATA_WEIGHT_BUDGET="7") as url:
        if now_ms() % 60_000 > 55_000:  # keep the four requests within one minute
            time.sleep(6)
        statuses = [
            httpx.get(
                f"{url}{KLINES}", params={"symbol": pair, "interval": "1h"}, timeout=10
            ).status_code
            for pair in (*PAIRS, "BNBUSDT")
        ]
    assert statuses == [200, 200, 200, 503]
    assert len(standin.seen()) == 3


@pytest.mark.parametrize("interval", ["1m", "5m", "1h"])
def test_live_replay_serves_the_candle_of_the_clock(tmp_path: Path, interval: str) -> None:
    length = INTERVAL_MS[interval]
    with gateway_process("replay", tmp_path / "gateway.log") as url:
        for _ in range(3):  # a candle may close between reading the clock and the answer
            before = now_ms()
            rows = httpx.get(
                f"{url}{KLINES}", params={"symbol": "BTCUSDT", "interval": interval, "limit": 3}
            ).json()
            if interval_open(interval, before) == interval_open(interval, now_ms()):
                break
    current = interval_open(interval, before)
    forming, last_closed = rows[-1], rows[-2]
    assert forming[0] == current
    assert last_closed[0] == current - length
    assert last_closed[6] < before <= forming[6]
    assert forming[1] == last_closed[4]  # the forming candle opens at the last close
