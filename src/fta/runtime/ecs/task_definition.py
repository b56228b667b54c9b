"""The task definition of a tenant's job or bot on Fargate, and its check on what ECS stored.

As with Docker's create body (fta.runtime.spec), this is the one place the hardening is
written down. What Fargate offers is all used: read-only root, a non-root user, every
capability dropped, an init process, a bounded stop, no public address. What it lacks
(no-new-privileges, a seccomp profile of our own, a pids cgroup limit, a size cap on /tmp)
is covered by the task being its own micro-VM; docs/scaling.md lists each.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fta.runtime.ecs.fargate import FargateSize, check_fargate_size
from fta.runtime.ecs.settings import EcsSettings
from fta.runtime.spec import JOB_USER, TMPFS_TARGET, ContainerSpec

CONTAINER_NAME = "job"
# Fargate allows at most 120 s between SIGTERM and SIGKILL. A bot gets longer: freqtrade stops,
# then its trade database is copied back to EFS (fta.freqtrade.entry.LocalDatabase).
STOP_TIMEOUT_SECONDS = {"job": 30, "cache-fill": 30, "bot": 90}
FARGATE_MAX_STOP_TIMEOUT = 120
# The task's own ephemeral storage (not an EFS volume): /tmp, as Docker's tmpfs is.
TMP_VOLUME = "tmp"

TAG_INSTANCE = "fta:instance"
TAG_TENANT = "fta:tenant"
TAG_KIND = "fta:kind"
TAG_JOB = "fta:job"
TAG_BOT = "fta:bot"


def task_family(instance: str, spec: ContainerSpec, size: FargateSize) -> str:
    """One family per tenant, owner kind and size: a task definition names its volumes'
    access points and its log prefix, which RunTask cannot override."""
    return f"fta-{instance}-{spec.tenant_id}-{spec.owner_kind}-{size.cpu}-{size.memory_mib}"


def definition_tags(instance: str, spec: ContainerSpec) -> list[dict[str, str]]:
    return [
        {"key": TAG_INSTANCE, "value": instance},
        {"key": TAG_TENANT, "value": spec.tenant_id},
        {"key": TAG_KIND, "value": spec.owner_kind},
    ]


def task_tags(instance: str, spec: ContainerSpec) -> list[dict[str, str]]:
    owner = TAG_BOT if spec.owner_kind == "bot" else TAG_JOB
    return [*definition_tags(instance, spec), {"key": owner, "value": spec.owner_id}]


def task_definition(
    spec: ContainerSpec,
    *,
    settings: EcsSettings,
    instance: str,
    size: FargateSize,
    access_points: Mapping[str, str],
) -> dict[str, Any]:
    """The RegisterTaskDefinition request for `spec`; `access_points` maps each mounted
    volume's name to its EFS access point."""
    check_fargate_size(size.cpu, size.memory_mib)
    volumes: list[dict[str, Any]] = [{"name": TMP_VOLUME}]
    mount_points = [{"sourceVolume": TMP_VOLUME, "containerPath": TMPFS_TARGET, "readOnly": False}]
    for mount in spec.mounts:
        volumes.append(
            {
                "name": mount.volume,
                "efsVolumeConfiguration": {
                    "fileSystemId": settings.efs_file_system,
                    "rootDirectory": "/",
                    "transitEncryption": "ENABLED",
                    "authorizationConfig": {
                        "accessPointId": access_points[mount.volume],
                        "iam": "ENABLED",
                    },
                },
            }
        )
        mount_points.append(
            {
                "sourceVolume": mount.volume,
                "containerPath": mount.target,
                "readOnly": mount.read_only,
            }
        )
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": settings.job_image,
        "essential": True,
        "user": JOB_USER,
        "readonlyRootFilesystem": True,
        "cpu": size.cpu,
        "memory": size.container_memory_mib,
        "linuxParameters": {
            "capabilities": {"add": [], "drop": ["ALL"]},
            "initProcessEnabled": True,
        },
        # No pids cgroup on Fargate: every process runs as the job's user, so its process
        # limit bounds them all the same.
        "ulimits": [
            {"name": "nproc", "softLimit": spec.limits.pids, "hardLimit": spec.limits.pids}
        ],
        "stopTimeout": STOP_TIMEOUT_SECONDS[spec.owner_kind],
        "mountPoints": mount_points,
        "portMappings": [],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": settings.log_group,
                "awslogs-region": settings.region,
                "awslogs-stream-prefix": spec.tenant_id,
            },
        },
    }
    if spec.command is not None:
        container["command"] = list(spec.command)
    return {
        "family": task_family(instance, spec, size),
        "taskRoleArn": settings.job_task_role,
        "executionRoleArn": settings.job_execution_role,
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "runtimePlatform": {"operatingSystemFamily": "LINUX", "cpuArchitecture": "X86_64"},
        "cpu": str(size.cpu),
        "memory": str(size.memory_mib),
        "containerDefinitions": [container],
        "volumes": volumes,
        "tags": definition_tags(instance, spec),
    }


