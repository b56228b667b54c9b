"""Upstream requests per candle period made by the gateway for 1 bot and for N bots.

The gateway runs as a real process in proxy mode in front of the exchange stand-in
(tests/support/exchange_standin.py, 50 ms latency); each bot is an HTTP client polling the
klines of the same pairs as a freqtrade dry-run bot does (once per candle close, again on
the next loop while the closed candle is missing). A fresh gateway serves each run.

usage: .venv/bin/python -m bench.gateway_fanin [--bots 20] [--timeframe 1m] [--periods 3]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path

import httpx
from tests.support.exchange_standin import Bot, ExchangeStandin, poll_like_freqtrade
from tests.support.host_processes import gateway_process

from fta.markets import INTERVAL_MS, interval_open

PAIRS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def _bots(url: str, count: int, timeframe: str, start: int, end: int) -> list[Bot]:
    length = INTERVAL_MS[timeframe]
    bots = [Bot(PAIRS, timeframe, {}) for _ in range(count)]
    await asyncio.sleep(max(0.0, (start - _now_ms()) / 1000))
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        await asyncio.gather(
            *(
                poll_like_freqtrade(
                    client,
                    bot,
                    until_ms=end,
                    # freqtrade's loop runs every 5 s; shorter candles get a shorter loop.
                    loop_seconds=min(5.0, length / 10_000),
                    first_delay=random.uniform(0, min(5.0, length / 4000)),
                )
                for bot in bots
            )
        )
    return bots


def run(standin: ExchangeStandin, count: int, timeframe: str, periods: int) -> dict[str, float]:
    length = INTERVAL_MS[timeframe]
    with (
        tempfile.TemporaryDirectory() as tmp,
        gateway_process("proxy", Path(tmp) / "gateway.log", upstream=standin.url) as url,
    ):
        start = interval_open(timeframe, _now_ms()) + length
        end = start + periods * length
        bots = asyncio.run(_bots(url, count, timeframe, start, end))
    upstream = [s for s in standin.seen("/api/v3/klines") if start <= s.at_ms < end]
    per_period = len(upstream) / periods
    return {
        "bots": count,
        "client_requests": sum(bot.requests for bot in bots),
        "client_errors": sum(bot.errors for bot in bots),
        "upstream_klines": len(upstream),
        "upstream_per_period": per_period,
        "upstream_per_period_per_pair": per_period / len(PAIRS),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bots", type=int, default=20)
    parser.add_argument("--timeframe", default="1m", choices=sorted(INTERVAL_MS))
    parser.add_argument("--periods", type=int, default=3)
    args = parser.parse_args()
    with ExchangeStandin() as standin:
        results = [run(standin, n, args.timeframe, args.periods) for n in (1, args.bots)]
    print(f"timeframe {args.timeframe}, {args.periods} periods, pairs {', '.join(PAIRS)}")
    header = ("bots", "client_requests", "client_errors", "upstream_klines", "upstream_per_period")
    print(" | ".join(header))
    for row in results:
        print(" | ".join(f"{row[name]:g}" for name in header))
    one, many = results
    ratio = many["upstream_klines"] / one["upstream_klines"] if one["upstream_klines"] else 0.0
    print(f"upstream klines ratio ({args.bots} bots / 1 bot): {ratio:.2f}")


if __name__ == "__main__":
    main()
