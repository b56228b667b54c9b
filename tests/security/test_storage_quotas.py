"""What one tenant stores in Postgres is bounded: strategy versions are throttled per tenant
and capped by the plan (count and bytes), and finished jobs' logs and result files are pruned
past the plan's retention and quota, with the API saying so.

The audit stored 100 versions of 256 KiB in 1.7 s from one token, and found job logs and
result files never pruned.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text, update

from fta.db import session_scope, utcnow
from fta.jobs import retention
from fta.jobs.models import Job, JobArchive, JobLogChunk
from fta.settings import get_settings
from fta.strategies.models import Strategy, StrategyVersion
from fta.strategies.validation import MAX_SOURCE_BYTES
from tests.security.api_support import (
    API,
    PROBLEM_JSON,
    cancel_queued_jobs,
    create_strategy,
    finish_job,
    move_to_test_plan,
    strategy_source,
    submit_backtest,
)
from tests.support.api import Client, sign_up, subscribe

MIB = 1024 * 1024
BURST = 100
# As shipped (the session's other tests lift it).
UPLOADS_PER_WINDOW = 30
WINDOW_SECONDS = 60


@pytest.fixture
def shipped_throttle(app_settings: None) -> Iterator[None]:
    names = ("FTA_STRATEGY_UPLOADS_PER_WINDOW", "FTA_STRATEGY_UPLOAD_WINDOW_SECONDS")
    saved = {name: os.environ.get(name) for name in names}
    os.environ["FTA_STRATEGY_UPLOADS_PER_WINDOW"] = str(UPLOADS_PER_WINDOW)
    os.environ["FTA_STRATEGY_UPLOAD_WINDOW_SECONDS"] = str(WINDOW_SECONDS)
    get_settings.cache_clear()
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    get_settings.cache_clear()


def _large_source(name: str, size: int) -> str:
    """A valid strategy padded with a comment to about `size` bytes, unique per call."""
    source = strategy_source(name, secrets.token_hex(8))
    return source + "# " + "x" * (size - len(source) - 3) + "\n"


def _put(client: Client, strategy_id: str, source: str) -> int:
    response = client.http.put(
        f"{API}/strategies/{strategy_id}", json={"source": source}, headers=client.auth
    )
    return response.status_code


def _stored_versions(tenant_id: str) -> tuple[int, int]:
    with session_scope() as session:
        count, size = session.execute(
            select(
                func.count(), func.coalesce(func.sum(func.octet_length(StrategyVersion.source)), 0)
            )
            .join(Strategy, Strategy.id == StrategyVersion.strategy_id)
            .where(Strategy.tenant_id == tenant_id)
        ).one()
    return int(count), int(size)


def _quota_client(http: TestClient, plan: str, **quotas: int) -> Client:
    """A paying client on a plan with these storage quotas, whose jobs never start."""
    client = subscribe(sign_up(http, "Quota"))
    move_to_test_plan(
        client.tenant_id,
        plan,
        f"Test plan {plan}",
        max_concurrent_jobs=0,
        max_bots=0,
        max_queued_jobs=1000,
        **quotas,
    )
    return client


def test_a_burst_of_versions_is_throttled_per_tenant(
    http: TestClient, shipped_throttle: None
) -> None:
    attacker = sign_up(http, "Burst")
    bystander = sign_up(http, "Bystander")
    strategy_id, name = create_strategy(http, attacker.auth)
    size = MAX_SOURCE_BYTES - 1024
    answers: list[int] = []
    refusal = None
    for _ in range(BURST):
        response = http.put(
            f"{API}/strategies/{strategy_id}",
            json={"source": _large_source(name, size)},
            headers=attacker.auth,
        )
        answers.append(response.status_code)
        if response.status_code == 429 and refusal is None:
            refusal = response
    # The creation counted as the first upload of the window.
    accepted = UPLOADS_PER_WINDOW - 1
    assert answers == [200] * accepted + [429] * (BURST - accepted)
    assert refusal is not None
    assert refusal.headers["content-type"] == PROBLEM_JSON
    assert 1 <= int(refusal.headers["retry-after"]) <= WINDOW_SECONDS
    assert f"strategy versions within {WINDOW_SECONDS} seconds" in refusal.json()["detail"]
    count, stored = _stored_versions(attacker.tenant_id)
    assert count == UPLOADS_PER_WINDOW
    assert stored < UPLOADS_PER_WINDOW * MAX_SOURCE_BYTES
    # The attacker's strategy still reads as before; another tenant still uploads.
    latest = http.get(f"{API}/strategies/{strategy_id}", headers=attacker.auth)
    assert latest.status_code == 200 and latest.json()["version"] == UPLOADS_PER_WINDOW
    other_id, other_name = create_strategy(http, bystander.auth)
    assert _put(bystander, other_id, strategy_source(other_name, "edited")) == 200


def test_past_the_plans_version_count_a_version_is_refused_until_one_is_deleted(
    http: TestClient,
) -> None:
    client = _quota_client(http, "test-3-versions", max_strategy_versions=3)
    strategy_id, name = create_strategy(http, client.auth)
    for n in (2, 3):
        assert _put(client, strategy_id, strategy_source(name, f"v{n}")) == 200
    refused = http.put(
        f"{API}/strategies/{strategy_id}",
        json={"source": strategy_source(name, "v4")},
        headers=client.auth,
    )
    assert refused.status_code == 409
    assert refused.headers["content-type"] == PROBLEM_JSON
    detail = refused.json()["detail"]
    assert "3 strategy versions" in detail and "DELETE" in detail and "plan" in detail
    # A new strategy is a new version too.
    other = http.post(
        f"{API}/strategies",
        json={"name": "Other", "source": strategy_source("Other")},
        headers=client.auth,
    )
    assert other.status_code == 409
    assert _stored_versions(client.tenant_id)[0] == 3

    listed = http.get(f"{API}/strategies/{strategy_id}/versions", headers=client.auth)
    assert [v["version"] for v in listed.json()] == [3, 2, 1]
    assert not any(v["pinned"] for v in listed.json())
    storage = http.get(f"{API}/storage", headers=client.auth).json()["strategies"]
    assert storage["versions"] == 3 and storage["max_versions"] == 3
    # The current code cannot be deleted; an old version can, which makes room.
    latest = http.delete(f"{API}/strategies/{strategy_id}/versions/3", headers=client.auth)
    assert latest.status_code == 409
    assert (
        http.delete(f"{API}/strategies/{strategy_id}/versions/1", headers=client.auth).status_code
        == 204
    )
    assert _put(client, strategy_id, strategy_source(name, "v4")) == 200
    assert _stored_versions(client.tenant_id)[0] == 3


def test_past_the_plans_bytes_a_version_is_refused(http: TestClient) -> None:
    client = _quota_client(http, "test-1-mib-code", max_strategy_bytes=MIB)
    strategy_id, name = create_strategy(http, client.auth)
    size = 200 * 1024
    answers = [_put(client, strategy_id, _large_source(name, size)) for _ in range(6)]
    assert answers == [200] * 5 + [409]
    count, stored = _stored_versions(client.tenant_id)
    assert count == 6 and stored <= MIB


def test_versions_a_job_ran_are_kept_and_deleting_a_strategy_frees_the_others(
    http: TestClient,
) -> None:
    client = _quota_client(http, "test-3-versions", max_strategy_versions=3)
    strategy_id, name = create_strategy(http, client.auth)
    job_id = submit_backtest(http, client.auth, strategy_id)
    for n in (2, 3):
        assert _put(client, strategy_id, strategy_source(name, f"v{n}")) == 200
    listed = http.get(f"{API}/strategies/{strategy_id}/versions", headers=client.auth).json()
    assert [(v["version"], v["pinned"]) for v in listed] == [(3, False), (2, False), (1, True)]
    kept = http.delete(f"{API}/strategies/{strategy_id}/versions/1", headers=client.auth)
    assert kept.status_code == 409 and "a job or bot ran it" in kept.json()["detail"]

    assert http.delete(f"{API}/strategies/{strategy_id}", headers=client.auth).status_code == 204
    with session_scope() as session:
        job = session.get(Job, uuid.UUID(job_id))
        assert job is not None and job.strategy_version_id is not None
        assert session.get(StrategyVersion, job.strategy_version_id) is not None
    assert _stored_versions(client.tenant_id)[0] == 1
    # Room again for new code.
    create_strategy(http, client.auth)
    cancel_queued_jobs(client.tenant_id)


def _finished_job(client: Client, strategy_id: str, *, ended_ago: timedelta, archive: bytes) -> str:
    job_id = submit_backtest(client.http, client.auth, strategy_id)
    finish_job(job_id, log="backtest log line\n", summary={"trades": 3}, archive=archive)
    with session_scope() as session:
        session.execute(
            update(Job)
            .where(Job.id == uuid.UUID(job_id))
            .values(finished_at=utcnow() - ended_ago, started_at=utcnow() - ended_ago)
        )
    return job_id


def _output_kept(client: Client, job_id: str) -> bool:
    logs = client.http.get(f"{API}/jobs/{job_id}/logs", headers=client.auth)
    archive = client.http.get(f"{API}/jobs/{job_id}/archive", headers=client.auth)
    result = client.http.get(f"{API}/jobs/{job_id}/result", headers=client.auth)
    assert result.status_code == 200 and result.json() == {"trades": 3}
    if logs.status_code == 200:
        assert logs.text == "backtest log line\n" and archive.status_code == 200
        return True
    today = utcnow().date().isoformat()
    for gone in (logs, archive):
        assert gone.status_code == 410
        assert gone.headers["content-type"] == PROBLEM_JSON
        assert f"deleted on {today}" in gone.json()["detail"]
        assert f"/api/v1/jobs/{job_id}/result" in gone.json()["detail"]
    job = client.http.get(f"{API}/jobs/{job_id}", headers=client.auth).json()
    assert job["output_pruned_at"] is not None
    return False


def _prune(tenants: set[str] | None = None) -> int:
    with session_scope() as session:
        return retention.prune_job_outputs(session, utcnow(), tenants=tenants)


def test_logs_and_archives_past_the_retention_are_pruned_and_the_api_says_so(
    http: TestClient,
) -> None:
    tenant = _quota_client(http, "test-7-days", job_output_retention_days=7)
    other = _quota_client(http, "test-7-days", job_output_retention_days=7)
    strategy_id, _ = create_strategy(http, tenant.auth)
    other_strategy, _ = create_strategy(http, other.auth)
    old = _finished_job(tenant, strategy_id, ended_ago=timedelta(days=8), archive=b"old")
    recent = _finished_job(tenant, strategy_id, ended_ago=timedelta(days=6), archive=b"new")
    others = _finished_job(other, other_strategy, ended_ago=timedelta(days=1), archive=b"x")

    # A worker kept to some tenants prunes only theirs.
    _prune({other.tenant_id})
    assert _output_kept(tenant, old)
    _prune()
    assert not _output_kept(tenant, old)
    assert _output_kept(tenant, recent)
    assert _output_kept(other, others)
    with session_scope() as session:
        old_id = uuid.UUID(old)
        assert session.scalar(select(func.count()).where(JobLogChunk.job_id == old_id)) == 0
        assert session.get(JobArchive, old_id) is None
    # Pruned once: a second round finds nothing more of theirs.
    _prune()
    assert _output_kept(tenant, recent)


def test_past_the_output_quota_the_oldest_jobs_output_goes_first(http: TestClient) -> None:
    tenant = _quota_client(http, "test-16-mib-output", max_job_output_bytes=16 * MIB)
    other = _quota_client(http, "test-16-mib-output", max_job_output_bytes=16 * MIB)
    strategy_id, _ = create_strategy(http, tenant.auth)
    other_strategy, _ = create_strategy(http, other.auth)
    archive = secrets.token_bytes(7 * MIB)
    oldest, middle, newest = (
        _finished_job(tenant, strategy_id, ended_ago=timedelta(hours=h), archive=archive)
        for h in (3, 2, 1)
    )
    others = _finished_job(other, other_strategy, ended_ago=timedelta(hours=4), archive=archive)

    def kept_bytes() -> int:
        storage = http.get(f"{API}/storage", headers=tenant.auth).json()["job_output"]
        assert storage["max_bytes"] == 16 * MIB
        return int(storage["bytes"])

    assert kept_bytes() > 16 * MIB
    _prune()
    assert 14 * MIB < kept_bytes() <= 16 * MIB
    assert not _output_kept(tenant, oldest)
    assert _output_kept(tenant, middle)
    assert _output_kept(tenant, newest)
    assert _output_kept(other, others)


def test_the_runtime_role_may_delete_what_pruning_deletes(app_settings: None) -> None:
    with session_scope() as session:
        for table in ("job_log_chunks", "job_archives", "strategy_versions", "strategy_uploads"):
            allowed = session.scalar(
                text("SELECT has_table_privilege(current_user, :table, 'DELETE')"),
                {"table": table},
            )
            assert allowed, table
