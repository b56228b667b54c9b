"""Recorded market data end to end: freqtrade-format files imported with the operator's CLI,
a gateway in recorded mode serving them, a backtest in the real sandbox running on exactly
those candles, and a range outside them refused with the range that is held."""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fta.cli import main
from fta.db import session_scope
from fta.jobs.models import Job, JobKind, JobStatus
from fta.market_data import candle_cache
from fta.market_data.recorded import RecordedCandles
from fta.markets import DataSource
from fta.runtime import DockerJobRunner
from fta.settings import get_settings
from tests.support.api import Client, sign_up, upload_strategy
from tests.support.docker_resources import RUN_ID, DockerResources, local_docker
from tests.support.jobs import wait_for_job
from tests.support.sandbox import APP_IMAGE, GATEWAY_PORT, _free_pool, _wait_gateway
from tests.support.scoped_worker import ScopedWorker
from tests.support.socket_proxy import running_socket_proxy
from tests.support.tenant_disks import TenantDiskHelper

pytestmark = pytest.mark.docker

GATEWAY = f"fta-test-recorded-market-data-{RUN_ID}"
STORE_IN_GATEWAY = "/var/lib/fta/market-data"
FIRST_OPEN = datetime(2024, 1, 1, tzinfo=UTC)
FIVE_MINUTES_MS = 300_000
CANDLES = 4 * 7 * 288  # four weeks of 5m candles: 2024-01-01 00:00 to 2024-01-28 23:55
PAIRS = {"BTC/USDT": 42_000.0, "ETH/USDT": 2_300.0}


def random_walk(pair: str, start_price: float) -> list[list[float]]:
    """freqtrade's OHLCV rows of a deterministic random walk, prices on the market's tick."""
    rng = random.Random(pair)
    first = int(FIRST_OPEN.timestamp() * 1000)
    rows: list[list[float]] = []
    price = start_price
    for index in range(CANDLES):
        open_ = round(price, 2)
        close = round(open_ * (1 + rng.gauss(0, 0.004)), 2)
        high = round(max(open_, close) * (1 + abs(rng.gauss(0, 0.001))), 2)
        low = round(min(open_, close) * (1 - abs(rng.gauss(0, 0.001))), 2)
        volume = round(rng.uniform(1, 50), 4)
        rows.append([first + index * FIVE_MINUTES_MS, open_, high, low, close, volume])
        price = close
    return rows


@dataclass
class RecordedWorld:
    files: Path
    candles: dict[str, list[list[float]]]
    tenants: set[str]


@pytest.fixture(scope="module")
def recorded_world(
    app_settings: None,
    socket_proxy_image: None,
    tenant_disk_helper: TenantDiskHelper,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RecordedWorld]:
    """The platform in recorded mode: a store, a recorded-mode gateway reading it (read-only,
    as in Compose), a worker, and the portal's settings switched to the same mode."""
    store_dir = tmp_path_factory.mktemp("recorded-store")
    store_dir.chmod(0o755)  # the gateway's user reads it through the bind mount
    files = tmp_path_factory.mktemp("freqtrade-data")
    candles = {pair: random_walk(pair, price) for pair, price in PAIRS.items()}
    # One file in each of freqtrade's JSON formats.
    (files / "BTC_USDT-5m.json").write_text(json.dumps(candles["BTC/USDT"]))
    (files / "ETH_USDT-5m.json.gz").write_bytes(
        gzip.compress(json.dumps(candles["ETH/USDT"]).encode())
    )
    saved = {
        name: os.environ.get(name) for name in ("FTA_MARKET_DATA_MODE", "FTA_MARKET_DATA_STORE")
    }
    os.environ.update(FTA_MARKET_DATA_MODE="recorded", FTA_MARKET_DATA_STORE=str(store_dir))
    get_settings.cache_clear()
    engine = local_docker()
    resources = DockerResources(engine)
    tenants: set[str] = set()
    worker = thread = None
    try:
        with running_socket_proxy(resources, gateway_container=GATEWAY) as proxy_url:
            control = engine.networks.create(
                f"fta-test-recorded-{resources.scope}", labels=resources.labels
            )
            resources.add_network(control.name)
            resources.run(
                APP_IMAGE,
                ["fta", "gateway"],
                name=GATEWAY,
                network=control.name,
                environment={
                    "FTA_MARKET_DATA_MODE": "recorded",
                    "FTA_MARKET_DATA_STORE": STORE_IN_GATEWAY,
                    "FTA_GATEWAY_PORT": str(GATEWAY_PORT),
                },
                volumes={str(store_dir): {"bind": STORE_IN_GATEWAY, "mode": "ro"}},
                read_only=True,
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
            )
            _wait_gateway(engine, GATEWAY)
            settings = get_settings().model_copy(
                update={
                    "docker_host": proxy_url,
                    "gateway_container": GATEWAY,
                    "gateway_port": GATEWAY_PORT,
                    "candle_volume": f"fta-candles-test-{resources.scope}",
                    "tenant_subnet_pool": _free_pool(engine),
                    "worker_poll_seconds": 0.5,
                    "reconcile_interval_seconds": 86400.0,
                }
            )
            runner = DockerJobRunner(settings, extra_labels=resources.labels)
            worker = ScopedWorker(runner, settings, max_parallel=2, tenants=tenants)
            thread = threading.Thread(target=worker.run_forever, name="recorded", daemon=True)
            thread.start()
            yield RecordedWorld(files, candles, tenants)
    finally:
        if worker is not None and thread is not None:
            worker.stopping.set()
            thread.join(timeout=120)
        for tenant_id in tenants:
            resources.add_tenant_cgroups("fta", tenant_id)
        resources.cleanup()
        engine.close()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        get_settings.cache_clear()


