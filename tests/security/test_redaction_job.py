"""A real job that prints every secret shape on stdout and stderr and then fails to import on
an exception that holds one: its stored log and its `error` field (built from that exception),
as the tenant reads them through the API, show none."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fta.redaction import MASK
from tests.security.test_redaction_paths import SECRETS, assert_no_secret
from tests.support.api import sign_up
from tests.support.sandbox import Sandbox

pytestmark = pytest.mark.docker

BACKTEST = {
    "exchange": "binance",
    "pairs": ["BTC/USDT"],
    "timeframe": "5m",
    "timerange": "20240101-20240103",
    "stake_amount": 100,
    "max_open_trades": 1,
}

STRATEGY = '''
"""Prints secret-shaped strings at import, then fails to import on one."""

import sys

from freqtrade.strategy import IStrategy

LINES = {lines!r}
for number, text in enumerate(LINES):
    print(text, file=sys.stderr if number % 2 else sys.stdout, flush=True)
raise ImportError({last!r})


class LeakyLogger(IStrategy):
    timeframe = "5m"
    minimal_roi = {{"0": 0.01}}
    stoploss = -0.1
'''


def test_job_log_and_error_carry_no_secret(http: TestClient, sandbox: Sandbox) -> None:
    client = sign_up(http, "Leaky")
    sandbox.forget_tenant(client.tenant_id)
    # Short enough for freqtrade's console not to fold the line that names the cause: the
    # job's `error` field is then built from the exception message.
    last = next(secret for secret in SECRETS if secret.name == "aws key id")
    source = STRATEGY.format(lines=[secret.text for secret in SECRETS], last=last.text)
    strategy = http.post(
        "/api/v1/strategies",
        json={"name": "LeakyLogger", "source": source},
        headers=client.auth,
    )
    assert strategy.status_code == 201, strategy.text
    submitted = http.post(
        "/api/v1/jobs",
        json={"kind": "backtest", "strategy_id": strategy.json()["id"], "config": BACKTEST},
        headers=client.auth,
    )
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]

    deadline = time.monotonic() + 180
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = http.get(f"/api/v1/jobs/{job_id}", headers=client.auth).json()
        if job["status"] not in ("queued", "starting", "running"):
            break
        time.sleep(0.5)
    logs = http.get(f"/api/v1/jobs/{job_id}/logs", headers=client.auth).text

    assert job["status"] == "failed", (job, logs[-2000:])
    assert "from the vault" in logs and logs.count(MASK) >= len(SECRETS), logs[-2000:]
    assert_no_secret(logs)
    assert job["error"] and MASK in job["error"], job["error"]
    assert_no_secret(job["error"])
