"""EcsJobRunner against a stand-in AWS account (moto's server on the loopback): a job's and
a bot's whole lives as Fargate tasks, and what keeps one tenant's tasks to their own."""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from fta.freqtrade.bundle import build_job_bundle, encode_bundle
from fta.freqtrade.options import parse_job_config
from fta.runtime import (
    ContainerSpec,
    Limits,
    Mount,
    ResourceMismatch,
    StorageUnavailable,
    TenantNetwork,
)
from fta.runtime.ecs import EcsJobRunner
from fta.runtime.ecs.network import security_group_name
from fta.runtime.ecs.runner import BUNDLE_URL_ENV
from fta.runtime.ecs.task_definition import TAG_TENANT
from fta.runtime.network import tenant_subnet
from fta.settings import Settings
from fta.worker.containers import container_spec
from tests.support.ecs_standin import EcsWorld, ecs_standin, worker_settings
from tests.support.ecs_templates import MAIN, load, role_statements
from tests.support.iam_policy import glob_match

pytestmark = pytest.mark.timeout(120)

INSTANCE = "test"
GIB = 1024**3
# A plan of 1 CPU and 1 GiB: Fargate runs it as a 1024/2048 task, the container held at 1 GiB.
BACKTEST = {"pairs": ["BTC/USDT"], "timeframe": "5m", "timerange": "20240101-20240201"}
PLAN = Limits(nano_cpus=1_000_000_000, memory_bytes=GIB, pids=256, tmpfs_bytes=256 * 2**20)


@pytest.fixture(scope="module")
def world() -> Iterator[EcsWorld]:
    with ecs_standin() as world:
        yield world


@pytest.fixture
def settings() -> Settings:
    return worker_settings(Settings(gateway_port=8090), INSTANCE)


@pytest.fixture
def tenants_mount(tmp_path: Path) -> Path:
    """The tenants' directory of the file system, as the worker's task mounts it."""
    return tmp_path


@pytest.fixture
def runner(world: EcsWorld, settings: Settings, tenants_mount: Path) -> Iterator[EcsJobRunner]:
    config = world.settings.model_copy(update={"tenants_mount": str(tenants_mount)})
    runner = EcsJobRunner(settings, config, session=world.session())
    yield runner
    runner.close()


# Each tenant of the module its own subnet of the pool.
SUBNETS = itertools.count(1)


def new_tenant() -> str:
    return uuid.uuid4().hex[:8]


def job_spec(
    runner: EcsJobRunner, settings: Settings, tenant_id: str, network: TenantNetwork
) -> ContainerSpec:
    """A backtest's spec as the worker builds it."""
    volume = runner.ensure_tenant_volume(tenant_id, GIB)
    runner.ensure_volume(settings.candle_volume)
    job_id = str(uuid.uuid4())
    config = parse_job_config("backtest", BACKTEST)
    bundle = build_job_bundle(
        "backtest", config, "Mine", "x = 1\n" * 2000, runner.market_data_url(), run_id=job_id
    )
    return container_spec(
        runner,
        settings,
        tenant_id=tenant_id,
        owner_kind="job",
        owner_id=job_id,
        bundle_env=encode_bundle(bundle),
        network=network,
        mounts=[
            Mount(volume, "/freqtrade/user_data", read_only=False),
            Mount(settings.candle_volume, "/candles", read_only=True),
        ],
        limits=PLAN,
    )