@pytest.fixture(scope="module")
def imported(recorded_world: RecordedWorld) -> RecordedWorld:
    assert main(["market-data", "import", "--exchange", "binance", str(recorded_world.files)]) == 0
    return recorded_world


@pytest.fixture
def client(http: TestClient, imported: RecordedWorld) -> Client:
    client = sign_up(http)
    imported.tenants.add(client.tenant_id)
    return client


def _backtest(http: TestClient, client: Client, timerange: str) -> Any:
    strategy_id = upload_strategy(client, "RsiQuick")
    config = {
        "exchange": "binance",
        "pairs": list(PAIRS),
        "timeframe": "5m",
        "timerange": timerange,
        "stake_amount": 100,
        "max_open_trades": 2,
    }
    return http.post(
        "/api/v1/jobs",
        json={"kind": "backtest", "strategy_id": strategy_id, "config": config},
        headers=client.auth,
    )


def test_import_records_each_series_range_and_hash(
    imported: RecordedWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["market-data", "list"]) == 0
    listed = capsys.readouterr().out
    assert "binance BTC/USDT 5m: recorded data covers 2024-01-01 00:00 to 2024-01-28 23:55 UTC" in (
        listed
    )
    with session_scope() as session:
        series = session.get(RecordedCandles, ("binance", "ETH/USDT", "5m"))
        assert series is not None and series.candles == CANDLES and len(series.sha256) == 64
    # The same files again add nothing and change nothing.
    assert main(["market-data", "import", "--exchange", "binance", str(imported.files)]) == 0
    assert "0 new" in capsys.readouterr().out


