"""Recorded mode of the market-data gateway: the imported candles, nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from fta.gateway.app import build_app
from fta.market_data import store
from fta.market_data.ohlcv_files import Candle
from tests.unit.test_gateway_replay import GatewayClient

JAN_1 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
FIVE_MINUTES = 300_000
NOW = JAN_1 + 400 * 24 * 3600 * 1000
BASE = "/binance/api/v3"
HELD = [
    Candle(JAN_1 + i * FIVE_MINUTES, 42_000.5 + i, 42_100.0 + i, 41_900.25 + i, 42_010.0 + i, 3.5)
    for i in range(20)
]


@pytest.fixture
def client(tmp_path: Path) -> GatewayClient:
    store.write_series(store.series_path(tmp_path, "binance", "BTCUSDT", "5m"), HELD)
    return GatewayClient(build_app("recorded", clock=lambda: NOW, store_root=str(tmp_path)))


def test_klines_are_the_recorded_candles(client: GatewayClient) -> None:
    response = client.get(
        f"{BASE}/klines",
        params={"symbol": "BTCUSDT", "interval": "5m", "startTime": str(JAN_1), "limit": "3"},
    )
    assert response.status_code == 200
    assert response.json()[1] == [
        JAN_1 + FIVE_MINUTES,
        "42001.5",
        "42101.0",
        "41901.25",
        "42011.0",
        "3.5",
        JAN_1 + 2 * FIVE_MINUTES - 1,
        "0",
        0,
        "0",
        "0",
        "0",
    ]


def test_nothing_beyond_the_recorded_range(client: GatewayClient) -> None:
    def opens(**params: str) -> list[int]:
        response = client.get(
            f"{BASE}/klines", params={"symbol": "BTCUSDT", "interval": "5m", **params}
        )
        assert response.status_code == 200
        return [row[0] for row in response.json()]

    last = HELD[-1].open_ms
    # Asked from before the first candle to long after the last: the held ones only.
    assert opens(startTime=str(JAN_1 - 10 * FIVE_MINUTES), limit="1000") == [
        c.open_ms for c in HELD
    ]
    assert opens(startTime=str(last + FIVE_MINUTES)) == []
    # Without a start, the newest are the last recorded, not "now".
    assert opens(limit="2") == [last - FIVE_MINUTES, last]
    # A timeframe or market never imported: no candles.
    assert opens(interval="1h") == []


def test_exchange_info_lists_only_the_markets_held(client: GatewayClient) -> None:
    info = client.get(f"{BASE}/exchangeInfo").json()
    assert [entry["symbol"] for entry in info["symbols"]] == ["BTCUSDT"]
    unknown = client.get(f"{BASE}/klines", params={"symbol": "ETHUSDT", "interval": "5m"})
    assert unknown.status_code == 400 and unknown.json()["code"] == -1121


@pytest.mark.parametrize(
    ("endpoint", "params"),
    [("ticker/24hr", {"symbol": "BTCUSDT"}), ("depth", {"symbol": "BTCUSDT"})],
)
def test_live_endpoints_say_there_is_no_live_data(
    client: GatewayClient, endpoint: str, params: dict[str, str]
) -> None:
    response = client.get(f"{BASE}/{endpoint}", params=params)
    assert response.status_code == 400
    assert "No live market data in recorded mode" in response.json()["msg"]


def test_recorded_mode_needs_its_store() -> None:
    with pytest.raises(ValueError, match="recorded candle store"):
        build_app("recorded", clock=lambda: NOW)
