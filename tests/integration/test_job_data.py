"""Which candles a job runs on: the shared cache filled with the strategy's startup candles,
the data hash in the result, and a client's download of candles as freqtrade's files.

Real Docker, the real gateway (replay mode) and real freqtrade, through the API and worker."""

from __future__ import annotations

import io
import json
import subprocess
import time
import zipfile
from collections.abc import Iterator
from datetime import date
from typing import Any

import docker
import pytest
from fastapi.testclient import TestClient

from fta.db import session_scope
from fta.freqtrade.options import first_startup_day
from fta.market_data import candle_cache
from fta.settings import get_settings
from tests.integration.strategies import source
from tests.support.api import Client, sign_up
from tests.support.jobs import ENDED, run_job
from tests.support.sandbox import Sandbox

pytestmark = pytest.mark.docker

JOB_IMAGE = "fta/freqtrade:2026.9"
# Pairs and ranges no other test of the session uses: each test starts from an empty cache.
RERUN = {
    "pairs": ["BNB/USDT"],
    "timeframe": "5m",
    "timerange": "20230301-20230308",
    "stake_amount": 100,
    "max_open_trades": 1,
}
EARLIER = {**RERUN, "timerange": "20230101-20230105"}
DOWNLOAD = {"pairs": ["ADA/USDT", "XRP/USDT"], "timeframe": "15m", "timerange": "20230610-20230615"}


@pytest.fixture
def tenants(http: TestClient, sandbox: Sandbox) -> Iterator[tuple[Client, Client]]:
    first, second = sign_up(http), sign_up(http)
    sandbox.forget_tenant(first.tenant_id)
    sandbox.forget_tenant(second.tenant_id)
    yield first, second


