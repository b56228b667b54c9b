"""The worker's job handler on the ECS runner, against a stand-in AWS account: a claimed job
becomes a Fargate task, its output comes back from CloudWatch Logs, its result and its usage
(what Fargate bills) are recorded, and nothing of it is left behind."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fta.db import session_scope
from fta.jobs.models import Job, JobStatus
from fta.runtime.ecs import EcsJobRunner
from fta.settings import get_settings
from fta.worker.handlers import JobHandler
from tests.support.api import Client, leave_nothing_waiting, sign_up
from tests.support.ecs_standin import EcsWorld, ecs_standin, worker_settings
from tests.support.jobs import DOWNLOAD_SUMMARY, claimed_download_job

pytestmark = pytest.mark.timeout(120)

# The job's task: its image pulled 5 s before it starts, then 95 s of work.
RUN_SECONDS = 95


@pytest.fixture(scope="module")
def world() -> Iterator[EcsWorld]:
    with ecs_standin() as world:
        yield world


@pytest.fixture
def client(http: TestClient) -> Iterator[Client]:
    client = sign_up(http)
    yield client
    leave_nothing_waiting(client)


class Fargate(threading.Thread):
    """Runs every task the worker starts: a cache fill prints a line, a job its result."""

    def __init__(self, world: EcsWorld) -> None:
        super().__init__(daemon=True)
        self.world = world
        self.done = threading.Event()
        self.ran: dict[str, str] = {}

    def run(self) -> None:
        ecs = self.world.client("ecs")
        cluster = self.world.settings.cluster
        while not self.done.wait(0.05):
            arns = ecs.list_tasks(cluster=cluster, desiredStatus="RUNNING")["taskArns"]
            for arn in arns:
                task_id = arn.rsplit("/", 1)[1]
                if task_id in self.ran:
                    continue
                (task,) = ecs.describe_tasks(cluster=cluster, tasks=[arn], include=["TAGS"])[
                    "tasks"
                ]
                tags = {tag["key"]: tag["value"] for tag in task["tags"]}
                self.ran[task_id] = tags["fta:kind"]
                agent = self.world.agent
                agent.start(task_id, pulled_at=datetime.now(UTC) - timedelta(seconds=60))
                if tags["fta:kind"] == "job":
                    lines = ("fetching", "FTA-RESULT:" + json.dumps(DOWNLOAD_SUMMARY))
                else:
                    lines = ("filled",)
                agent.log(task_id, tags["fta:tenant"], *lines)
                agent.exit(task_id, 0, after_s=RUN_SECONDS)


def test_a_job_runs_as_a_fargate_task_and_is_billed_as_fargate_bills(
    client: Client, world: EcsWorld, tmp_path: Path
) -> None:
    settings = worker_settings(get_settings(), "ecsworker")
    config = world.settings.model_copy(update={"tenants_mount": str(tmp_path)})
    runner = EcsJobRunner(settings, config, session=world.session())
    fargate = Fargate(world)
    fargate.start()
    try:
        job_id = claimed_download_job(client)
        JobHandler(runner, settings).run(job_id)
    finally:
        fargate.done.set()
        fargate.join(timeout=10)

    with session_scope() as session:
        job = session.get(Job, job_id)
        assert job is not None
        session.expunge(job)
    assert job.status == JobStatus.SUCCEEDED, job.error
    result = client.http.get(f"/api/v1/jobs/{job_id}/result", headers=client.auth)
    assert result.status_code == 200, result.text
    log = client.http.get(f"/api/v1/jobs/{job_id}/logs", headers=client.auth)
    assert "fetching" in log.text

    # The job's own task.
    (task_id,) = [task for task, kind in fargate.ran.items() if kind == "job"]
    assert job.container_id == task_id
    # Billed for each task's size from its pull's start to its stop (100 s): the job's, and
    # the cache fill's it waited for, if the cache lacked its candles.
    sizes = [world.agent.definition(task) for task in fargate.ran]
    assert job.cpu_seconds == sum(Decimal(100 * int(d["cpu"])) / 1024 for d in sizes)
    assert job.memory_max_bytes == max(int(d["memory"]) for d in sizes) * 1024 * 1024

    # Nothing left: the task stopped, and no bundle waits in the bucket.
    (task,) = world.client("ecs").describe_tasks(cluster=world.settings.cluster, tasks=[task_id])[
        "tasks"
    ]
    assert task["lastStatus"] == "STOPPED"
    listed = world.client("s3").list_objects_v2(Bucket=world.settings.bundle_bucket)
    assert listed.get("KeyCount", 0) == 0
    runner.close()
