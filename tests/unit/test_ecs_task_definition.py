"""The check of a stored task definition: every hardening field, changed on its own, is
caught."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from fta.freqtrade import bundle, entry
from fta.runtime import ContainerSpec, Limits, Mount
from fta.runtime.ecs import EcsSettings, fargate_size, runner
from fta.runtime.ecs.task_definition import task_definition, verify_task_definition

SETTINGS = EcsSettings(
    cluster="fta",
    vpc_id="vpc-1",
    subnets="subnet-1,subnet-2",
    route_table="rtb-1",
    gateway_security_group="sg-gateway",
    endpoints_security_group="sg-endpoints",
    s3_prefix_list="pl-1",
    efs_file_system="fs-1",
    efs_security_group="sg-efs",
    job_task_role="arn:aws:iam::123456789012:role/job-task",
    job_execution_role="arn:aws:iam::123456789012:role/job-execution",
    log_group="/fta/prod/jobs",
    bundle_bucket="bundles",
    job_image="123456789012.dkr.ecr.eu-west-3.amazonaws.com/fta/freqtrade:2026.9",
)
SPEC = ContainerSpec(
    tenant_id="t1",
    owner_kind="job",
    owner_id="job-1",
    image="fta/freqtrade:2026.9",
    command=None,
    env={},
    limits=Limits(nano_cpus=10**9, memory_bytes=2**30, pids=256, tmpfs_bytes=2**28),
    mounts=[
        Mount("fta-data-t1", "/freqtrade/user_data", read_only=False),
        Mount("fta-candles", "/candles", read_only=True),
    ],
    network="sg-t1",
)
DEFINITION = task_definition(
    SPEC,
    settings=SETTINGS,
    instance="prod",
    size=fargate_size(10**9, 2**30),
    access_points={"fta-data-t1": "fsap-t1", "fta-candles": "fsap-candles"},
)

Change = Callable[[dict[str, Any]], None]


def _container(definition: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = definition["containerDefinitions"][0]
    return container


def _linux(definition: dict[str, Any]) -> dict[str, Any]:
    linux: dict[str, Any] = _container(definition)["linuxParameters"]
    return linux


CHANGES: dict[str, Change] = {
    "privileged": lambda d: _container(d).update(privileged=True),
    "writable root": lambda d: _container(d).update(readonlyRootFilesystem=False),
    "root user": lambda d: _container(d).update(user="0"),
    "capability kept": lambda d: _linux(d)["capabilities"].update(drop=["NET_RAW"]),
    "capability added": lambda d: _linux(d)["capabilities"].update(add=["SYS_ADMIN"]),
    "no init": lambda d: _linux(d).update(initProcessEnabled=False),
    "a device": lambda d: _linux(d).update(devices=[{"hostPath": "/dev/kvm"}]),
    "process limit": lambda d: _container(d).update(ulimits=[]),
    "long stop": lambda d: _container(d).update(stopTimeout=600),
    "more memory": lambda d: _container(d).update(memory=2048),
    "other image": lambda d: _container(d).update(image="attacker/image"),
    "a published port": lambda d: _container(d).update(portMappings=[{"containerPort": 22}]),
    "secrets in the definition": lambda d: _container(d).update(
        secrets=[{"name": "X", "valueFrom": "arn"}]
    ),
    "candles writable": lambda d: _container(d)["mountPoints"][2].update(readOnly=False),
    "another access point": lambda d: d["volumes"][1]["efsVolumeConfiguration"][
        "authorizationConfig"
    ].update(accessPointId="fsap-other"),
    "no transit encryption": lambda d: d["volumes"][1]["efsVolumeConfiguration"].update(
        transitEncryption="DISABLED"
    ),
    "a host volume": lambda d: d["volumes"].append({"name": "host", "host": {"sourcePath": "/"}}),
    "another task role": lambda d: d.update(taskRoleArn="arn:aws:iam::123456789012:role/admin"),
    "bridge network": lambda d: d.update(networkMode="bridge"),
    "on EC2": lambda d: d.update(requiresCompatibilities=["EC2"]),
    "logs elsewhere": lambda d: _container(d)["logConfiguration"]["options"].update(
        {"awslogs-stream-prefix": "t2"}
    ),
    "a second container": lambda d: d["containerDefinitions"].append(_container(d)),
}


def test_the_definition_as_registered_passes() -> None:
    assert verify_task_definition(DEFINITION, copy.deepcopy(DEFINITION)) == []


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_each_weakened_field_is_caught(change: Change) -> None:
    stored = copy.deepcopy(DEFINITION)
    change(stored)
    assert verify_task_definition(DEFINITION, stored) != []


def test_a_stored_size_fargate_refuses_is_refused() -> None:
    stored = {**copy.deepcopy(DEFINITION), "memory": "1024"}
    with pytest.raises(ValueError, match="Fargate"):
        verify_task_definition(DEFINITION, stored)


def test_the_runner_names_the_entrys_variables_as_the_entry_does() -> None:
    # The runtime layer cannot import the freqtrade one: both spell them out.
    assert runner.BUNDLE_ENV_PREFIX == bundle.BUNDLE_ENV_PREFIX
    assert runner.DB_SNAPSHOT_ENV == entry.DB_SNAPSHOT_ENV
    assert runner.BUNDLE_URL_ENV == entry.BUNDLE_URL_ENV
