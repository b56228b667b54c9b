"""The worker's Prometheus endpoint, read over HTTP as Prometheus scrapes it: each line in the
exposition format, and the figures the database holds (queues, jobs' outcomes and durations,
bots, heartbeats, billing alerts, refused webhooks)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from fta.audit import service as audit
from fta.billing.alerts import service as alerts
from fta.bots.models import ActualState, Bot, DesiredState
from fta.db import session_scope, utcnow
from fta.gateway.metrics import CacheCounts, GatewayMetrics
from fta.jobs.models import Job, JobStatus
from fta.operators.operations import record_heartbeat
from fta.prometheus import render
from fta.worker.metrics_server import serve_metrics
from tests.integration.strategies import source
from tests.support.api import Client, leave_nothing_waiting, sign_up, subscribe
from tests.support.jobs import running_job
from tests.support.stack import REPO

# name{labels} value, as the text exposition format writes a sample.
SAMPLE = re.compile(r'[a-z_]+(\{([a-z_]+="[^"\\]*",?)*\})? -?[0-9.e+]+|[a-z_]+\{[^}]*\} \+Inf')


@pytest.fixture
def client(http: TestClient) -> Iterator[Client]:
    client = subscribe(sign_up(http, "Measured"))
    yield client
    leave_nothing_waiting(client)


@pytest.fixture
def metrics_url() -> Iterator[str]:
    server = serve_metrics(0, host="127.0.0.1")
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def scrape(url: str) -> dict[str, float]:
    answer = httpx.get(f"{url}/metrics", timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for line in answer.text.splitlines():
        if line.startswith("#"):
            assert re.fullmatch(r"# (HELP|TYPE) [a-z_]+ .+", line), line
            continue
        assert SAMPLE.fullmatch(line), line
        name, value = line.rsplit(" ", 1)
        samples[name] = float(value)
    return samples


def test_the_metrics_tell_what_the_database_holds(
    client: Client, http: TestClient, metrics_url: str
) -> None:
    tenant = client.tenant_id
    now = utcnow()
    running_job(tenant)
    with session_scope() as session:
        for seconds, status in ((20, JobStatus.SUCCEEDED), (400, JobStatus.FAILED)):
            session.add(
                Job(
                    tenant_id=tenant,
                    kind="hyperopt",
                    status=status,
                    config={},
                    max_seconds=3600,
                    started_at=now - timedelta(seconds=seconds + 5),
                    finished_at=now - timedelta(seconds=5),
                )
            )
    strategy = http.post(
        "/api/v1/strategies",
        json={"name": "Quick", "source": source("Quick")},
        headers=client.auth,
    ).json()["id"]
    before = scrape(metrics_url)
    bot = http.post(
        "/api/v1/bots",
        json={
            "name": "gauged",
            "strategy_id": strategy,
            "config": {
                "exchange": "binance",
                "pairs": ["BTC/USDT"],
                "timeframe": "5m",
                "stake_amount": 100,
                "max_open_trades": 1,
                "dry_run_wallet": 1000,
            },
        },
        headers=client.auth,
    ).json()["id"]
    worker = f"worker-metrics-{uuid.uuid4().hex[:6]}"
    key = f"test:{uuid.uuid4().hex}"
    with session_scope() as session:
        row = session.get(Bot, uuid.UUID(bot))
        assert row is not None
        row.desired_state, row.actual_state = DesiredState.RUNNING, ActualState.CRASHED
        record_heartbeat(
            session,
            worker,
            started_at=now - timedelta(minutes=5),
            docker_error=None,
            containers=3,
            jobs_in_flight=1,
            gateway_error="ConnectError: refused",
            now=now - timedelta(seconds=30),
        )
        alerts.raise_alert(session, key=key, kind="test-metrics", message="a stuck item", now=now)
        audit.record(session, actor="paypal", action="billing.webhook_refused", target="bad")

    seen = scrape(metrics_url)
    assert seen[f'fta_jobs_running{{tenant="{tenant}"}}'] == 1
    assert seen[f'fta_jobs_queued{{tenant="{tenant}"}}'] == 0
    hyperopt = 'kind="hyperopt"'
    assert seen[f'fta_job_duration_seconds_bucket{{{hyperopt},le="+Inf"}}'] >= 2
    assert seen[f'fta_job_duration_seconds_bucket{{{hyperopt},le="30"}}'] >= 1
    assert (
        seen[f'fta_job_duration_seconds_bucket{{{hyperopt},le="300"}}']
        < seen[f'fta_job_duration_seconds_bucket{{{hyperopt},le="900"}}']
    )
    assert seen[f'fta_jobs_finished_total{{{hyperopt},status="failed"}}'] >= 1
    assert seen["fta_bots_crashed"] - before["fta_bots_crashed"] == 1
    assert seen["fta_bots_wanted_running"] - before["fta_bots_wanted_running"] == 1
    assert 29 <= seen[f'fta_worker_heartbeat_age_seconds{{worker="{worker}"}}'] < 120
    assert seen[f'fta_worker_docker_up{{worker="{worker}"}}'] == 1
    assert seen[f'fta_worker_gateway_up{{worker="{worker}"}}'] == 0
    assert seen['fta_billing_alerts_open{kind="test-metrics",blocking="false"}'] >= 1
    assert (
        seen["fta_paypal_webhooks_refused_total"] - before["fta_paypal_webhooks_refused_total"] == 1
    )
    with session_scope() as session:
        alerts.settle(session, key, utcnow())


def test_only_metrics_are_served(metrics_url: str) -> None:
    assert httpx.get(f"{metrics_url}/", timeout=10).status_code == 404
    assert httpx.get(f"{metrics_url}/metrics/../etc", timeout=10).status_code == 404


def test_every_alert_rule_reads_metrics_the_worker_or_the_gateway_serves(
    metrics_url: str,
) -> None:
    rules = yaml.safe_load((REPO / "deploy" / "prometheus" / "fta-rules.yml").read_text())
    served = set()
    gateway = render(GatewayMetrics().families({"binance": CacheCounts()}, 0))
    worker = httpx.get(f"{metrics_url}/metrics", timeout=30).text
    for line in (worker + gateway).splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            served |= {name} | (
                {f"{name}_{s}" for s in ("bucket", "sum", "count")}
                if kind == "histogram"
                else set()
            )
    for rule in rules["groups"][0]["rules"]:
        used = set(re.findall(r"\bfta_[a-z_]+", rule["expr"]))
        assert used <= served, f"{rule['alert']} reads {sorted(used - served)}"
        assert rule["annotations"]["summary"]
