"""Jobs end to end: the API, the worker, the socket proxy, the gateway and real freqtrade
in hardened containers on the real Docker engine."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import docker
import pytest
from fastapi.testclient import TestClient

from fta.accounts.models import Tenant
from fta.db import session_scope
from fta.plans.service import get_plan
from tests.integration.strategies import source
from tests.support.api import Client, sign_up
from tests.support.jobs import job_containers, wait_for_job
from tests.support.sandbox import Sandbox

pytestmark = pytest.mark.docker

BACKTEST = {
    "exchange": "binance",
    "pairs": ["BTC/USDT", "ETH/USDT"],
    "timeframe": "5m",
    "timerange": "20240101-20240115",
    "stake_amount": 100,
    "max_open_trades": 2,
}


@pytest.fixture
def client(http: TestClient, sandbox: Sandbox) -> Iterator[Client]:
    client = sign_up(http)
    sandbox.forget_tenant(client.tenant_id)
    yield client


def _upload(http: TestClient, client: Client, name: str) -> str:
    response = http.post(
        "/api/v1/strategies", json={"name": name, "source": source(name)}, headers=client.auth
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _submit(http: TestClient, client: Client, **body: Any) -> str:
    response = http.post("/api/v1/jobs", json=body, headers=client.auth)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def _job_containers(job_id: str) -> list[Any]:
    engine = docker.from_env()
    try:
        return job_containers(engine, job_id)
    finally:
        engine.close()


def test_backtest_produces_trades_and_logs(http: TestClient, client: Client) -> None:
    strategy_id = _upload(http, client, "RsiQuick")
    job_id = _submit(http, client, kind="backtest", strategy_id=strategy_id, config=BACKTEST)
    job = wait_for_job(client, job_id, {"succeeded", "failed", "timed_out", "oom_killed"})
    logs = http.get(f"/api/v1/jobs/{job_id}/logs", headers=client.auth).text
    assert job["status"] == "succeeded", (job, logs[-3000:])
    assert job["exit_code"] == 0 and job["started_at"] and job["finished_at"]
    result = http.get(f"/api/v1/jobs/{job_id}/result", headers=client.auth).json()
    assert result["trades"] > 0
    # The sandbox's gateway replays generated candles: the result says they are not history.
    synthetic = {
        "source": "synthetic",
        "note": "synthetic candles generated for testing, not market history",
    }
    assert result["market_data"] == job["market_data"] == synthetic
    for key in ("profit_total_pct", "max_drawdown_pct", "win_rate"):
        assert isinstance(result[key], int | float), key
    assert {row["pair"] for row in result["pairs"]} <= set(BACKTEST["pairs"])
    assert "RsiQuick" in logs and "FTA-RESULT" not in logs and "FTA-ARCHIVE" not in logs
    archive = http.get(f"/api/v1/jobs/{job_id}/archive", headers=client.auth)
    assert archive.status_code == 200
    assert archive.headers["content-type"] == "application/octet-stream"
    assert archive.headers["content-disposition"].startswith("attachment;")
    with zipfile.ZipFile(io.BytesIO(archive.content)) as results:
        assert any(name.endswith(".json") for name in results.namelist())
    assert _job_containers(job_id) == []


def test_hyperopt_finds_best_params(http: TestClient, client: Client) -> None:
    strategy_id = _upload(http, client, "RsiHyper")
    config = {**BACKTEST, "epochs": 10, "spaces": ["buy", "sell"]}
    job_id = _submit(http, client, kind="hyperopt", strategy_id=strategy_id, config=config)
    job = wait_for_job(client, job_id, {"succeeded", "failed", "timed_out", "oom_killed"})
    logs = http.get(f"/api/v1/jobs/{job_id}/logs", headers=client.auth).text
    assert job["status"] == "succeeded", (job, logs[-3000:])
    result = http.get(f"/api/v1/jobs/{job_id}/result", headers=client.auth).json()
    assert result["epochs"] == 10
    params = result["params"]
    assert set(params.get("buy", {})) == {"buy_rsi"} and set(params.get("sell", {})) == {"sell_rsi"}


def _epochs(http: TestClient, client: Client, job_id: str) -> list[dict[str, Any]]:
    """Every epoch of a hyperopt, from freqtrade's own epochs file (the job's archive)."""
    archive = http.get(f"/api/v1/jobs/{job_id}/archive", headers=client.auth)
    assert archive.status_code == 200, archive.text
    return [json.loads(line) for line in archive.content.decode().splitlines()]


def _merged(over: dict[str, Any], under: dict[str, Any]) -> dict[str, Any]:
    merged = dict(under)
    for key, value in over.items():
        if isinstance(value, dict):
            merged[key] = _merged(value, under.get(key, {}))
        else:
            merged[key] = value
    return merged


def test_hyperopt_reruns_identically_from_its_seed_with_several_workers(
    http: TestClient, client: Client
) -> None:
    # The "pro" plan's 2 CPUs: hyperopt runs its epochs in 2 processes.
    with session_scope() as session:
        session.get_one(Tenant, client.tenant_id).plan_id = get_plan(session, "pro").id
    strategy_id = _upload(http, client, "RsiHyper")
    # Past freqtrade's 30 random initial points, so the sampler's own choices are compared too;
    # over a few days, so that the epochs file (every epoch's trades) stays small.
    config = {**BACKTEST, "timerange": "20240101-20240105", "epochs": 34, "spaces": ["buy", "sell"]}
    ended = {"succeeded", "failed", "timed_out", "oom_killed"}
    drawn = _submit(http, client, kind="hyperopt", strategy_id=strategy_id, config=config)
    job = wait_for_job(client, drawn, ended)
    assert job["status"] == "succeeded", job
    first = http.get(f"/api/v1/jobs/{drawn}/result", headers=client.auth).json()
    assert first["job_workers"] == 2 and first["random_state"] >= 1  # the seed freqtrade drew

    seeded = {**config, "random_state": first["random_state"]}
    reruns = [
        _submit(http, client, kind="hyperopt", strategy_id=strategy_id, config=seeded)
        for _ in range(2)
    ]
    unfinished = http.get(f"/api/v1/jobs/{reruns[0]}/params", headers=client.auth)
    assert unfinished.status_code == 409, unfinished.text
    for job_id in reruns:
        job = wait_for_job(client, job_id, ended)
        assert job["status"] == "succeeded", job
        result = http.get(f"/api/v1/jobs/{job_id}/result", headers=client.auth).json()
        assert (result["random_state"], result["job_workers"]) == (first["random_state"], 2)

    runs = [_epochs(http, client, job_id) for job_id in (drawn, *reruns)]
    assert [len(epochs) for epochs in runs] == [34, 34, 34]
    # Epoch by epoch: the same parameters, the same loss.
    traces = [
        [(e["current_epoch"], e["params_details"], e["loss"]) for e in epochs] for epochs in runs
    ]
    assert traces[0] == traces[1] == traces[2]

    download = http.get(f"/api/v1/jobs/{reruns[1]}/params", headers=client.auth)
    assert download.status_code == 200, download.text
    assert download.headers["content-type"] == "application/json"
    assert download.headers["content-disposition"] == 'attachment; filename="RsiHyper.json"'
    parameters = json.loads(download.content)
    assert list(parameters) == ["strategy_name", "params", "ft_stratparam_v", "export_time"]
    assert (parameters["strategy_name"], parameters["ft_stratparam_v"]) == ("RsiHyper", 1)
    best = [epoch for epoch in runs[2] if epoch["is_best"]][-1]
    assert best["current_epoch"] == result["best_epoch"]
    assert parameters["params"] == _merged(best["params_details"], best["params_not_optimized"])
    assert parameters["params"]["buy"] == result["params"]["buy"]

    other = sign_up(http, "Other")
    assert http.get(f"/api/v1/jobs/{reruns[1]}/params", headers=other.auth).status_code == 404


def test_cancel_a_running_job_removes_its_hardened_container(
    http: TestClient, client: Client
) -> None:
    strategy_id = _upload(http, client, "Sleeper")
    job_id = _submit(http, client, kind="backtest", strategy_id=strategy_id, config=BACKTEST)
    wait_for_job(client, job_id, {"running"}, timeout=120)
    containers = _job_containers(job_id)
    assert len(containers) == 1
    attrs = containers[0].attrs
    host = attrs["HostConfig"]
    assert host["Privileged"] is False and host["CapDrop"] == ["ALL"] and not host["CapAdd"]
    assert "no-new-privileges" in host["SecurityOpt"] and host["ReadonlyRootfs"] is True
    assert host["Memory"] == host["MemorySwap"] == 1024 * 1024 * 1024
    assert host["NanoCpus"] == 1_000_000_000 and host["PidsLimit"] == 256
    assert not host["PortBindings"] and not host["Binds"]
    assert host["NetworkMode"] == f"fta-client-{client.tenant_id}"
    assert attrs["Config"]["User"] == "10000:10000"
    assert attrs["Config"]["Labels"]["fta.tenant"] == client.tenant_id
    assert all(m["Type"] == "volume" for m in attrs["Mounts"])

    response = http.post(f"/api/v1/jobs/{job_id}/cancel", headers=client.auth)
    assert response.status_code == 202
    job = wait_for_job(client, job_id, {"cancelled", "failed"}, timeout=60)
    assert job["status"] == "cancelled"
    assert _job_containers(job_id) == []


def test_a_job_over_its_max_duration_times_out(http: TestClient, client: Client) -> None:
    strategy_id = _upload(http, client, "Sleeper")
    job_id = _submit(
        http, client, kind="backtest", strategy_id=strategy_id, config=BACKTEST, max_seconds=20
    )
    job = wait_for_job(client, job_id, {"timed_out", "failed", "succeeded"}, timeout=180)
    assert job["status"] == "timed_out", job
    assert "20 s" in job["error"]
    assert _job_containers(job_id) == []


def test_a_job_past_its_memory_is_oom_killed(http: TestClient, client: Client) -> None:
    strategy_id = _upload(http, client, "MemoryHog")
    job_id = _submit(http, client, kind="backtest", strategy_id=strategy_id, config=BACKTEST)
    job = wait_for_job(client, job_id, {"oom_killed", "failed", "succeeded"}, timeout=180)
    assert job["status"] == "oom_killed", job
    assert "1024 MiB" in job["error"]


def test_a_strategy_that_raises_on_import_fails_with_its_cause(
    http: TestClient, client: Client
) -> None:
    strategy_id = _upload(http, client, "BrokenImport")
    job_id = _submit(http, client, kind="backtest", strategy_id=strategy_id, config=BACKTEST)
    job = wait_for_job(client, job_id, {"failed", "succeeded"}, timeout=180)
    assert job["status"] == "failed"
    assert "BrokenImport" in job["error"] or "boom" in job["error"], job["error"]
