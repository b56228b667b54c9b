"""Filling the shared candle cache stays inside the job that caused it: bounded by that job's
time, cancellable with it, metered to its tenant, and never holding another tenant's job that
needs other pairs.

The attack as it was done: a job with `max_seconds: 5` asked for years of 1-minute candles;
the fill ran 111 s past the job's limit, ignored the cancel, was not metered, and held a lock
on the whole timeframe that kept another tenant's job waiting 126 s. Through the real API,
worker, gateway and containers.
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

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

FINAL = {"succeeded", "failed", "cancelled", "timed_out", "oom_killed"}
# Years of 1-minute candles: thousands of requests to the gateway, minutes of filling.
HUGE = {
    "exchange": "binance",
    "pairs": ["XRP/USDT"],
    "timeframe": "1m",
    "timerange": "20180101-20240101",
}
SMALL_OTHER_PAIR = {**HUGE, "pairs": ["ADA/USDT"], "timerange": "20240101-20240102"}


class Jobs:
    def __init__(self, http: TestClient) -> None:
        self.http = http
        self.submitted: list[tuple[Client, str]] = []

    def submit(self, client: Client, config: dict[str, Any], **extra: Any) -> str:
        strategy = self.http.post(
            "/api/v1/strategies",
            json={"name": "EnterNow", "source": source("EnterNow")},
            headers=client.auth,
        )
        assert strategy.status_code in (201, 409), strategy.text
        strategies = self.http.get("/api/v1/strategies", headers=client.auth).json()
        strategy_id = next(s["id"] for s in strategies if s["name"] == "EnterNow")
        body = {"kind": "backtest", "strategy_id": strategy_id, "config": config, **extra}
        response = self.http.post("/api/v1/jobs", json=body, headers=client.auth)
        assert response.status_code == 202, response.text
        job_id = str(response.json()["id"])
        self.submitted.append((client, job_id))
        return job_id

    def get(self, client: Client, job_id: str) -> dict[str, Any]:
        job: dict[str, Any] = self.http.get(f"/api/v1/jobs/{job_id}", headers=client.auth).json()
        return job

    def wait(self, client: Client, job_id: str, statuses: set[str], timeout: float) -> float:
        """Seconds until the job reached one of `statuses`."""
        start = time.monotonic()
        while (job := self.get(client, job_id))["status"] not in statuses:
            assert job["status"] not in FINAL, job
            if time.monotonic() - start > timeout:
                pytest.fail(f"job still {job['status']} after {timeout} s: {job}")
            time.sleep(0.5)
        return time.monotonic() - start


@pytest.fixture
def jobs(http: TestClient) -> Iterator[Jobs]:
    made = Jobs(http)
    yield made
    for client, job_id in made.submitted:
        if made.get(client, job_id)["status"] not in FINAL:
            http.post(f"/api/v1/jobs/{job_id}/cancel", headers=client.auth)
    for client, job_id in made.submitted:
        deadline = time.monotonic() + 120
        while made.get(client, job_id)["status"] not in FINAL and time.monotonic() < deadline:
            time.sleep(1)


def _paying(http: TestClient, sandbox: Sandbox, name: str) -> Client:
    client = subscribe(sign_up(http, name))
    sandbox.forget_tenant(client.tenant_id)
    return client


def test_a_fill_ends_with_its_jobs_time_and_is_metered(
    http: TestClient, sandbox: Sandbox, jobs: Jobs
) -> None:
    client = _paying(http, sandbox, "Filler")
    job_id = jobs.submit(client, HUGE, max_seconds=5)
    jobs.wait(client, job_id, FINAL, timeout=90)
    job = jobs.get(client, job_id)
    assert job["status"] == "timed_out", job
    assert "while its market data was being prepared" in job["error"]
    assert float(job["usage"]["cpu_seconds"]) > 0, job["usage"]
    assert float(job["usage"]["run_seconds"]) > 0, job["usage"]


def test_a_long_fill_holds_no_other_pairs_job_and_stops_when_cancelled(
    http: TestClient, sandbox: Sandbox, jobs: Jobs
) -> None:
    filler, other = _paying(http, sandbox, "Filler"), _paying(http, sandbox, "Other")
    long_fill = jobs.submit(filler, {**HUGE, "pairs": ["DOGE/USDT"]}, max_seconds=600)
    jobs.wait(filler, long_fill, {"running"}, timeout=120)

    # Same exchange and timeframe, another pair: served beside the fill, not after it.
    quick = jobs.submit(other, SMALL_OTHER_PAIR)
    jobs.wait(other, quick, FINAL, timeout=240)
    finished = jobs.get(other, quick)
    assert finished["status"] == "succeeded", finished
    assert jobs.get(filler, long_fill)["status"] == "running", "the fill was still going on"

    cancel = http.post(f"/api/v1/jobs/{long_fill}/cancel", headers=filler.auth)
    assert cancel.status_code == 202, cancel.text
    waited = jobs.wait(filler, long_fill, FINAL, timeout=60)
    assert jobs.get(filler, long_fill)["status"] == "cancelled"
    assert waited < 15, f"the fill took {waited:.0f} s to honour the cancel"
