"""One job spec, both runners: what the Docker engine stored for its container and what ECS
stored for its task give the job the same confinement, row by row.

Where Fargate has no such setting (no-new-privileges, a seccomp profile, a size cap on /tmp),
there is no row: the task is its own micro-VM instead, as docs/scaling.md sets out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from fta.runtime import ContainerSpec, DockerJobRunner, Mount
from fta.runtime.ecs import EcsJobRunner
from fta.settings import Settings
from tests.support.docker_resources import BASE_IMAGE, DockerResources
from tests.support.ecs_standin import EcsWorld, ecs_standin, worker_settings
from tests.support.socket_proxy import TEST_LIMITS, StandinWorld

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]

MIB = 1024 * 1024
SHARED_VOLUME = "fta-parity-shared"


@dataclasses.dataclass(frozen=True)
class Stored:
    """A runner's record of the job's container: Docker's inspect, or ECS's task
    definition and the task's own security groups."""

    spec: ContainerSpec
    docker: dict[str, Any] | None = None
    definition: dict[str, Any] | None = None
    task_groups: list[str] | None = None


def _docker_mounts(stored: Stored) -> dict[str, tuple[str, bool]]:
    assert stored.docker is not None
    return {
        m["Target"]: (m["Source"], bool(m.get("ReadOnly")))
        for m in stored.docker["HostConfig"]["Mounts"]
    }


def _ecs_container(stored: Stored) -> dict[str, Any]:
    assert stored.definition is not None
    container: dict[str, Any] = stored.definition["containerDefinitions"][0]
    return container


def _ecs_volumes(stored: Stored) -> dict[str, dict[str, Any]]:
    assert stored.definition is not None
    return {v["name"]: v for v in stored.definition["volumes"]}


def _ecs_mounts(stored: Stored) -> dict[str, tuple[str, bool]]:
    efs = {name for name, v in _ecs_volumes(stored).items() if "efsVolumeConfiguration" in v}
    return {
        p["containerPath"]: (p["sourceVolume"], p["readOnly"])
        for p in _ecs_container(stored)["mountPoints"]
        if p["sourceVolume"] in efs
    }


def _ecs_scratch(stored: Stored) -> list[str]:
    scratch = {n for n, v in _ecs_volumes(stored).items() if "efsVolumeConfiguration" not in v}
    return [
        p["containerPath"]
        for p in _ecs_container(stored)["mountPoints"]
        if p["sourceVolume"] in scratch
    ]


def _docker(stored: Stored) -> dict[str, Any]:
    assert stored.docker is not None
    return stored.docker


Reading = Callable[[Stored], object]
# Each row: what the spec asks, as each runner's record shows it.
ROWS: dict[str, tuple[Callable[[ContainerSpec], object], Reading, Reading]] = {
    "read-only root": (
        lambda spec: True,
        lambda s: _docker(s)["HostConfig"]["ReadonlyRootfs"],
        lambda s: _ecs_container(s)["readonlyRootFilesystem"],
    ),
    "the job's own non-root user": (
        lambda spec: "10000:10000",
        lambda s: _docker(s)["Config"]["User"],
        lambda s: _ecs_container(s)["user"],
    ),
    "every capability dropped, none added": (
        lambda spec: (["ALL"], []),
        lambda s: (_docker(s)["HostConfig"]["CapDrop"], _docker(s)["HostConfig"]["CapAdd"] or []),
        lambda s: (
            _ecs_container(s)["linuxParameters"]["capabilities"]["drop"],
            _ecs_container(s)["linuxParameters"]["capabilities"].get("add") or [],
        ),
    ),
    "not privileged": (
        lambda spec: False,
        lambda s: _docker(s)["HostConfig"]["Privileged"],
        lambda s: bool(_ecs_container(s).get("privileged")),
    ),
    "memory hard limit, the plan's": (
        lambda spec: spec.limits.memory_bytes,
        lambda s: _docker(s)["HostConfig"]["Memory"],
        lambda s: _ecs_container(s)["memory"] * MIB,
    ),
    "CPU, the plan's": (
        lambda spec: spec.limits.nano_cpus / 1e9,
        lambda s: _docker(s)["HostConfig"]["NanoCpus"] / 1e9,
        lambda s: _ecs_container(s)["cpu"] / 1024,
    ),
    "process limit, the plan's": (
        lambda spec: spec.limits.pids,
        lambda s: _docker(s)["HostConfig"]["PidsLimit"],
        lambda s: next(
            u["hardLimit"] for u in _ecs_container(s)["ulimits"] if u["name"] == "nproc"
        ),
    ),
    "writable scratch space only at /tmp": (
        lambda spec: ["/tmp"],
        lambda s: sorted(_docker(s)["HostConfig"]["Tmpfs"]),
        _ecs_scratch,
    ),
    "the tenant's data and the shared volume, read-only, nothing else": (
        lambda spec: {m.target: (m.volume, m.read_only) for m in spec.mounts},
        _docker_mounts,
        _ecs_mounts,
    ),
    "no published port": (
        lambda spec: [],
        lambda s: sorted((_docker(s)["HostConfig"].get("PortBindings") or {}).keys()),
        lambda s: _ecs_container(s).get("portMappings") or [],
    ),
    "the tenant's own network, and it alone": (
        lambda spec: [spec.network],
        lambda s: sorted(_docker(s)["NetworkSettings"]["Networks"]),
        lambda s: s.task_groups,
    ),
}


