"""Job submission, validation, cancellation and tenant isolation (no worker running)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.support.api import Client, sign_up, upload_strategy

CONFIG = {
    "exchange": "binance",
    "pairs": ["BTC/USDT"],
    "timeframe": "5m",
    "timerange": "20240101-20240201",
    "stake_amount": 100,
    "max_open_trades": 1,
}


@pytest.fixture
def client(http: TestClient) -> Iterator[Client]:
    client = sign_up(http)
    yield client
    # Leave nothing queued for a worker that may run later in the session.
    for job in http.get("/api/v1/jobs", headers=client.auth).json():
        if job["status"] == "queued":
            http.post(f"/api/v1/jobs/{job['id']}/cancel", headers=client.auth)


def _submit(http: TestClient, client: Client, **body: object) -> dict[str, object]:
    response = http.post("/api/v1/jobs", json=body, headers=client.auth)
    return {"status_code": response.status_code, **response.json()}


def test_submit_get_list_and_cancel_a_queued_job(http: TestClient, client: Client) -> None:
    strategy_id = upload_strategy(client)
    accepted = _submit(http, client, kind="backtest", strategy_id=strategy_id, config=CONFIG)
    assert accepted["status_code"] == 202 and accepted["status"] == "queued"
    job_id = accepted["id"]
    job = http.get(f"/api/v1/jobs/{job_id}", headers=client.auth).json()
    assert job["kind"] == "backtest" and job["config"]["pairs"] == ["BTC/USDT"]
    assert job["strategy_version_id"] is not None
    assert [j["id"] for j in http.get("/api/v1/jobs", headers=client.auth).json()] == [job_id]
    result = http.get(f"/api/v1/jobs/{job_id}/result", headers=client.auth)
    assert result.status_code == 404 and "queued" in result.json()["detail"]
    cancelled = http.post(f"/api/v1/jobs/{job_id}/cancel", headers=client.auth)
    assert cancelled.status_code == 202 and cancelled.json()["status"] == "cancelled"
    again = http.post(f"/api/v1/jobs/{job_id}/cancel", headers=client.auth)
    assert again.status_code == 409


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"leverage": 10}, "unknown option 'leverage'; allowed: exchange, pairs"),
        ({"ccxt_config": {"urls": {}}}, "unknown option 'ccxt_config'"),
        ({"timerange": "20240201-20240101"}, "start must be before its end"),
        ({"timerange": "yesterday"}, "YYYYMMDD-YYYYMMDD"),
        ({"pairs": ["NOPE/USDT"]}, "unknown pair(s) on binance: NOPE/USDT"),
        ({"pairs": ["../../etc"]}, "is not of the form BASE/QUOTE"),
        ({"timeframe": "7m"}, "timeframe"),
        ({"epochs": 10}, "does not apply to backtest jobs"),
        ({"random_state": 42}, "option 'random_state' does not apply to backtest jobs"),
        ({"exchange": "kraken"}, "exchange"),
    ],
)
def test_bad_configs_are_refused_with_the_cause(
    http: TestClient, client: Client, change: dict[str, object], expected: str
) -> None:
    strategy_id = upload_strategy(client)
    response = _submit(
        http, client, kind="backtest", strategy_id=strategy_id, config={**CONFIG, **change}
    )
    assert response["status_code"] == 422, response
    assert expected in str(response["detail"]), response["detail"]
    assert http.get("/api/v1/jobs", headers=client.auth).json() == []


def test_missing_strategy_and_bad_kind(http: TestClient, client: Client) -> None:
    no_strategy = _submit(http, client, kind="backtest", config=CONFIG)
    assert no_strategy["status_code"] == 422 and "needs a strategy_id" in str(no_strategy["detail"])
    bad_kind = _submit(http, client, kind="mine-bitcoin", config=CONFIG)
    assert bad_kind["status_code"] == 422
    too_long = _submit(
        http,
        client,
        kind="backtest",
        strategy_id=upload_strategy(client),
        config=CONFIG,
        max_seconds=10**9,
    )
    assert too_long["status_code"] == 422
    assert "between 1 and 900 (your free trial's limit)" in str(too_long["detail"])


def test_download_data_needs_no_strategy(http: TestClient, client: Client) -> None:
    data_config = {k: CONFIG[k] for k in ("exchange", "pairs", "timeframe", "timerange")}
    accepted = _submit(http, client, kind="download-data", config=data_config)
    assert accepted["status_code"] == 202, accepted


def test_another_tenant_gets_404_on_everything(http: TestClient, client: Client) -> None:
    intruder = sign_up(http, "Intruder")
    job_id = _submit(
        http, client, kind="backtest", strategy_id=upload_strategy(client), config=CONFIG
    )["id"]
    for method, suffix in (
        ("GET", ""),
        ("GET", "/logs"),
        ("GET", "/result"),
        ("GET", "/params"),
        ("POST", "/cancel"),
    ):
        response = http.request(method, f"/api/v1/jobs/{job_id}{suffix}", headers=intruder.auth)
        assert response.status_code == 404, (method, suffix)
        assert response.headers["content-type"] == "application/problem+json"
    assert http.get("/api/v1/jobs", headers=intruder.auth).json() == []
    assert http.get(f"/api/v1/jobs/{job_id}", headers=client.auth).json()["status"] == "queued"


def test_only_an_ended_hyperopt_has_a_parameter_file(http: TestClient, client: Client) -> None:
    strategy_id = upload_strategy(client)
    backtest = _submit(http, client, kind="backtest", strategy_id=strategy_id, config=CONFIG)
    response = http.get(f"/api/v1/jobs/{backtest['id']}/params", headers=client.auth)
    assert response.status_code == 404
    assert "is a backtest job: only hyperopts have a parameter file" in response.json()["detail"]
    seeded = {**CONFIG, "epochs": 5, "random_state": 7}
    hyperopt = _submit(http, client, kind="hyperopt", strategy_id=strategy_id, config=seeded)
    assert hyperopt["status_code"] == 202, hyperopt
    job = http.get(f"/api/v1/jobs/{hyperopt['id']}", headers=client.auth).json()
    assert job["config"]["random_state"] == 7
    response = http.get(f"/api/v1/jobs/{hyperopt['id']}/params", headers=client.auth)
    assert response.status_code == 409
    assert "its parameter file appears when it succeeds" in response.json()["detail"]
    http.post(f"/api/v1/jobs/{hyperopt['id']}/cancel", headers=client.auth)
    response = http.get(f"/api/v1/jobs/{hyperopt['id']}/params", headers=client.auth)
    assert response.status_code == 404
    assert "ended cancelled without a parameter file" in response.json()["detail"]


def test_a_strategy_used_by_a_job_keeps_its_code_after_delete(
    http: TestClient, client: Client
) -> None:
    strategy_id = upload_strategy(client)
    job_id = _submit(http, client, kind="backtest", strategy_id=strategy_id, config=CONFIG)["id"]
    assert http.delete(f"/api/v1/strategies/{strategy_id}", headers=client.auth).status_code == 204
    job = http.get(f"/api/v1/jobs/{job_id}", headers=client.auth).json()
    assert job["strategy_version_id"] is not None
    gone = _submit(http, client, kind="backtest", strategy_id=strategy_id, config=CONFIG)
    assert gone["status_code"] == 404
