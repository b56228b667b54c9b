"""A paying client's wait for a job slot while two trial accounts try to hold the whole pool.

Boots what the security suite uses (a migrated throwaway database, the real socket proxy, the
market-data gateway and a worker with a pool of two job slots driving hardened freqtrade
containers), then in each round: two trial accounts queue backtests of a strategy that sleeps
at import (each job held to --hog-seconds of wall time), and once one of them runs, a paying
client submits a small download-data job. Measured: seconds from its submission until the
worker claims it, and until it succeeds (both from the submission).

Two configurations, alternating: as shipped (trial bounds and the trials' half of the pool),
and with the trial bounds lifted to the plan's (two jobs at once each, ten waiting, the whole
pool), which is how the pool was shared before. The least-served-first pick is on in both:
before, slots went oldest-job-first, so the paying job also waited for the hogs' older queued
jobs; the "lifted" figure is a lower bound of that wait.

Run from the repository root, with the test database of `make testdb` and the images built:
    source .cache/test-postgres/env && .venv/bin/python -m bench.job_fairness [--rounds 3]
Prints a Markdown report to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from tests.integration.strategies import source
from tests.support.api import Client, sign_up, subscribe
from tests.support.database import migrated_database
from tests.support.docker_resources import DockerResources, local_docker
from tests.support.sandbox import running_sandbox
from tests.support.socket_proxy import GATEWAY_CONTAINER, running_socket_proxy
from tests.support.tenant_disks import TEST_DISK_ROOT, running_tenant_disk_helper

CONFIGURATIONS: dict[str, dict[str, str]] = {
    "trial bounds (as shipped)": {},
    "trial bounds lifted (before)": {
        "FTA_TRIAL_MAX_CONCURRENT_JOBS": "2",
        "FTA_TRIAL_MAX_QUEUED_JOBS": "10",
        "FTA_TRIAL_JOB_SLOTS_PERCENT": "100",
    },
}
BACKTEST = {
    "exchange": "binance",
    "pairs": ["BTC/USDT"],
    "timeframe": "5m",
    "timerange": "20240101-20240105",
}
DOWNLOAD = {**BACKTEST, "timerange": "20240101-20240102"}
FINAL = {"succeeded", "failed", "cancelled", "timed_out", "oom_killed"}


@dataclass(frozen=True)
class Run:
    configuration: str
    claimed_after: float
    succeeded_after: float
    hogs_running: int


def _job(client: Client, job_id: str) -> dict[str, Any]:
    job: dict[str, Any] = client.http.get(f"/api/v1/jobs/{job_id}", headers=client.auth).json()
    return job


def _wait(client: Client, job_id: str, done: set[str], timeout: float) -> tuple[str, float]:
    start = time.monotonic()
    while (status := _job(client, job_id)["status"]) not in done:
        if time.monotonic() - start > timeout:
            raise RuntimeError(f"job {job_id} still {status} after {timeout} s")
        time.sleep(0.2)
    return status, time.monotonic() - start


def _configure(env: dict[str, str]) -> None:
    from fta.settings import get_settings

    for name in CONFIGURATIONS["trial bounds lifted (before)"]:
        os.environ.pop(name, None)
    os.environ.update(env)
    get_settings.cache_clear()


def _round(http: TestClient, tenants: set[str], configuration: str, hog_seconds: int) -> Run:
    _configure(CONFIGURATIONS[configuration])
    hogs = [sign_up(http, "Hog"), sign_up(http, "Hog")]
    paying = subscribe(sign_up(http, "Paying"))
    tenants.update(client.tenant_id for client in (*hogs, paying))
    hog_jobs: list[tuple[Client, str]] = []
    try:
        for hog in hogs:
            strategy = http.post(
                "/api/v1/strategies",
                json={"name": "Sleeper", "source": source("Sleeper")},
                headers=hog.auth,
            ).json()["id"]
            body = {
                "kind": "backtest",
                "strategy_id": strategy,
                "config": BACKTEST,
                "max_seconds": hog_seconds,
            }
            for _ in range(3):
                response = http.post("/api/v1/jobs", json=body, headers=hog.auth)
                if response.status_code == 202:
                    hog_jobs.append((hog, str(response.json()["id"])))
        deadline = time.monotonic() + 120
        while not any(_job(c, j)["status"] == "running" for c, j in hog_jobs):
            if time.monotonic() > deadline:
                raise RuntimeError("no hog started within 120 s")
            time.sleep(0.2)
        time.sleep(2)  # the worker has claimed what it will claim for the hogs
        hogs_running = sum(_job(c, j)["status"] in {"starting", "running"} for c, j in hog_jobs)
        response = http.post(
            "/api/v1/jobs", json={"kind": "download-data", "config": DOWNLOAD}, headers=paying.auth
        )
        job_id = str(response.json()["id"])
        _, claimed = _wait(paying, job_id, FINAL | {"starting", "running"}, hog_seconds * 4)
        status, then_succeeded = _wait(paying, job_id, FINAL, 300)
        succeeded = claimed + then_succeeded
        if status != "succeeded":
            raise RuntimeError(f"the paying job ended {status}: {_job(paying, job_id)}")
        return Run(configuration, claimed, succeeded, hogs_running)
    finally:
        for client, job_id in hog_jobs:
            http.post(f"/api/v1/jobs/{job_id}/cancel", headers=client.auth)
        for client, job_id in hog_jobs:
            _wait(client, job_id, FINAL, 120)


@contextmanager
def _platform() -> Iterator[tuple[TestClient, set[str]]]:
    """The suite's world: database, socket proxy, gateway and worker (pool of two)."""
    from tests.support.docker_resources import TEST_INSTANCE

    from fta.db import get_engine, get_sessionmaker
    from fta.portal.app import create_app
    from fta.settings import get_settings

    with ExitStack() as stack:
        database = stack.enter_context(migrated_database())
        os.environ.update(
            FTA_MODE="test",
            FTA_DATABASE_URL=database.runtime_url,
            FTA_SECRET_KEY=os.urandom(32).hex(),
            FTA_AUDIT_KEY=os.urandom(32).hex(),
            FTA_INSTANCE=TEST_INSTANCE,
            FTA_SIGNUP_MAX_PER_IP="10000",
        )
        for cached in (get_settings, get_engine, get_sessionmaker):
            cached.cache_clear()
        disks = stack.enter_context(running_tenant_disk_helper(TEST_DISK_ROOT))
        os.environ.update(FTA_TENANT_DISK_ROOT=disks.root, FTA_TENANT_DISK_SOCKET=disks.socket)
        engine = local_docker()
        resources = DockerResources(engine)
        stack.callback(engine.close)
        stack.callback(resources.cleanup)
        proxy = stack.enter_context(
            running_socket_proxy(resources, gateway_container=GATEWAY_CONTAINER)
        )
        sandbox = stack.enter_context(running_sandbox(proxy))
        http = stack.enter_context(TestClient(create_app(), raise_server_exceptions=False))
        yield http, sandbox.tenants
        get_engine().dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hog-seconds", type=int, default=60)
    args = parser.parse_args()
    runs: list[Run] = []
    names = list(CONFIGURATIONS)
    with _platform() as (http, tenants):
        for round_number in range(args.rounds):
            for name in names if round_number % 2 == 0 else list(reversed(names)):
                print(f"round {round_number + 1}: {name}", file=sys.stderr)
                run = _round(http, tenants, name, args.hog_seconds)
                print(f"  {run}", file=sys.stderr)
                runs.append(run)

    print(
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} CPUs "
        f"({platform.machine()}, Linux {platform.release()}); {args.rounds} rounds; a pool of "
        f"two job slots; hog jobs held to {args.hog_seconds} s each.\n"
    )
    print(
        "| configuration | hog jobs running | paying job claimed after (s) | "
        "succeeded after (s) | claim wait / as shipped |"
    )
    print("|---|---|---|---|---|")
    shipped = statistics.median(r.claimed_after for r in runs if r.configuration == names[0])
    for name in names:
        mine = [run for run in runs if run.configuration == name]
        claimed = statistics.median(run.claimed_after for run in mine)
        succeeded = statistics.median(run.succeeded_after for run in mine)
        running = max(run.hogs_running for run in mine)
        print(
            f"| {name} | {running} | {claimed:.1f} | {succeeded:.1f} | {claimed / shipped:.0f}× |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