def test_an_import_that_contradicts_what_is_held_is_refused_whole(
    imported: RecordedWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    changed = [row[:] for row in imported.candles["BTC/USDT"][:10]]
    changed[3][4] = changed[3][4] + 1.0
    changed[3][2] = max(changed[3][2], changed[3][4])
    (tmp_path / "BTC_USDT-5m.json").write_text(json.dumps(changed))
    assert main(["market-data", "import", "--exchange", "binance", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert f"{tmp_path / 'BTC_USDT-5m.json'}: the candle of 2024-01-01 00:15 UTC differs" in error
    assert "nothing was imported" in error


def test_an_import_extends_a_series_but_never_fills_a_gap_in_it(
    imported: RecordedWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hour = 3_600_000
    first = int(FIRST_OPEN.timestamp() * 1000)

    def candle(index: int) -> list[float]:
        return [first + index * hour, 0.6, 0.61, 0.59, 0.605, 1000.0]

    def import_rows(folder: str, indexes: list[int]) -> int:
        directory = tmp_path / folder
        directory.mkdir()
        (directory / "XRP_USDT-1h.json").write_text(json.dumps([candle(i) for i in indexes]))
        return main(["market-data", "import", "--exchange", "binance", str(directory)])

    assert import_rows("first", [0, 2]) == 0  # the exchange had no candle at 01:00
    with session_scope() as session:
        fill = candle_cache.missing(
            session,
            "binance",
            ["XRP/USDT"],
            "1h",
            date(2024, 1, 1),
            date(2024, 1, 2),
            source=DataSource.RECORDED.value,
        )
        assert fill is not None
        candle_cache.record_fill(session, fill)
    assert import_rows("gap", [1]) == 1
    assert "the candle of 2024-01-01 01:00 UTC falls in a gap" in capsys.readouterr().err
    assert import_rows("later", [2, 3]) == 0
    added = "1h: recorded data covers 2024-01-01 00:00 to 2024-01-01 03:00 UTC (3 candles, 1 new"
    assert added in capsys.readouterr().out
    with session_scope() as session:
        series = session.get(RecordedCandles, ("binance", "XRP/USDT", "1h"))
        assert series is not None and series.candles == 3
        assert series.last_open == datetime(2024, 1, 1, 3, tzinfo=UTC)
        # The cache's copy ended at 02:00: forgotten, so the next fill fetches 03:00.
        held = session.get(candle_cache.CandleCacheEntry, ("recorded", "binance", "XRP/USDT", "1h"))
        assert held is None


def test_a_backtest_runs_on_the_imported_candles(
    http: TestClient, client: Client, imported: RecordedWorld
) -> None:
    submitted = _backtest(http, client, "20240103-20240127")
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]
    job = wait_for_job(client, job_id)
    logs = http.get(f"/api/v1/jobs/{job_id}/logs", headers=client.auth).text
    assert job["status"] == "succeeded", (job, logs[-3000:])
    assert job["market_data"]["source"] == "recorded"
    result = http.get(f"/api/v1/jobs/{job_id}/result", headers=client.auth).json()
    assert result["market_data"] == job["market_data"]
    assert result["trades"] > 0
    assert result["backtest_start_ms"] == int(datetime(2024, 1, 3, tzinfo=UTC).timestamp() * 1000)
    archive = http.get(f"/api/v1/jobs/{job_id}/archive", headers=client.auth)
    assert archive.status_code == 200
    with zipfile.ZipFile(io.BytesIO(archive.content)) as results:
        contents = [json.loads(results.read(n)) for n in results.namelist() if n.endswith(".json")]
    trades = next(c for c in contents if "strategy" in c)["strategy"]["RsiQuick"]["trades"]
    assert trades
    opens = {pair: {row[0]: row[1] for row in rows} for pair, rows in imported.candles.items()}
    for trade in trades:
        # Each trade entered at the open of an imported candle.
        assert trade["open_rate"] == opens[trade["pair"]][trade["open_timestamp"]], trade


def test_a_range_outside_the_recorded_data_is_refused_with_the_range_held(
    http: TestClient, client: Client
) -> None:
    refused = _backtest(http, client, "20240120-20240210")
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    detail = refused.json()["detail"]
    assert "BTC/USDT 5m: recorded data covers 2024-01-01 00:00 to 2024-01-28 23:55 UTC" in detail
    assert "ETH/USDT 5m: recorded data covers 2024-01-01 00:00 to 2024-01-28 23:55 UTC" in detail
    unknown = http.post(
        "/api/v1/jobs",
        json={
            "kind": "download-data",
            "config": {"pairs": ["SOL/USDT"], "timeframe": "5m", "timerange": "20240102-20240103"},
        },
        headers=client.auth,
    )
    assert unknown.status_code == 422
    assert "SOL/USDT" in unknown.json()["detail"] and "BTC/USDT" in unknown.json()["detail"]


def test_the_worker_refuses_a_job_outside_the_recorded_data(
    http: TestClient, client: Client
) -> None:
    """A job queued past the submission check (as one queued before an operator changed the
    mode would be) is refused by the worker before any download, naming the range held."""
    with session_scope() as session:
        job = Job(
            tenant_id=client.tenant_id,
            kind=JobKind.DOWNLOAD_DATA.value,
            status=JobStatus.QUEUED.value,
            config={"pairs": ["ETH/USDT"], "timeframe": "5m", "timerange": "20231220-20240105"},
            max_seconds=120,
        )
        session.add(job)
        session.flush()
        job_id = str(job.id)
    ended = wait_for_job(client, job_id, timeout=60)
    assert ended["status"] == "failed"
    assert (
        "ETH/USDT 5m: recorded data covers 2024-01-01 00:00 to 2024-01-28 23:55 UTC"
        in (ended["error"])
    )


def test_a_bot_cannot_start_on_recorded_data(http: TestClient, client: Client) -> None:
    config = {
        "exchange": "binance",
        "pairs": ["BTC/USDT"],
        "timeframe": "5m",
        "stake_amount": 100,
        "max_open_trades": 1,
        "dry_run_wallet": 1000,
    }
    created = http.post(
        "/api/v1/bots",
        json={"name": "live", "strategy_id": upload_strategy(client, "RsiQuick"), "config": config},
        headers=client.auth,
    )
    assert created.status_code == 201, created.text
    started = http.post(f"/api/v1/bots/{created.json()['id']}/start", headers=client.auth)
    assert started.status_code == 409
    assert "recorded history has no live prices" in started.json()["detail"]