def _upload(http: TestClient, client: Client, name: str) -> str:
    response = http.post(
        "/api/v1/strategies", json={"name": name, "source": source(name)}, headers=client.auth
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _trades(http: TestClient, client: Client, job_id: str, strategy: str) -> list[Any]:
    """The trade list of freqtrade's own result file, from the job's archive."""
    archive = http.get(f"/api/v1/jobs/{job_id}/archive", headers=client.auth)
    assert archive.status_code == 200
    with zipfile.ZipFile(io.BytesIO(archive.content)) as results:
        name = next(n for n in results.namelist() if n.endswith(".json") and "_config" not in n)
        stats = json.loads(results.read(name))
    trades: list[Any] = stats["strategy"][strategy]["trades"]
    return trades


def _source() -> str:
    """The cache's data source the sandbox's worker fills."""
    return get_settings().market_data_source.value


def _exchange_info_requests(sandbox: Sandbox) -> int:
    """How many times a freqtrade started against the gateway: each asks for the markets."""
    engine = docker.from_env()
    try:
        logs = engine.containers.get(sandbox.gateway_name).logs().decode(errors="replace")
    finally:
        engine.close()
    return logs.count("/binance/api/v3/exchangeInfo")


def test_a_rerun_after_another_tenant_extended_the_cache_is_identical(
    http: TestClient, tenants: tuple[Client, Client]
) -> None:
    first, second = tenants
    strategy_id = _upload(http, first, "RsiQuick")
    job_id, before = run_job(first, kind="backtest", strategy_id=strategy_id, config=RERUN)
    assert before["trades"] > 0
    data = before["data"]
    assert data["startup_candles"] == 20 and len(data["sha256"]) == 64
    # RsiQuick's 20 startup candles of 5 minutes, before the range's start, were used.
    [pair] = data["pairs"]
    assert pair["pair"] == "BNB/USDT"
    assert pair["first_ms"] == 1_677_628_800_000 - 20 * 300_000
    assert pair["last_ms"] == 1_678_233_600_000
    assert pair["candles"] == 7 * 288 + 20 + 1
    assert before["backtest_start_ms"] == 1_677_628_800_000

    # Another tenant's job makes the cache reach further back on the same pair.
    other = _upload(http, second, "RsiQuick")
    run_job(second, kind="backtest", strategy_id=other, config=EARLIER)
    with session_scope() as session:
        assert (
            candle_cache.missing(
                session,
                "binance",
                RERUN["pairs"],
                "5m",
                date(2023, 1, 1),
                date(2023, 3, 8),
                source=_source(),
            )
            is None
        )

    rerun_id, after = run_job(first, kind="backtest", strategy_id=strategy_id, config=RERUN)
    assert after["data"] == data
    assert after["backtest_start_ms"] == before["backtest_start_ms"]
    assert after["trades"] == before["trades"]
    assert _trades(http, first, rerun_id, "RsiQuick") == _trades(http, first, job_id, "RsiQuick")


def test_a_startup_count_freqtrade_alone_knows_fails_the_job(
    http: TestClient, tenants: tuple[Client, Client]
) -> None:
    client, _ = tenants
    strategy_id = _upload(http, client, "ComputedStartup")
    response = http.post(
        "/api/v1/jobs",
        json={"kind": "backtest", "strategy_id": strategy_id, "config": RERUN},
        headers=client.auth,
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        job = http.get(f"/api/v1/jobs/{job_id}", headers=client.auth).json()
        if job["status"] in ENDED:
            break
        time.sleep(0.5)
    assert job["status"] == "failed", job
    assert "ran with startup_candle_count 20, but its class declares 0" in job["error"]
    assert "declare startup_candle_count as a plain number" in job["error"]
    assert http.get(f"/api/v1/jobs/{job_id}/result", headers=client.auth).status_code == 404


def test_a_download_warms_the_cache_and_only_its_owner_gets_the_candles(
    http: TestClient, sandbox: Sandbox, tenants: tuple[Client, Client]
) -> None:
    owner, stranger = tenants
    markets_asked = _exchange_info_requests(sandbox)
    job_id, result = run_job(owner, kind="download-data", config=DOWNLOAD)
    # One freqtrade run filled the cache (the download itself runs none).
    assert _exchange_info_requests(sandbox) == markets_asked + 1
    assert result["kind"] == "download-data" and result["timerange"] == "20230610-20230615"
    rows = {row["pair"]: row for row in result["data"]["pairs"]}
    candles = 5 * 96 + 1  # through the candle opening at the range's end
    for pair in DOWNLOAD["pairs"]:
        assert rows[pair]["candles"] == candles
        assert rows[pair]["first_ms"] == 1_686_355_200_000
        assert rows[pair]["last_ms"] == 1_686_787_200_000

    for path in ("archive", "result"):
        refused = http.get(f"/api/v1/jobs/{job_id}/{path}", headers=stranger.auth)
        assert refused.status_code == 404, path
    archive = http.get(f"/api/v1/jobs/{job_id}/archive", headers=owner.auth)
    assert archive.status_code == 200
    with zipfile.ZipFile(io.BytesIO(archive.content)) as files:
        assert sorted(files.namelist()) == ["ADA_USDT-15m.feather", "XRP_USDT-15m.feather"]
    # freqtrade itself reads the files, from a plain data directory.
    loaded = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "-i",
            "--network",
            "none",
            "--entrypoint",
            "python",
            JOB_IMAGE,
            "-c",
            READ_WITH_FREQTRADE,
        ],
        input=archive.content,
        capture_output=True,
        check=True,
        timeout=120,
    )
    counts = json.loads(loaded.stdout.decode().strip().splitlines()[-1])
    assert counts == {
        pair: [candles, "2023-06-10 00:00:00+00:00", "2023-06-15 00:00:00+00:00"]
        for pair in DOWNLOAD["pairs"]
    }

    # A later backtest of the same range finds its candles, startup included, in the cache.
    start = first_startup_day(date(2023, 6, 10), "15m", 20)
    with session_scope() as session:
        assert (
            candle_cache.missing(
                session,
                "binance",
                DOWNLOAD["pairs"],
                "15m",
                start,
                date(2023, 6, 15),
                source=_source(),
            )
            is None
        )
    strategy_id = _upload(http, owner, "RsiQuick")
    markets_asked = _exchange_info_requests(sandbox)
    backtest = {**DOWNLOAD, "stake_amount": 100, "max_open_trades": 2}
    _, summary = run_job(owner, kind="backtest", strategy_id=strategy_id, config=backtest)
    # Only the backtest's own freqtrade asked for the markets: no fill ran.
    assert _exchange_info_requests(sandbox) == markets_asked + 1
    for row in summary["data"]["pairs"]:
        assert row["last_ms"] == rows[row["pair"]]["last_ms"]


READ_WITH_FREQTRADE = """
import io, json, sys, tempfile, zipfile
from pathlib import Path
from freqtrade.data.history import get_datahandler
from freqtrade.enums import CandleType

folder = Path(tempfile.mkdtemp())
zipfile.ZipFile(io.BytesIO(sys.stdin.buffer.read())).extractall(folder)
handler = get_datahandler(folder, "feather")
out = {}
for pair in ("ADA/USDT", "XRP/USDT"):
    frame = handler.ohlcv_load(pair, "15m", candle_type=CandleType.SPOT, fill_missing=False)
    out[pair] = [len(frame), str(frame["date"].iloc[0]), str(frame["date"].iloc[-1])]
print(json.dumps(out))
"""
