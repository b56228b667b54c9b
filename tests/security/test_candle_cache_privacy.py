"""The shared candle cache does not tell one tenant the days another backtested.

The attack as it was done: the cache, mounted read-only in every backtest, held exactly the
range each job asked for, so a tenant's strategy could read when and what others tested.
Fills now cover whole calendar months: a strategy that reads every file of the cache sees,
for the victim's pair, a month, not the victim's three days. Through the real API, worker,
gateway and freqtrade containers.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.integration.strategies import source as ordinary_source
from tests.security.strategies import source as hostile_source
from tests.support.api import Client, sign_up, subscribe
from tests.support.sandbox import Sandbox

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

FINAL = {"succeeded", "failed", "cancelled", "timed_out", "oom_killed"}
# A pair and timeframe no other test of the suite asks for.
VICTIMS_BACKTEST = {
    "exchange": "binance",
    "pairs": ["BNB/USDT"],
    "timeframe": "1h",
    "timerange": "20240110-20240113",
}
SNOOPERS_BACKTEST = {**VICTIMS_BACKTEST, "pairs": ["SOL/USDT"], "timerange": "20240201-20240203"}


def _run(http: TestClient, client: Client, name: str, code: str, config: dict[str, Any]) -> str:
    strategy = http.post(
        "/api/v1/strategies", json={"name": name, "source": code}, headers=client.auth
    )
    assert strategy.status_code == 201, strategy.text
    body = {"kind": "backtest", "strategy_id": strategy.json()["id"], "config": config}
    response = http.post("/api/v1/jobs", json=body, headers=client.auth)
    assert response.status_code == 202, response.text
    job_id = str(response.json()["id"])
    deadline = time.monotonic() + 300
    while (job := http.get(f"/api/v1/jobs/{job_id}", headers=client.auth).json())[
        "status"
    ] not in FINAL:
        assert time.monotonic() < deadline, job
        time.sleep(1)
    logs = http.get(f"/api/v1/jobs/{job_id}/logs", headers=client.auth).text
    assert job["status"] == "succeeded", (job, logs[-3000:])
    return logs


def test_the_cache_shows_whole_months_not_the_days_another_tenant_tested(
    http: TestClient, sandbox: Sandbox
) -> None:
    victim, snooper = subscribe(sign_up(http, "Victim")), subscribe(sign_up(http, "Snooper"))
    for client in (victim, snooper):
        sandbox.forget_tenant(client.tenant_id)
    _run(http, victim, "EnterNow", ordinary_source("EnterNow"), VICTIMS_BACKTEST)

    logs = _run(http, snooper, "CacheSnooper", hostile_source("CacheSnooper"), SNOOPERS_BACKTEST)
    seen = {
        report["file"]: report
        for report in (
            json.loads(line.removeprefix("PROBE "))
            for line in logs.splitlines()
            if line.startswith("PROBE {")
        )
    }
    victims_file = seen.get("BNB_USDT-1h.feather")
    assert victims_file is not None, sorted(seen)
    # The month, from its first candle; the end follows the month (downloads go by pages of
    # candles from the start, so nothing of the victim's days shows there either).
    assert victims_file["first"].startswith("2024-01-01 00:00:00"), victims_file
    assert victims_file["last"] >= "2024-01-31 23:00:00", victims_file