def test_a_job_runs_its_whole_life_as_a_hardened_fargate_task(
    world: EcsWorld, runner: EcsJobRunner, settings: Settings
) -> None:
    tenant_id = new_tenant()
    network = runner.ensure_tenant_network(tenant_id, next(SUBNETS))
    assert network.extra_hosts == {} and network.dns == []
    spec = job_spec(runner, settings, tenant_id, network)
    assert runner.market_data_url() == "http://market-data.fta.internal:8090"

    task_id = runner.create(spec)
    runner.start(task_id)

    # Run where the tenant's group allows, without a public address.
    ecs = world.client("ecs")
    (task,) = ecs.describe_tasks(cluster=world.settings.cluster, tasks=[task_id], include=["TAGS"])[
        "tasks"
    ]
    tags = {tag["key"]: tag["value"] for tag in task["tags"]}
    assert tags == {
        "fta:instance": INSTANCE,
        "fta:tenant": tenant_id,
        "fta:kind": "job",
        "fta:job": spec.owner_id,
    }
    assert task["startedBy"] == f"fta-{INSTANCE}"
    assert task["launchType"] == "FARGATE"

    # The bundle waits in S3, encrypted; the task's environment holds only its address.
    overrides = world.agent.overrides(task_id)
    (container,) = overrides["containerOverrides"]
    (variable,) = container["environment"]
    assert variable["name"] == BUNDLE_URL_ENV
    key = urlsplit(variable["value"]).path.split("/", 2)[2]
    assert key.startswith(f"bundles/{tenant_id}/{spec.owner_id}-")
    s3 = world.client("s3")
    stored = s3.get_object(Bucket=world.settings.bundle_bucket, Key=key)
    assert stored["ServerSideEncryption"] == "AES256"
    assert stored["Body"].read().decode() == "".join(spec.env.values())
    assert len(variable["value"]) < 8192

    # Running: its lines come from CloudWatch Logs, and the wait ends with its exit.
    state = runner.state(task_id)
    assert state is not None and state.running
    pulled_at = datetime.now(UTC) - timedelta(seconds=30)
    world.agent.start(task_id, pulled_at=pulled_at)
    world.agent.log(task_id, tenant_id, "first line", "FTA-RESULT: {}")
    assert [m.id for m in runner.list_managed() if m.owner_id == spec.owner_id] == [task_id]
    world.agent.exit(task_id, 0, after_s=95)
    assert list(runner.follow_logs(task_id)) == ["first line", "FTA-RESULT: {}"]
    status = runner.wait(task_id, 5)
    assert status.exit_code == 0 and not status.oom_killed
    assert status.finished_at is not None and status.started_at is not None
    assert status.finished_at - status.started_at == timedelta(seconds=95)
    assert runner.tail_logs(task_id, 1) == ["FTA-RESULT: {}"]

    # Billed as Fargate bills: 1 vCPU and 2 GiB from the pull's start (100 s) to the stop.
    usage = runner.read_usage(task_id)
    assert usage.cpu_seconds == 100
    assert usage.memory_max_bytes == 2 * GIB

    runner.remove(task_id)
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=world.settings.bundle_bucket, Key=key)
    (managed,) = [m for m in runner.list_managed() if m.owner_id == spec.owner_id]
    assert managed.state == "exited"

    # The next job of the same size reuses the definition.
    again = runner.create(job_spec(runner, settings, tenant_id, network))
    assert world.agent.definition(again)["revision"] == world.agent.definition(task_id)["revision"]
    runner.remove(again)


