"""A stand-in for the AWS account fta's ECS stacks make: moto's server on the loopback,
speaking the ECS, EC2, EFS, IAM, CloudWatch Logs and S3 protocols, so that the worker's own
boto3 calls run against it unchanged.

moto runs no task. `FargateAgent` plays Fargate's part on moto's own records, as the real
one would report it: the image pull and start, the awslogs driver's lines, the container's
exit. moto's task state machine advances on every DescribeTasks by default; it is frozen
here through moto's own API, so a task only moves when the agent (or StopTask) moves it.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from moto.backends import get_backend
from moto.server import ThreadedMotoServer

from fta.runtime.ecs import EcsSettings
from fta.runtime.ecs.task_definition import CONTAINER_NAME
from fta.settings import Settings
from tests.support.s3_standin import CREDENTIALS

ACCOUNT = "123456789012"
REGION = CREDENTIALS["AWS_DEFAULT_REGION"]
CLUSTER = "fta-test"
# The tenants' subnets: a range of the stand-in VPC's, whatever the test session's own
# settings say (its sandbox picks a free pool of its own).
TENANT_POOL = "10.210.0.0/16"
TENANT_PREFIX = 27


def worker_settings(settings: Settings, instance: str) -> Settings:
    """`settings` for a worker of this account: its installation, the VPC's tenant pool."""
    return settings.model_copy(
        update={
            "instance": instance,
            "tenant_subnet_pool": TENANT_POOL,
            "tenant_subnet_prefix": TENANT_PREFIX,
        }
    )


@dataclass
class EcsWorld:
    endpoint: str
    settings: EcsSettings

    def session(self) -> boto3.Session:
        return boto3.Session(
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=REGION,
        )

    def client(self, service: str) -> Any:
        return self.session().client(service, endpoint_url=self.endpoint)

    @property
    def agent(self) -> FargateAgent:
        return FargateAgent(self)


class FargateAgent:
    """What Fargate itself does to a task, written into moto's records."""

    def __init__(self, world: EcsWorld) -> None:
        self._world = world

    def _task(self, task_id: str) -> Any:
        tasks = get_backend("ecs")[ACCOUNT][REGION].tasks[CLUSTER]
        return next(task for arn, task in tasks.items() if arn.endswith(f"/{task_id}"))

    def definition(self, task_id: str) -> dict[str, Any]:
        arn = self._task(task_id).task_definition_arn
        ecs = self._world.client("ecs")
        return dict(ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"])

    def overrides(self, task_id: str) -> dict[str, Any]:
        return dict(self._task(task_id).overrides)

    def start(self, task_id: str, *, pulled_at: datetime | None = None) -> None:
        """The image pulled from `pulled_at` (now) and the container running 5 s later."""
        task = self._task(task_id)
        definition = self.definition(task_id)
        pulled_at = pulled_at or datetime.now(UTC)
        task.cpu, task.memory = definition["cpu"], definition["memory"]
        task.pull_started_at = pulled_at
        task.pull_stopped_at = pulled_at + timedelta(seconds=4)
        task.started_at = pulled_at + timedelta(seconds=5)
        task.last_status = "RUNNING"
        for container in task.containers:
            container.last_status = "RUNNING"
            container.exitCode = None

    def log(self, task_id: str, tenant_id: str, *lines: str) -> None:
        """Lines as the awslogs driver ships them: one event each, in the task's stream."""
        logs = self._world.client("logs")
        group = self._world.settings.log_group
        stream = f"{tenant_id}/{CONTAINER_NAME}/{task_id}"
        existing = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=stream)
        if not existing["logStreams"]:
            logs.create_log_stream(logGroupName=group, logStreamName=stream)
        now = int(datetime.now(UTC).timestamp() * 1000)
        events = [{"timestamp": now, "message": line} for line in lines]
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)

    def exit(self, task_id: str, code: int, *, reason: str = "", after_s: float = 0) -> None:
        """The container exited with `code` (`reason` as ECS words it), the task stopped."""
        task = self._task(task_id)
        stopped = (task.started_at or datetime.now(UTC)) + timedelta(seconds=after_s)
        task.execution_stopped_at = stopped
        task.stopped_at = stopped
        task.last_status = "STOPPED"
        task.desired_status = "STOPPED"
        task.stopped_reason = "Essential container in task exited"
        for container in task.containers:
            container.last_status = "STOPPED"
            container.exitCode = code
            container.reason = reason or None