def verify_task_definition(expected: Mapping[str, Any], stored: Mapping[str, Any]) -> list[str]:
    """What differs between the definition registered and the one ECS describes, on every
    field that makes the task hardened; [] when they agree."""
    mismatches: list[str] = []

    def same(label: str, want: object, got: object) -> None:
        if want != got:
            mismatches.append(f"{label}: {got!r}, not {want!r}")

    for key in ("family", "taskRoleArn", "executionRoleArn", "networkMode", "cpu", "memory"):
        same(key, expected.get(key), stored.get(key))
    same(
        "requiresCompatibilities",
        sorted(expected["requiresCompatibilities"]),
        sorted(stored.get("requiresCompatibilities") or []),
    )
    check_fargate_size(int(stored.get("cpu") or 0), int(stored.get("memory") or 0))
    same("volumes", _by_name(expected["volumes"]), _by_name(stored.get("volumes") or []))
    containers = stored.get("containerDefinitions") or []
    if len(containers) != 1:
        return [*mismatches, f"containerDefinitions: {len(containers)} containers, not 1"]
    want, got = expected["containerDefinitions"][0], containers[0]
    keys = ("name", "image", "user", "cpu", "memory", "logConfiguration", "command", "stopTimeout")
    for key in keys:
        same(f"container {key}", want.get(key), got.get(key))
    same("container readonlyRootFilesystem", True, got.get("readonlyRootFilesystem"))
    if got.get("privileged"):
        mismatches.append("container privileged: True")
    linux = got.get("linuxParameters") or {}
    capabilities = linux.get("capabilities") or {}
    same("container capabilities drop", ["ALL"], capabilities.get("drop"))
    same("container capabilities add", [], capabilities.get("add") or [])
    same("container initProcessEnabled", True, linux.get("initProcessEnabled"))
    for absent in ("devices", "tmpfs", "sharedMemorySize"):
        if linux.get(absent):
            mismatches.append(f"container linuxParameters {absent}: {linux[absent]!r}")
    same("container ulimits", want["ulimits"], got.get("ulimits"))
    stop_timeout = got.get("stopTimeout")
    if not isinstance(stop_timeout, int) or not 0 < stop_timeout <= FARGATE_MAX_STOP_TIMEOUT:
        mismatches.append(f"container stopTimeout: {stop_timeout!r}, not 1..120")
    same("container mountPoints", _by_path(want["mountPoints"]), _by_path(got.get("mountPoints")))
    same("container portMappings", [], got.get("portMappings") or [])
    for key in ("environment", "secrets", "environmentFiles", "volumesFrom", "links"):
        if got.get(key):
            mismatches.append(f"container {key}: set in the definition")
    return mismatches


def _by_name(volumes: list[dict[str, Any]]) -> dict[str, Any]:
    return {volume["name"]: volume.get("efsVolumeConfiguration") for volume in volumes}


def _by_path(points: list[dict[str, Any]] | None) -> dict[str, tuple[str, bool]]:
    return {p["containerPath"]: (p["sourceVolume"], bool(p.get("readOnly"))) for p in points or []}