def test_the_task_definition_carries_every_hardening_field(
    world: EcsWorld, runner: EcsJobRunner, settings: Settings
) -> None:
    tenant_id = new_tenant()
    network = runner.ensure_tenant_network(tenant_id, next(SUBNETS))
    task_id = runner.create(job_spec(runner, settings, tenant_id, network))
    definition = world.agent.definition(task_id)
    assert definition["family"] == f"fta-{INSTANCE}-{tenant_id}-job-1024-2048"
    assert definition["requiresCompatibilities"] == ["FARGATE"]
    assert definition["networkMode"] == "awsvpc"
    assert (definition["cpu"], definition["memory"]) == ("1024", "2048")
    assert definition["taskRoleArn"] == world.settings.job_task_role
    assert definition["executionRoleArn"] == world.settings.job_execution_role
    (container,) = definition["containerDefinitions"]
    assert container["image"] == world.settings.job_image
    assert container["user"] == "10000:10000"
    assert container["readonlyRootFilesystem"] is True
    assert not container.get("privileged")
    assert container["memory"] == 1024
    assert container["linuxParameters"]["capabilities"] == {"add": [], "drop": ["ALL"]}
    assert container["linuxParameters"]["initProcessEnabled"] is True
    assert container["ulimits"] == [{"name": "nproc", "softLimit": 256, "hardLimit": 256}]
    assert 0 < container["stopTimeout"] <= 120
    assert not container.get("portMappings")
    assert not container.get("environment")
    assert container["logConfiguration"] == {
        "logDriver": "awslogs",
        "options": {
            "awslogs-group": world.settings.log_group,
            "awslogs-region": world.settings.region,
            "awslogs-stream-prefix": tenant_id,
        },
    }
    mounts = {
        p["containerPath"]: (p["sourceVolume"], p["readOnly"]) for p in container["mountPoints"]
    }
    assert mounts == {
        "/tmp": ("tmp", False),
        "/freqtrade/user_data": (f"fta-data-{tenant_id}", False),
        "/candles": (settings.candle_volume, True),
    }
    for volume in definition["volumes"]:
        if volume["name"] == "tmp":
            assert "efsVolumeConfiguration" not in volume
            continue
        efs = volume["efsVolumeConfiguration"]
        assert efs["transitEncryption"] == "ENABLED"
        assert efs["authorizationConfig"]["iam"] == "ENABLED"
        assert efs["rootDirectory"] == "/"
    runner.remove(task_id)


def test_a_tenants_task_uses_only_its_own_access_point_and_security_group(
    world: EcsWorld, runner: EcsJobRunner, settings: Settings
) -> None:
    first, second = new_tenant(), new_tenant()
    networks = {
        tenant: runner.ensure_tenant_network(tenant, next(SUBNETS)) for tenant in (first, second)
    }
    assert networks[first].name != networks[second].name
    tasks = {
        tenant: runner.create(job_spec(runner, settings, tenant, networks[tenant]))
        for tenant in (first, second)
    }
    efs = world.client("efs")
    points = {
        p["AccessPointId"]: p
        for p in efs.describe_access_points(FileSystemId=world.settings.efs_file_system)[
            "AccessPoints"
        ]
    }
    ec2 = world.client("ec2")
    for tenant, task_id in tasks.items():
        definition = world.agent.definition(task_id)
        (data,) = [v for v in definition["volumes"] if v["name"] == f"fta-data-{tenant}"]
        point = points[data["efsVolumeConfiguration"]["authorizationConfig"]["accessPointId"]]
        assert point["RootDirectory"]["Path"] == f"/{INSTANCE}/tenants/{tenant}"
        assert point["PosixUser"] == {"Uid": 10000, "Gid": 10000}
        assert {t["Key"]: t["Value"] for t in point["Tags"]}[TAG_TENANT] == tenant
        (attachment,) = world.client("ecs").describe_tasks(
            cluster=world.settings.cluster, tasks=[task_id]
        )["tasks"][0]["attachments"]
        interface = next(
            d["value"] for d in attachment["details"] if d["name"] == "networkInterfaceId"
        )
        (eni,) = ec2.describe_network_interfaces(NetworkInterfaceIds=[interface])[
            "NetworkInterfaces"
        ]
        assert [g["GroupId"] for g in eni["Groups"]] == [networks[tenant].name]
        assert "Association" not in eni  # no public address

    # Each group lets out only to the gateway and the endpoints Fargate needs.
    (group,) = ec2.describe_security_groups(GroupIds=[networks[first].name])["SecurityGroups"]
    assert group["GroupName"] == security_group_name(INSTANCE, first)
    egress = {
        (p["FromPort"], p["ToPort"], peer.get("GroupId") or peer.get("PrefixListId"))
        for p in group["IpPermissionsEgress"]
        for peer in p.get("UserIdGroupPairs", []) + p.get("PrefixListIds", [])
    }
    ecs_settings = world.settings
    assert egress == {
        (8090, 8090, ecs_settings.gateway_security_group),
        (443, 443, ecs_settings.endpoints_security_group),
        (443, 443, ecs_settings.s3_prefix_list),
        (2049, 2049, ecs_settings.efs_security_group),
    }
    assert not any(p.get("IpRanges") for p in group["IpPermissionsEgress"])

    # A spec naming another tenant's group or volume is refused before any task runs.
    before = len(runner.list_managed())
    stray = job_spec(runner, settings, first, networks[second])
    with pytest.raises(ValueError, match="not tenant"):
        runner.create(stray)
    with pytest.raises(ValueError, match="not tenant"):
        dataclasses.replace(stray, mounts=[Mount(f"fta-data-{second}", "/d", read_only=False)])
    assert len(runner.list_managed()) == before
    for task_id in tasks.values():
        runner.remove(task_id)


