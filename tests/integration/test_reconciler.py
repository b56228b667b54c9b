"""The reconciler makes Docker match Postgres: labels are the truth, not names."""

from __future__ import annotations

import uuid

import docker
import pytest
from fastapi.testclient import TestClient

from fta.db import session_scope, utcnow
from fta.jobs.models import Job, JobStatus
from fta.runtime import ContainerSpec, DockerJobRunner, Limits
from fta.settings import get_settings
from fta.worker.network_slots import take_slot_now
from fta.worker.reconciler import reconcile
from tests.support.api import sign_up
from tests.support.jobs import running_job
from tests.support.sandbox import Sandbox

pytestmark = pytest.mark.docker


def _container_exists(container_id: str) -> bool:
    engine = docker.from_env()
    try:
        engine.containers.get(container_id)
        return True
    except docker.errors.NotFound:
        return False
    finally:
        engine.close()


def test_orphans_are_removed_and_abandoned_jobs_failed(http: TestClient, sandbox: Sandbox) -> None:
    client = sign_up(http)
    sandbox.forget_tenant(client.tenant_id)
    runner = DockerJobRunner(get_settings(), extra_labels=sandbox.labels)
    index = take_slot_now(client.tenant_id, get_settings(), utcnow())
    network = runner.ensure_tenant_network(client.tenant_id, index)

    def sleeper(owner: uuid.UUID | str) -> str:
        warm = isinstance(owner, str)
        spec = ContainerSpec(
            tenant_id=client.tenant_id,
            owner_kind="job",
            owner_id=str(owner),
            handoff=warm,
            image="fta/base:bookworm",
            command=["sleep", "300"],
            env={},
            limits=Limits(
                nano_cpus=100_000_000, memory_bytes=64 << 20, pids=16, tmpfs_bytes=1 << 20
            ),
            mounts=[],
            network=network.name,
            extra_hosts=network.extra_hosts,
            dns=network.dns,
        )
        container_id = runner.create(spec)
        runner.start(container_id)
        return container_id

    supervised = running_job(client.tenant_id)
    abandoned = running_job(client.tenant_id)
    supervised_container = sleeper(supervised)
    orphan_container = sleeper(uuid.uuid4())  # no job owns it
    abandoned_container = sleeper(abandoned)
    # Warm containers (fta.worker.warm_pool): waiting in this worker's pool, left by a worker
    # that stopped, and two that were handed a job (their label names no job).
    waiting_container = sleeper("warm-waiting")
    unclaimed_container = sleeper("warm-unclaimed")
    warm_supervised, warm_abandoned = running_job(client.tenant_id), running_job(client.tenant_id)
    warm_supervised_container = sleeper("warm-supervised")
    warm_abandoned_container = sleeper("warm-abandoned")
    with session_scope() as session:
        for job_id, container_id in (
            (warm_supervised, warm_supervised_container),
            (warm_abandoned, warm_abandoned_container),
        ):
            served = session.get(Job, job_id)
            assert served is not None
            served.container_id = container_id

    reconcile(runner, frozenset({supervised, warm_supervised}), warm={waiting_container})

    assert _container_exists(supervised_container)
    assert not _container_exists(orphan_container)
    assert not _container_exists(abandoned_container)
    assert _container_exists(waiting_container)
    assert not _container_exists(unclaimed_container)
    assert _container_exists(warm_supervised_container)
    assert not _container_exists(warm_abandoned_container)
    with session_scope() as session:
        for job_id in (supervised, warm_supervised):
            kept = session.get(Job, job_id)
            assert kept is not None and kept.status == JobStatus.RUNNING
            kept.status = JobStatus.FAILED
        for job_id in (abandoned, warm_abandoned):
            failed = session.get(Job, job_id)
            assert failed is not None and failed.status == JobStatus.FAILED
            assert "vanished" in (failed.error or "")
    for container_id in (supervised_container, waiting_container, warm_supervised_container):
        runner.remove(container_id)