@contextmanager
def ecs_standin() -> Iterator[EcsWorld]:
    """An account with the network, file system, roles, log group and buckets that
    deploy/ecs/ creates, as the worker's settings name them."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        # moto keeps its accounts in the process: each stand-in starts from an empty one.
        _moto_api(endpoint, "reset")
        _moto_api(
            endpoint,
            "state-manager/set-transition",
            {"model_name": "ecs::task", "transition": {"progression": "manual", "times": 10**9}},
        )
        yield EcsWorld(endpoint, _provision(endpoint))
        _moto_api(endpoint, "reset")
    finally:
        server.stop()


def _moto_api(endpoint: str, path: str, body: dict[str, Any] | None = None) -> None:
    request = urllib.request.Request(  # noqa: S310 - the stand-in on the loopback
        f"{endpoint}/moto-api/{path}", data=json.dumps(body or {}).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        response.read()


def _provision(endpoint: str) -> EcsSettings:
    world = EcsWorld(endpoint, settings=None)  # type: ignore[arg-type]
    ec2, efs, iam = world.client("ec2"), world.client("efs"), world.client("iam")
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    # moto gives a task's interface a DNS name only in a VPC with DNS host names, as AWS does.
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    # The tenants' subnets come from the pool, a range of the VPC's own (fta.settings).
    ec2.associate_vpc_cidr_block(VpcId=vpc, CidrBlock=TENANT_POOL)
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=f"{REGION}{zone}")["Subnet"][
            "SubnetId"
        ]
        for cidr, zone in (("10.40.1.0/24", "a"), ("10.40.2.0/24", "b"))
    ]
    route_table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    for subnet in subnets:
        ec2.associate_route_table(RouteTableId=route_table, SubnetId=subnet)

    def group(name: str) -> str:
        return str(
            ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"]
        )

    prefix_list = ec2.create_managed_prefix_list(
        PrefixListName="com.amazonaws.eu-west-3.s3", MaxEntries=4, AddressFamily="IPv4"
    )["PrefixList"]["PrefixListId"]
    file_system = efs.create_file_system(
        CreationToken="fta-test", Encrypted=True, PerformanceMode="generalPurpose"
    )["FileSystemId"]
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )
    roles = {
        name: iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
        for name in ("fta-test-job-task", "fta-test-job-execution")
    }
    world.client("logs").create_log_group(logGroupName="/fta/test/jobs")
    world.client("s3").create_bucket(
        Bucket="fta-test-bundles", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    world.client("ecs").create_cluster(clusterName=CLUSTER)
    return EcsSettings(
        region=REGION,
        endpoint_url=endpoint,
        cluster=CLUSTER,
        vpc_id=vpc,
        subnets=",".join(subnets),
        route_table=route_table,
        gateway_security_group=group("fta-test-market-data"),
        endpoints_security_group=group("fta-test-endpoints"),
        s3_prefix_list=prefix_list,
        efs_file_system=file_system,
        efs_security_group=group("fta-test-efs"),
        job_task_role=roles["fta-test-job-task"],
        job_execution_role=roles["fta-test-job-execution"],
        log_group="/fta/test/jobs",
        bundle_bucket="fta-test-bundles",
        job_image=f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/fta/freqtrade:2026.9",
        market_data_host="market-data.fta.internal",
        poll_seconds=0.05,
    )
