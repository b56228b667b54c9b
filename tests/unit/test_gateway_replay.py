"""Replay mode of the market-data gateway: Binance semantics on synthetic, deterministic data."""

from __future__ import annotations

import asyncio
import itertools
from decimal import Decimal
from typing import Any

import httpx
import pytest

from fta.gateway.app import build_app
from fta.gateway.synthetic import candle
from fta.markets import INTERVAL_MS, interval_open, markets

# 2024-03-01 12:34:56.789 UTC
NOW = 1_709_296_496_789
FIVE_MINUTES = 300_000
BASE = "/binance/api/v3"


class GatewayClient:
    """Synchronous calls into the ASGI app, in process (no server, no network)."""

    def __init__(self, app: Any) -> None:
        self._transport = httpx.ASGITransport(app=app)

    def request(self, method: str, path: str, params: Any = None) -> httpx.Response:
        async def call() -> httpx.Response:
            async with httpx.AsyncClient(
                transport=self._transport, base_url="http://gateway"
            ) as client:
                return await client.request(method, path, params=params)

        return asyncio.run(call())

    def get(self, path: str, params: Any = None) -> httpx.Response:
        return self.request("GET", path, params)

    def post(self, path: str, params: Any = None) -> httpx.Response:
        return self.request("POST", path, params)


@pytest.fixture
def client() -> GatewayClient:
    return GatewayClient(build_app("replay", clock=lambda: NOW))


def klines(client: GatewayClient, **params: object) -> list[list[object]]:
    response = client.get(f"{BASE}/klines", params={"symbol": "BTCUSDT", **params})
    assert response.status_code == 200, response.text
    rows: list[list[object]] = response.json()
    return rows


def test_default_klines_are_the_latest_500_up_to_the_candle_in_progress(
    client: GatewayClient,
) -> None:
    rows = klines(client, interval="5m")
    assert len(rows) == 500
    current_open = NOW // FIVE_MINUTES * FIVE_MINUTES
    assert rows[-1][0] == current_open
    assert [row[0] for row in rows] == [current_open - (499 - i) * FIVE_MINUTES for i in range(500)]
    assert all(row[6] == row[0] + FIVE_MINUTES - 1 for row in rows)  # type: ignore[operator]


def test_klines_from_start_time_are_aligned_and_limited(client: GatewayClient) -> None:
    start = 1_704_067_200_000  # 2024-01-01
    rows = klines(client, interval="5m", startTime=start + 1, limit=3)
    assert [row[0] for row in rows] == [start + FIVE_MINUTES * i for i in (1, 2, 3)]


def test_klines_limit_is_capped_at_1000(client: GatewayClient) -> None:
    rows = klines(client, interval="1m", startTime=1_704_067_200_000, limit=5000)
    assert len(rows) == 1000


def test_klines_end_time_bounds_the_open_time(client: GatewayClient) -> None:
    end = 1_704_067_200_000 + 10 * FIVE_MINUTES
    rows = klines(client, interval="5m", endTime=end, limit=4)
    assert [row[0] for row in rows] == [end - FIVE_MINUTES * i for i in (3, 2, 1, 0)]
    both = klines(client, interval="5m", startTime=end - 2 * FIVE_MINUTES, endTime=end - 1)
    assert [row[0] for row in both] == [end - 2 * FIVE_MINUTES, end - FIVE_MINUTES]


def test_no_candle_opens_after_now(client: GatewayClient) -> None:
    rows = klines(client, interval="1h", startTime=NOW - 3_600_000, limit=10)
    assert [row[0] for row in rows] == [interval_open("1h", NOW)]
    assert klines(client, interval="5m", startTime=NOW + FIVE_MINUTES) == []


def test_weekly_candles_open_on_monday() -> None:
    monday = 1_709_510_400_000  # 2024-03-04 00:00 UTC
    assert interval_open("1w", monday + 3 * 86_400_000) == monday


def test_candles_are_deterministic_and_consistent() -> None:
    other_clock = GatewayClient(build_app("replay", clock=lambda: NOW + 10 * 86_400_000))
    start = 1_704_067_200_000
    first = GatewayClient(build_app("replay", clock=lambda: NOW))
    params = {"symbol": "ETHUSDT", "interval": "15m", "startTime": start, "limit": 200}
    rows = first.get(f"{BASE}/klines", params=params).json()
    assert rows == other_clock.get(f"{BASE}/klines", params=params).json()
    for previous, row in itertools.pairwise(rows):
        assert previous[4] == row[1]  # close == next open
    for row in rows:
        open_, high, low, close, volume = (Decimal(value) for value in row[1:6])
        assert high >= max(open_, close) and low <= min(open_, close) and low > 0
        assert volume > 0


def test_timeframes_sample_one_price_path() -> None:
    btc = markets("binance")["BTCUSDT"]
    hour = 1_704_067_200_000
    hourly = candle(btc, "1h", hour)
    fives = [candle(btc, "5m", hour + i * FIVE_MINUTES) for i in range(12)]
    assert hourly.open == fives[0].open and hourly.close == fives[-1].close
    assert candle(btc, "1h", hour) == hourly


def test_synthetic_prices_move_enough_to_trade() -> None:
    btc = markets("binance")["BTCUSDT"]
    closes = [
        float(candle(btc, "5m", 1_704_067_200_000 + i * FIVE_MINUTES).close) for i in range(2000)
    ]
    returns = [abs(b / a - 1) for a, b in itertools.pairwise(closes)]
    assert 0.0005 < sum(returns) / len(returns) < 0.01
    assert max(closes) / min(closes) > 1.03