def _template(tenant_id: str, network: str, data: str) -> ContainerSpec:
    return ContainerSpec(
        tenant_id=tenant_id,
        owner_kind="job",
        owner_id="parity-1",
        image=BASE_IMAGE,
        command=["true"],
        env={"FTA_BUNDLE_0": "e30="},
        limits=dataclasses.replace(
            # A plan of half a CPU and 1.5 GiB: a 512/2048 task on Fargate.
            TEST_LIMITS,
            memory_bytes=1536 * MIB,
        ),
        mounts=[
            Mount(data, "/freqtrade/user_data", read_only=False),
            Mount(SHARED_VOLUME, "/candles", read_only=True),
        ],
        network=network,
    )


@pytest.fixture(scope="module")
def ecs_world() -> Iterator[EcsWorld]:
    with ecs_standin() as world:
        yield world


def _docker_stored(
    runner: DockerJobRunner, resources: DockerResources, tenant: ContainerSpec
) -> Stored:
    resources.add_volume(SHARED_VOLUME)
    runner.ensure_volume(SHARED_VOLUME)
    spec = _template(tenant.tenant_id, tenant.network, tenant.mounts[0].volume)
    spec = dataclasses.replace(spec, extra_hosts=tenant.extra_hosts, dns=tenant.dns)
    container_id = runner.create(spec)
    try:
        return Stored(spec, docker=resources.client.api.inspect_container(container_id))
    finally:
        runner.remove(container_id)


def _ecs_stored(world: EcsWorld) -> Stored:
    settings = worker_settings(Settings(job_image=BASE_IMAGE), "parity")
    runner = EcsJobRunner(settings, world.settings, session=world.session())
    try:
        tenant_id = "parity1"
        network = runner.ensure_tenant_network(tenant_id, 0)
        data = runner.ensure_tenant_volume(tenant_id, 1 << 30)
        runner.ensure_volume(SHARED_VOLUME)
        spec = _template(tenant_id, network.name, data)
        task_id = runner.create(spec)
        ecs, ec2 = world.client("ecs"), world.client("ec2")
        (task,) = ecs.describe_tasks(cluster=world.settings.cluster, tasks=[task_id])["tasks"]
        definition = ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])
        interface = next(
            d["value"]
            for d in task["attachments"][0]["details"]
            if d["name"] == "networkInterfaceId"
        )
        (eni,) = ec2.describe_network_interfaces(NetworkInterfaceIds=[interface])[
            "NetworkInterfaces"
        ]
        runner.remove(task_id)
        return Stored(
            spec,
            definition=definition["taskDefinition"],
            task_groups=[g["GroupId"] for g in eni["Groups"]],
        )
    finally:
        runner.close()


def test_one_spec_is_confined_alike_by_both_runners(
    proxied_job_runner: DockerJobRunner,
    proxied_tenant: ContainerSpec,
    docker_resources: DockerResources,
    standin_world: StandinWorld,
    ecs_world: EcsWorld,
) -> None:
    on_docker = _docker_stored(proxied_job_runner, docker_resources, proxied_tenant)
    on_ecs = _ecs_stored(ecs_world)
    differences = []
    for row, (wanted, docker_reading, ecs_reading) in ROWS.items():
        for name, stored, reading in (
            ("docker", on_docker, docker_reading),
            ("ecs", on_ecs, ecs_reading),
        ):
            want, got = wanted(stored.spec), reading(stored)
            if want != got:
                differences.append(f"{row} on {name}: {got!r}, not {want!r}")
    assert differences == []
