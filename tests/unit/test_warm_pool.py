"""The warm pool's decisions: which job a warm container may serve, how many wait, when they
go. A small in-memory runner stands in for Docker (the real engine is in
tests/integration/test_warm_containers.py)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

from fta.runtime import ContainerSpec, ContainerState, Limits, Mount
from fta.runtime.spec import container_labels
from fta.worker.warm_pool import WARM_OWNER_PREFIX, WarmPool, shape

LIMITS = Limits(nano_cpus=1_000_000_000, memory_bytes=1 << 30, pids=256, tmpfs_bytes=1 << 26)


def job_spec(tenant: str = "t1", job: str = "job-1", **changes: object) -> ContainerSpec:
    spec = ContainerSpec(
        tenant_id=tenant,
        owner_kind="job",
        owner_id=job,
        image="fta/freqtrade:2026.9",
        command=None,
        env={"FTA_BUNDLE_0": job},
        limits=LIMITS,
        mounts=[Mount(f"fta-data-{tenant}", "/freqtrade/user_data", read_only=False)],
        network=f"fta-client-{tenant}",
        image_id="sha256:abc",
    )
    return dataclasses.replace(spec, **changes)  # type: ignore[arg-type]


class MemoryRunner:
    def __init__(self) -> None:
        self.created: dict[str, ContainerSpec] = {}
        self.running: set[str] = set()
        self.removed: list[str] = []

    def create(self, spec: ContainerSpec) -> str:
        container_id = f"c{len(self.created)}"
        self.created[container_id] = spec
        return container_id

    def start(self, container_id: str) -> None:
        self.running.add(container_id)

    def state(self, container_id: str) -> ContainerState | None:
        if container_id not in self.created or container_id in self.removed:
            return None
        return ContainerState(container_id in self.running, 0, False, None, None)

    def remove(self, container_id: str) -> None:
        self.running.discard(container_id)
        self.removed.append(container_id)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def pool(runner: MemoryRunner, capacity: int = 4, clock: Clock | None = None) -> WarmPool:
    return WarmPool(
        runner,  # type: ignore[arg-type]
        capacity=capacity,
        idle_seconds=600,
        tenant_cpu=lambda tenant: Decimal("12.5"),
        now=lambda: datetime(2026, 12, 6, tzinfo=UTC),
        clock=clock or Clock(),
    )


def test_a_warm_container_is_the_jobs_spec_without_its_bundle_and_labelled_for_hand_off() -> None:
    runner = MemoryRunner()
    warm_pool = pool(runner)
    warm_pool.prepare(job_spec())
    [(container_id, created)] = runner.created.items()
    assert created.env == {"FTA_WAIT_FOR_JOB": "1"}
    assert created.owner_id.startswith(WARM_OWNER_PREFIX) and created.handoff
    assert container_labels(created, {})["fta.handoff"] == "1"
    assert "fta.handoff" not in container_labels(job_spec(), {})
    assert shape(created) == shape(job_spec())
    assert container_id in runner.running and warm_pool.held() == {container_id}


def test_only_the_same_tenant_and_spec_take_it_and_only_once() -> None:
    runner = MemoryRunner()
    warm_pool = pool(runner)
    warm_pool.prepare(job_spec())
    other_limits = dataclasses.replace(LIMITS, memory_bytes=2 << 30)
    assert warm_pool.take(job_spec(tenant="t2")) is None
    assert warm_pool.take(job_spec(limits=other_limits)) is None
    assert warm_pool.take(job_spec(image_id="sha256:def")) is None
    warm = warm_pool.take(job_spec(job="job-2", env={"FTA_BUNDLE_0": "another"}))
    assert warm is not None and warm.tenant_cpu_before == Decimal("12.5")
    assert warm_pool.take(job_spec()) is None
    # Serving a job, it is still the pool's (not an orphan) until the job ends.
    assert warm_pool.held() == {warm.container_id}
    warm_pool.release(warm.container_id)
    assert warm_pool.held() == set() and runner.removed == [warm.container_id]


def test_one_waits_per_shape_and_a_full_pool_gives_way_to_the_latest_tenant() -> None:
    runner, clock = MemoryRunner(), Clock()
    warm_pool = pool(runner, capacity=2, clock=clock)
    for tenant in ("t1", "t1", "t2", "t3"):
        warm_pool.prepare(job_spec(tenant=tenant))
        clock.now += 1
    assert [spec.tenant_id for spec in runner.created.values()] == ["t1", "t2", "t3"]
    # t1's waited longest: it made room for t3's.
    assert runner.removed == ["c0"]
    assert warm_pool.take(job_spec(tenant="t1")) is None
    assert warm_pool.take(job_spec(tenant="t2")) is not None
    assert warm_pool.take(job_spec(tenant="t3")) is not None


def test_a_container_that_stopped_while_waiting_is_not_handed_a_job() -> None:
    runner = MemoryRunner()
    warm_pool = pool(runner)
    warm_pool.prepare(job_spec())
    runner.running.clear()
    assert warm_pool.take(job_spec()) is None
    assert runner.removed == ["c0"] and warm_pool.held() == set()


def test_waiting_containers_go_after_the_idle_time_and_when_the_worker_stops() -> None:
    runner, clock = MemoryRunner(), Clock()
    warm_pool = pool(runner, clock=clock)
    warm_pool.prepare(job_spec())
    clock.now += 599
    warm_pool.expire()
    assert runner.removed == []
    clock.now += 1
    warm_pool.expire()
    assert runner.removed == ["c0"]
    warm_pool.prepare(job_spec(tenant="t2"))
    warm_pool.drain()
    assert runner.removed == ["c0", "c1"] and warm_pool.held() == set()
