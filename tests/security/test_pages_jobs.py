"""The jobs pages answer for the signed-in tenant's own jobs only: another tenant's job page,
log stream, downloads, comparison and cancel answer 404; no form is accepted without this
browser's CSRF token; live log streams count against the same per-tenant bound as the API's."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from fta.db import session_scope
from fta.jobs import service as jobs
from fta.jobs.models import Job, JobStatus
from fta.jobs.summary import DataFingerprint, HyperoptSummary, ParameterFile
from fta.portal.views.jobs import FOLLOW_RETRY_MS
from fta.settings import get_settings
from tests.support.api import Client, leave_nothing_waiting, sign_up, upload_strategy
from tests.support.browser import LivePortal
from tests.support.page_client import form_token, logged_in

CONFIG = {
    "exchange": "binance",
    "pairs": ["BTC/USDT"],
    "timeframe": "5m",
    "timerange": "20240101-20240103",
    "stake_amount": 100,
    "max_open_trades": 1,
}
PARAMETER_FILE = {
    "strategy_name": "Quick",
    "params": {"buy": {"buy_rsi": 30}},
    "ft_stratparam_v": 1,
    "export_time": "2024-01-03 00:00:00+00:00",
}
SUMMARY = HyperoptSummary(
    kind="hyperopt",
    strategy="Quick",
    hyperopt_loss="SharpeHyperOptLoss",
    epochs=1,
    best_epoch=1,
    loss=Decimal("-1.5"),
    trades=3,
    profit_total_pct=Decimal("0.25"),
    profit_total_abs=Decimal("2.5"),
    max_drawdown_pct=Decimal("0.1"),
    params={"buy": {"buy_rsi": Decimal(30)}},
    data=DataFingerprint(sha256="0" * 64, startup_candles=0, pairs=[]),
    random_state=7,
    job_workers=1,
    parameter_file=ParameterFile.model_validate(PARAMETER_FILE),
)


def _submitted(client: Client, strategy_id: str) -> str:
    body = {"kind": "hyperopt", "strategy_id": strategy_id, "config": CONFIG}
    response = client.http.post("/api/v1/jobs", json=body, headers=client.auth)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def _finished_with_output(job_id: str) -> None:
    """As the worker leaves a succeeded hyperopt: its result, parameter file and epochs file."""
    with session_scope() as session:
        job = session.get_one(Job, uuid.UUID(job_id))
        jobs.advance(job, JobStatus.STARTING)
        jobs.advance(job, JobStatus.RUNNING, container_id="c" * 64)
        jobs.append_log(session, job.id, 1, "freqtrade 2026.9\n")
        jobs.advance(job, JobStatus.SUCCEEDED, exit_code=0)
        jobs.store_archive(session, job.id, "strategy_Quick.fthypt", b'{"current_epoch": 1}\n')
        jobs.store_result(session, job.id, SUMMARY)


@pytest.fixture
def owner(http: TestClient) -> Iterator[Client]:
    client = sign_up(http, "Owner")
    yield client
    leave_nothing_waiting(client)


def test_another_tenants_job_is_not_found_on_every_page(
    http: TestClient, live_portal: LivePortal, owner: Client
) -> None:
    strategy_id = upload_strategy(owner)
    finished, waiting = _submitted(owner, strategy_id), _submitted(owner, strategy_id)
    _finished_with_output(finished)
    intruder = sign_up(http, "Intruder")
    paths = [
        f"/app/jobs/{finished}",
        f"/app/jobs/{finished}/logs/stream",
        f"/app/jobs/{waiting}/logs/stream",
        f"/app/jobs/{finished}/logs.txt",
        f"/app/jobs/{finished}/archive",
        f"/app/jobs/{finished}/params",
        f"/app/jobs/new?from={finished}",
        f"/app/jobs/compare?a={finished}&b={finished}",
    ]
    with logged_in(live_portal, owner.email, owner.password) as mine:
        for path in paths[:-1]:
            if path.endswith("/logs/stream"):
                continue
            assert mine.get(path).status_code == 200, path
        archive = mine.get(f"/app/jobs/{finished}/archive")
        assert archive.headers["content-disposition"].startswith("attachment;")
        assert archive.headers["content-type"] == "application/octet-stream"
    with logged_in(live_portal, intruder.email, intruder.password) as theirs:
        for path in paths:
            answer = theirs.get(path)
            assert answer.status_code == 404, path
            assert answer.headers["content-type"].startswith("text/html"), path
            assert "Page introuvable" in answer.text
            assert "freqtrade 2026.9" not in answer.text and "buy_rsi" not in answer.text
        token = form_token(theirs, "/app/jobs")
        cancel = theirs.post(f"/app/jobs/{waiting}/cancel", data={"csrf_token": token})
        assert cancel.status_code == 404
        # Their list shows none of it.
        assert finished not in theirs.get("/app/jobs").text
    got = http.get(f"/api/v1/jobs/{waiting}", headers=owner.auth).json()
    assert got["status"] == "queued" and not got["cancel_requested"]


def test_job_forms_without_the_browsers_token_are_refused(
    live_portal: LivePortal, owner: Client
) -> None:
    strategy_id = upload_strategy(owner)
    waiting = _submitted(owner, strategy_id)
    form = {
        "kind": "backtest",
        "strategy_id": strategy_id,
        "exchange": "binance",
        "pairs": "BTC/USDT",
        "timeframe": "5m",
        "start": "2024-01-01",
        "end": "2024-01-03",
    }
    with logged_in(live_portal, owner.email, owner.password) as browser:
        token = form_token(browser, "/app/jobs/new")
        for path, data in [(f"/app/jobs/{waiting}/cancel", {}), ("/app/jobs/new", form)]:
            for sent, headers in [
                (data, {}),
                ({**data, "csrf_token": "0" * 64}, {}),
                ({**data, "csrf_token": token}, {"Sec-Fetch-Site": "cross-site"}),
            ]:
                refused = browser.post(path, data=sent, headers=headers)
                assert refused.status_code == 403, (path, headers)
                assert refused.headers["content-type"].startswith("text/html")
        jobs_now = owner.http.get("/api/v1/jobs", headers=owner.auth).json()
        assert [(job["id"], job["status"]) for job in jobs_now] == [(waiting, "queued")]
        # With the token the same cancel goes through.
        accepted = browser.post(f"/app/jobs/{waiting}/cancel", data={"csrf_token": token})
        assert accepted.status_code == 303
        assert accepted.headers["location"] == f"/app/jobs/{waiting}"
    cancelled = owner.http.get(f"/api/v1/jobs/{waiting}", headers=owner.auth).json()
    assert cancelled["status"] == "cancelled"


def test_a_tenants_page_streams_count_against_its_stream_bound(
    live_portal: LivePortal, owner: Client
) -> None:
    waiting = _submitted(owner, upload_strategy(owner))
    bound = get_settings().log_streams_per_tenant
    stream = f"/app/jobs/{waiting}/logs/stream"
    with logged_in(live_portal, owner.email, owner.password) as browser:
        with ExitStack() as held:
            # Each stream's reader is kept: dropping one closes its connection.
            readers = []
            for _ in range(bound):
                opened = held.enter_context(browser.stream("GET", stream))
                assert opened.status_code == 200
                assert opened.headers["content-type"].startswith("text/event-stream")
                lines = opened.iter_lines()
                readers.append(lines)
                assert next(lines) == f"retry: {FOLLOW_RETRY_MS}"
                assert [next(lines) for _ in range(3)] == ["", "event: status", "data: queued"]
            refused = browser.get(stream, timeout=10)
            assert refused.status_code == 429
            assert int(refused.headers["retry-after"]) > 0
            assert refused.headers["content-type"].startswith("text/html")
        # Closed streams give their places back as soon as the server sees them gone.
        deadline = time.monotonic() + 15
        while True:
            with browser.stream("GET", stream) as again:
                if again.status_code == 200:
                    break
            assert time.monotonic() < deadline, "closed streams kept their places"
            time.sleep(0.5)