def test_a_group_opened_behind_fta_is_refused(world: EcsWorld, runner: EcsJobRunner) -> None:
    tenant_id, index = new_tenant(), next(SUBNETS)
    network = runner.ensure_tenant_network(tenant_id, index)
    world.client("ec2").authorize_security_group_egress(
        GroupId=network.name,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 443,
                "ToPort": 443,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
            }
        ],
    )
    with pytest.raises(ResourceMismatch, match="egress allows"):
        runner.ensure_tenant_network(tenant_id, index)


def test_each_tenant_runs_in_its_own_subnet_of_the_pool(
    world: EcsWorld, runner: EcsJobRunner, settings: Settings
) -> None:
    """The gateway tells tenants apart by their source subnet, on ECS as on a host."""
    first, second = new_tenant(), new_tenant()
    indexes = {first: next(SUBNETS), second: next(SUBNETS)}
    ec2 = world.client("ec2")
    for tenant, index in indexes.items():
        network = runner.ensure_tenant_network(tenant, index)
        layout = tenant_subnet(settings.tenant_subnet_pool, settings.tenant_subnet_prefix, index)
        assert network.subnet == str(layout.subnet)
        (subnet,) = ec2.describe_subnets(Filters=[{"Name": "tag:fta:tenant", "Values": [tenant]}])[
            "Subnets"
        ]
        assert subnet["CidrBlock"] == str(layout.subnet)
        assert subnet["VpcId"] == world.settings.vpc_id and not subnet["MapPublicIpOnLaunch"]
        (table,) = ec2.describe_route_tables(
            Filters=[{"Name": "association.subnet-id", "Values": [subnet["SubnetId"]]}]
        )["RouteTables"]
        assert table["RouteTableId"] == world.settings.route_table
        # Its tasks' interfaces are there.
        task_id = runner.create(job_spec(runner, settings, tenant, network))
        (task,) = world.client("ecs").describe_tasks(
            cluster=world.settings.cluster, tasks=[task_id]
        )["tasks"]
        details = {d["name"]: d["value"] for d in task["attachments"][0]["details"]}
        assert details["subnetId"] == subnet["SubnetId"]
        runner.remove(task_id)
    # The same index twice is refused (another tenant's range), and so is a subnet moved to
    # another route table behind fta's back.
    with pytest.raises(ResourceMismatch, match="CidrBlock"):
        runner.ensure_tenant_network(first, indexes[second])
    (subnet,) = ec2.describe_subnets(Filters=[{"Name": "tag:fta:tenant", "Values": [first]}])[
        "Subnets"
    ]
    other = ec2.create_route_table(VpcId=world.settings.vpc_id)["RouteTable"]["RouteTableId"]
    (table,) = ec2.describe_route_tables(
        Filters=[{"Name": "association.subnet-id", "Values": [subnet["SubnetId"]]}]
    )["RouteTables"]
    (association,) = [a for a in table["Associations"] if a.get("SubnetId") == subnet["SubnetId"]]
    ec2.replace_route_table_association(
        AssociationId=association["RouteTableAssociationId"], RouteTableId=other
    )
    with pytest.raises(ResourceMismatch, match="route table"):
        runner.ensure_tenant_network(first, indexes[first])


