"""Helpers to run jobs through the REST API as a client would, and wait for them."""

from __future__ import annotations

import contextlib
import time
import uuid
from typing import Any

import docker
import pytest

from fta.db import session_scope
from fta.jobs import service as jobs
from fta.jobs.models import Job, JobStatus
from fta.runtime.spec import LABEL_HANDOFF, LABEL_TENANT
from tests.support.api import Client

ENDED = frozenset({"succeeded", "failed", "timed_out", "oom_killed", "cancelled"})
# A small download, and the result line a runtime that fakes the container prints for it.
DOWNLOAD_CONFIG = {
    "exchange": "binance",
    "pairs": ["BTC/USDT"],
    "timeframe": "1h",
    "timerange": "20240101-20240103",
}
DOWNLOAD_SUMMARY = {
    "kind": "download-data",
    "exchange": "binance",
    "timeframe": "1h",
    "timerange": "20240101-20240103",
    "data": {"sha256": "0" * 64, "startup_candles": 0, "pairs": []},
}


def claimed_download_job(client: Client) -> uuid.UUID:
    """The client's new download, submitted through the API and claimed as a worker would."""
    response = client.http.post(
        "/api/v1/jobs",
        json={"kind": "download-data", "config": DOWNLOAD_CONFIG},
        headers=client.auth,
    )
    assert response.status_code == 202, response.text
    with session_scope() as session:
        job = jobs.claim_next_job(session, slots=4, tenants=[client.tenant_id])
        assert job is not None
        return job.id


def wait_for_job(
    client: Client, job_id: str, statuses: frozenset[str] | set[str] = ENDED, timeout: float = 300
) -> dict[str, Any]:
    """The job once its status is one of `statuses`; fails the test, with the end of the
    job's log, if that takes longer than `timeout` seconds."""
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = client.http.get(f"/api/v1/jobs/{job_id}", headers=client.auth).json()
        if job["status"] in statuses:
            return job
        time.sleep(0.3)
    logs = client.http.get(f"/api/v1/jobs/{job_id}/logs", headers=client.auth).text
    pytest.fail(f"job {job_id} still {job.get('status')} after {timeout} s; logs:\n{logs[-3000:]}")


def run_job(client: Client, **body: Any) -> tuple[str, dict[str, Any]]:
    """Submits a job and waits until it succeeded; its id and its result."""
    response = client.http.post("/api/v1/jobs", json=body, headers=client.auth)
    assert response.status_code == 202, response.text
    job_id = str(response.json()["id"])
    job = wait_for_job(client, job_id)
    logs = client.http.get(f"/api/v1/jobs/{job_id}/logs", headers=client.auth).text
    assert job["status"] == "succeeded", (job, logs[-3000:])
    result = client.http.get(f"/api/v1/jobs/{job_id}/result", headers=client.auth)
    assert result.status_code == 200, result.text
    return job_id, result.json()


def job_container_id(job_id: str) -> str | None:
    """The id of the container the job runs in, from the job's row: a warm container
    (fta.worker.warm_pool) was labelled before its job existed, so no label names the job."""
    with session_scope() as session:
        job = session.get(Job, uuid.UUID(job_id))
        return job.container_id if job is not None else None


def running_job(tenant_id: str) -> uuid.UUID:
    """A job of the tenant's that its row says is running, as a worker left it; its id."""
    with session_scope() as session:
        job = Job(
            tenant_id=tenant_id,
            kind="backtest",
            status=JobStatus.RUNNING,
            config={},
            max_seconds=60,
        )
        session.add(job)
        session.flush()
        return job.id


def job_containers(engine: docker.DockerClient, job_id: str) -> list[Any]:
    """The containers of the job that still exist: labelled with its id, or handed it."""
    labelled = engine.containers.list(all=True, filters={"label": f"fta.job={job_id}"})
    found = {container.id: container for container in labelled}
    handed = job_container_id(job_id)
    if handed is not None and handed not in found:
        with contextlib.suppress(docker.errors.NotFound):
            found[handed] = engine.containers.get(handed)
    return list(found.values())


def warm_container(engine: docker.DockerClient, tenant_id: str) -> str:
    """The id of the tenant's running warm container, once the worker has started it after
    the tenant's last job (fta.worker.warm_pool)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = engine.api.containers(
            filters={"label": [f"{LABEL_HANDOFF}=1", f"{LABEL_TENANT}={tenant_id}"]}
        )
        if found:
            [container] = found
            return str(container["Id"])
        time.sleep(0.2)
    raise AssertionError(f"no warm container for tenant {tenant_id}")
