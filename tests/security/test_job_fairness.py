"""Free accounts cannot starve paying ones: two trial tenants whose strategy sleeps at import
try to hold the whole job pool, and a paying tenant's job still starts within seconds.

Runs through the real portal API, worker, socket proxy and hardened freqtrade containers
(the sandbox's worker has a pool of two slots).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.integration.strategies import source
from tests.support.api import Client, sign_up, subscribe
from tests.support.sandbox import Sandbox

pytestmark = pytest.mark.docker

BACKTEST = {
    "exchange": "binance",
    "pairs": ["BTC/USDT"],
    "timeframe": "5m",
    "timerange": "20240101-20240105",
}
DOWNLOAD = {**BACKTEST, "timerange": "20240101-20240102"}
FINAL = {"succeeded", "failed", "cancelled", "timed_out", "oom_killed"}


def _job(client: Client, job_id: str) -> dict[str, Any]:
    response = client.http.get(f"/api/v1/jobs/{job_id}", headers=client.auth)
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    return job


def _submit(client: Client, body: dict[str, Any]) -> Any:
    return client.http.post("/api/v1/jobs", json=body, headers=client.auth)


@pytest.fixture
def hogs(http: TestClient, sandbox: Sandbox) -> Iterator[list[tuple[Client, str]]]:
    """Trial tenants' sleeping jobs; all cancelled, and gone, at the end."""
    jobs: list[tuple[Client, str]] = []
    yield jobs
    for client, job_id in jobs:
        client.http.post(f"/api/v1/jobs/{job_id}/cancel", headers=client.auth)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if all(_job(client, job_id)["status"] in FINAL for client, job_id in jobs):
            return
        time.sleep(1)
    pytest.fail("the sleeping trial jobs were not all cancelled within 120 s")


def test_a_paying_job_starts_within_seconds_while_two_trials_hog_the_pool(
    http: TestClient, sandbox: Sandbox, hogs: list[tuple[Client, str]]
) -> None:
    trials = [sign_up(http, "Hog"), sign_up(http, "Hog")]
    paying = subscribe(sign_up(http, "Paying"))
    for client in (*trials, paying):
        sandbox.forget_tenant(client.tenant_id)

    for trial in trials:
        uploaded = http.post(
            "/api/v1/strategies",
            json={"name": "Sleeper", "source": source("Sleeper")},
            headers=trial.auth,
        )
        assert uploaded.status_code == 201, uploaded.text
        body = {"kind": "backtest", "strategy_id": uploaded.json()["id"], "config": BACKTEST}
        # As many as a trial may queue (two waiting, one more once the worker took one).
        accepted = 0
        while (response := _submit(trial, body)).status_code == 202:
            hogs.append((trial, str(response.json()["id"])))
            accepted += 1
            assert accepted <= 3, "a trial queues two jobs and runs one at most"
        assert response.status_code == 429, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert accepted >= 2, response.text

    deadline = time.monotonic() + 120
    while not any(_job(client, job_id)["status"] == "running" for client, job_id in hogs):
        assert time.monotonic() < deadline, "no sleeping trial job started within 120 s"
        time.sleep(0.5)

    response = _submit(paying, {"kind": "download-data", "config": DOWNLOAD})
    assert response.status_code == 202, response.text
    paying_job = str(response.json()["id"])
    submitted = time.monotonic()
    while (status := _job(paying, paying_job)["status"]) == "queued":
        running_trials = [j for c, j in hogs if _job(c, j)["status"] in {"starting", "running"}]
        assert len(running_trials) <= 1, "trials together hold at most half of the pool"
        waited = time.monotonic() - submitted
        assert waited < 15, f"the paying job still waits after {waited:.0f} s"
        time.sleep(0.5)
    assert status != "failed", _job(paying, paying_job)

    deadline = time.monotonic() + 180
    while (job := _job(paying, paying_job))["status"] not in FINAL:
        assert time.monotonic() < deadline, job
        time.sleep(1)
    assert job["status"] == "succeeded", job
    statuses = [_job(client, job_id)["status"] for client, job_id in hogs]
    assert statuses.count("running") + statuses.count("starting") == 1, statuses