def test_a_tenants_network_is_removed_with_its_subnet(
    world: EcsWorld, runner: EcsJobRunner
) -> None:
    tenant = new_tenant()
    runner.ensure_tenant_network(tenant, next(SUBNETS))
    runner.remove_tenant_network(tenant)
    ec2 = world.client("ec2")
    assert not ec2.describe_subnets(Filters=[{"Name": "tag:fta:tenant", "Values": [tenant]}])[
        "Subnets"
    ]
    name = security_group_name(INSTANCE, tenant)
    assert not ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]}])[
        "SecurityGroups"
    ]
    runner.remove_tenant_network(tenant)  # gone already: nothing to do


def test_a_bot_runs_until_stopped_and_an_out_of_memory_end_is_told(
    world: EcsWorld, runner: EcsJobRunner, settings: Settings
) -> None:
    tenant_id = new_tenant()
    network = runner.ensure_tenant_network(tenant_id, next(SUBNETS))
    volume = runner.ensure_tenant_volume(tenant_id, GIB)
    bot = container_spec(
        runner,
        settings,
        tenant_id=tenant_id,
        owner_kind="bot",
        owner_id=str(uuid.uuid4()),
        bundle_env={"FTA_BUNDLE_0": "e30="},
        network=network,
        mounts=[Mount(volume, "/freqtrade/user_data", read_only=False)],
        limits=Limits(nano_cpus=500_000_000, memory_bytes=GIB, pids=128, tmpfs_bytes=2**26),
    )
    task_id = runner.create(bot)
    definition = world.agent.definition(task_id)
    assert definition["family"] == f"fta-{INSTANCE}-{tenant_id}-bot-512-1024"
    # Time to copy its trade database back after freqtrade stops; the entry keeps it local.
    assert definition["containerDefinitions"][0]["stopTimeout"] == 90
    environment = world.agent.overrides(task_id)["containerOverrides"][0]["environment"]
    assert {"name": "FTA_DB_SNAPSHOT_SECONDS", "value": "300"} in environment
    world.agent.start(task_id)
    address = runner.container_address(task_id, network.name)
    (task,) = world.client("ecs").describe_tasks(cluster=world.settings.cluster, tasks=[task_id])[
        "tasks"
    ]
    interface = next(
        d["value"] for d in task["attachments"][0]["details"] if d["name"] == "networkInterfaceId"
    )
    (eni,) = world.client("ec2").describe_network_interfaces(NetworkInterfaceIds=[interface])[
        "NetworkInterfaces"
    ]
    assert address == eni["PrivateIpAddress"]
    (managed,) = [m for m in runner.list_managed() if m.id == task_id]
    assert (managed.owner_kind, managed.owner_id, managed.tenant) == (
        "bot",
        bot.owner_id,
        tenant_id,
    )
    runner.stop(task_id, 30)
    state = runner.state(task_id)
    assert state is not None and not state.running
    runner.remove(task_id)

    # A task whose container the kernel killed for its memory.
    task_id = runner.create(bot)
    world.agent.start(task_id)
    world.agent.exit(task_id, 137, reason="OutOfMemoryError: Container killed due to memory usage")
    status = runner.wait(task_id, 5)
    assert (status.exit_code, status.oom_killed) == (137, True)
    runner.remove(task_id)