def test_exchange_info_serves_the_fixture_with_server_time(client: GatewayClient) -> None:
    info = client.get(f"{BASE}/exchangeInfo").json()
    assert info["serverTime"] == NOW
    assert {s["symbol"] for s in info["symbols"]} >= {"BTCUSDT", "ETHUSDT"}
    one = client.get(f"{BASE}/exchangeInfo", params={"symbol": "ETHUSDT"}).json()
    assert [s["symbol"] for s in one["symbols"]] == ["ETHUSDT"]


def test_time(client: GatewayClient) -> None:
    assert client.get(f"{BASE}/time").json() == {"serverTime": NOW}


def test_ticker_and_depth_follow_the_latest_candle(client: GatewayClient) -> None:
    ticker = client.get(f"{BASE}/ticker/24hr", params={"symbol": "BTCUSDT"}).json()
    # The candles in progress close at the live price that the ticker quotes.
    for interval in ("1m", "5m", "1h"):
        current = klines(client, interval=interval, limit=1)[0]
        assert current[0] == interval_open(interval, NOW)
        assert ticker["lastPrice"] == current[4]
    assert Decimal(ticker["bidPrice"]) < Decimal(ticker["lastPrice"]) < Decimal(ticker["askPrice"])
    assert (
        Decimal(ticker["lowPrice"]) <= Decimal(ticker["lastPrice"]) <= Decimal(ticker["highPrice"])
    )
    everything = client.get(f"{BASE}/ticker/24hr").json()
    assert len(everything) == len(markets("binance"))

    book = client.get(f"{BASE}/depth", params={"symbol": "BTCUSDT", "limit": 5}).json()
    assert len(book["bids"]) == 5 and len(book["asks"]) == 5
    assert book["bids"][0][0] == ticker["bidPrice"] and book["asks"][0][0] == ticker["askPrice"]
    bids = [Decimal(price) for price, _ in book["bids"]]
    asks = [Decimal(price) for price, _ in book["asks"]]
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks)


@pytest.mark.parametrize(
    ("path", "params", "code"),
    [
        ("klines", {"symbol": "NOPEUSDT", "interval": "5m"}, -1121),
        ("klines", {"symbol": "btcusdt", "interval": "5m"}, -1100),
        ("klines", {"symbol": "BTCUSDT", "interval": "7m"}, -1120),
        ("klines", {"symbol": "BTCUSDT", "interval": "1M"}, -1120),  # not served in replay
        ("klines", {"symbol": "BTCUSDT"}, -1102),
        ("klines", {"interval": "5m"}, -1102),
        ("klines", {"symbol": "BTCUSDT", "interval": "5m", "limit": "ten"}, -1100),
        ("klines", {"symbol": "BTCUSDT", "interval": "5m", "limit": "0"}, -1100),
        ("klines", {"symbol": "BTCUSDT", "interval": "5m", "startTime": "-1"}, -1100),
        ("klines", {"symbol": "BTCUSDT", "interval": "5m", "startTime": 9, "endTime": 3}, -1023),
        ("klines", {"symbol": "BTCUSDT", "interval": "5m", "foo": "1"}, -1104),
        ("depth", {"symbol": "BTCUSDT", "limit": "6000"}, -1128),
        ("depth", {}, -1102),
        ("ticker/24hr", {"symbols": '["BTCUSDT","NOPE"]'}, -1121),
        ("ticker/24hr", {"symbols": "BTCUSDT"}, -1100),
        ("ticker/24hr", {"symbol": "BTCUSDT", "type": "HUGE"}, -1100),
        ("time", {"x": "1"}, -1104),
    ],
)
def test_bad_parameters_answer_binance_errors(
    client: GatewayClient, path: str, params: dict[str, object], code: int
) -> None:
    response = client.get(f"{BASE}/{path}", params=params)
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert isinstance(response.json()["msg"], str)


def test_repeated_parameters_are_refused(client: GatewayClient) -> None:
    response = client.get(f"{BASE}/klines?symbol=BTCUSDT&symbol=ETHUSDT&interval=5m")
    assert response.status_code == 400 and response.json()["code"] == -1101


@pytest.mark.parametrize(
    "path",
    [
        "/binance/api/v3/account",
        "/binance/api/v3/order",
        "/binance/api/v3/ping",
        "/binance/api/v3/ticker/price",
        "/binance/sapi/v1/capital/config/getall",
        "/binance/fapi/v1/klines",
        "/kraken/api/v3/klines",
        "/api/v3/klines",
        "/",
    ],
)
def test_only_whitelisted_paths_are_served(client: GatewayClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json()["code"] == -404


def test_only_get_is_served(client: GatewayClient) -> None:
    response = client.post(f"{BASE}/klines", params={"symbol": "BTCUSDT", "interval": "5m"})
    assert response.status_code == 405
    assert response.json()["code"] == -405


def test_health(client: GatewayClient) -> None:
    assert client.get("/healthz").json() == {
        "status": "ok",
        "mode": "replay",
        "exchanges": ["binance"],
    }


def test_every_replay_interval_is_served(client: GatewayClient) -> None:
    for interval in INTERVAL_MS:
        rows = klines(client, interval=interval, limit=2)
        assert len(rows) == 2
        assert rows[-1][0] == interval_open(interval, NOW)