def test_a_tenants_files_are_measured_against_its_plan_and_erased_with_its_account(
    world: EcsWorld, runner: EcsJobRunner, tenants_mount: Path
) -> None:
    kept, erased = new_tenant(), new_tenant()
    for tenant in (kept, erased):
        runner.ensure_tenant_volume(tenant, GIB)
        # What the tenant's tasks wrote through its access point.
        data = tenants_mount / tenant / "data"
        data.mkdir(parents=True)
        (data / "trades.sqlite").write_bytes(b"x" * 300_000)
        (data / "elsewhere").symlink_to(tenants_mount)
    runner.ensure_tenant_volume(kept, 2 * GIB)  # its plan grew

    usage = {disk.tenant_id: disk for disk in runner.tenant_disk_usage()}
    assert usage[kept].size_bytes == 2 * GIB
    assert usage[erased].size_bytes == GIB
    assert 300_000 <= usage[kept].used_bytes < 400_000  # the link is not followed

    runner.remove_tenant_volume(erased)
    assert not (tenants_mount / erased).exists()
    assert (tenants_mount / kept / "data" / "trades.sqlite").stat().st_size == 300_000
    tenants = {disk.tenant_id for disk in runner.tenant_disk_usage()}
    assert kept in tenants and erased not in tenants
    points = world.client("efs").describe_access_points(
        FileSystemId=world.settings.efs_file_system
    )["AccessPoints"]
    volumes = {t["Value"] for p in points for t in p["Tags"] if t["Key"] == "fta:volume"}
    assert f"fta-data-{kept}" in volumes and f"fta-data-{erased}" not in volumes
    runner.remove_tenant_volume(erased)  # gone already: nothing to do


def test_an_unmounted_file_system_is_told_not_taken_for_empty(
    world: EcsWorld, settings: Settings, tenants_mount: Path
) -> None:
    config = world.settings.model_copy(update={"tenants_mount": str(tenants_mount / "absent")})
    runner = EcsJobRunner(settings, config, session=world.session())
    tenant = new_tenant()
    runner.ensure_tenant_volume(tenant, GIB)
    with pytest.raises(StorageUnavailable, match="not mounted"):
        runner.tenant_disk_usage()
    with pytest.raises(StorageUnavailable, match="not mounted"):
        runner.remove_tenant_volume(tenant)
    runner.close()


def test_every_call_the_runner_makes_is_one_the_worker_role_grants(
    world: EcsWorld, settings: Settings, tenants_mount: Path
) -> None:
    """A job's and a bot's lives, a tenant's files measured and erased, its network removed:
    each AWS action the runner called is in an Allow of the worker's role (deploy/ecs)."""
    called: set[str] = set()

    def record(model: Any, **_: Any) -> None:
        called.add(f"{model.service_model.signing_name}:{model.name}")

    session = world.session()
    session.events.register("before-call", record)
    config = world.settings.model_copy(update={"tenants_mount": str(tenants_mount)})
    runner = EcsJobRunner(settings, config, session=session)
    tenant = new_tenant()
    network = runner.ensure_tenant_network(tenant, next(SUBNETS))
    spec = job_spec(runner, settings, tenant, network)
    task_id = runner.create(spec)
    world.agent.start(task_id)
    world.agent.log(task_id, tenant, "FTA-RESULT: {}")
    world.agent.exit(task_id, 0)
    assert list(runner.follow_logs(task_id)) == ["FTA-RESULT: {}"]
    runner.wait(task_id, 5)
    runner.tail_logs(task_id, 5)
    runner.read_usage(task_id)
    runner.final_usage(task_id)
    runner.container_address(task_id, network.name)
    runner.list_managed()
    runner.remove(task_id)
    bot = dataclasses.replace(spec, owner_kind="bot", owner_id=str(uuid.uuid4()))
    bot_task = runner.create(bot)
    runner.stop(bot_task, 30)
    runner.remove(bot_task)
    runner.volume_created_at(settings.candle_volume)
    runner.ensure_tenant_volume(tenant, 2 * GIB)
    runner.tenant_disk_usage()
    runner.remove_tenant_volume(tenant)
    runner.remove_tenant_network(tenant)
    runner.close()

    worker = role_statements(load(MAIN), "WorkerTaskRole")
    granted = [
        pattern
        for statement in worker
        if statement["Effect"] == "Allow"
        for pattern in (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
    ]
    assert "ecs:RunTask" in called and "elasticfilesystem:DeleteAccessPoint" in called
    missing = {
        action
        for action in called
        if not any(glob_match(pattern, action, ignore_case=True) for pattern in granted)
    }
    assert missing == set()
