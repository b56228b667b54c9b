"""The JobRunner on ECS/Fargate, through boto3 with the worker's task role.

Each job or bot is one Fargate task: its own micro-VM, in the tenant's security group, with
the tenant's EFS access point as its data volume, its output in CloudWatch Logs. A task's id
(the last part of its ARN) stands for the container id everywhere the worker keeps one.

What differs from Docker, behind the same calls:
- `create` registers (or reuses) the task definition, checks what ECS stored, and runs the
  task: ECS has no created-but-not-started state, so `start` has nothing left to do;
- the bundle does not fit RunTask's overrides (8 KiB in all): it waits in S3, and the task
  gets a presigned address for it, valid for an hour (fta.freqtrade.entry fetches it);
- no warm containers (a hand-off needs an exec into the task), no Python environment volume;
- usage is what Fargate bills: the task's requested size for the time from the start of its
  image pull to its stop, by the second with one minute at least;
- EFS has no quota per access point: a tenant's files are measured by walking its directory
  where the worker mounts them all (`EcsSettings.tenants_mount`), against the size its plan
  asks for, and erased there when its account is.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from fta.runtime.ecs.fargate import MIB, fargate_size
from fta.runtime.ecs.network import (
    egress_rules,
    ingress_rules,
    ip_permissions,
    security_group_name,
    verify_security_group,
    verify_subnet,
)
from fta.runtime.ecs.settings import EcsSettings
from fta.runtime.ecs.task_definition import (
    CONTAINER_NAME,
    TAG_BOT,
    TAG_INSTANCE,
    TAG_JOB,
    TAG_KIND,
    TAG_TENANT,
    task_definition,
    task_tags,
    verify_task_definition,
)
from fta.runtime.network import tenant_subnet
from fta.runtime.protocol import (
    ContainerRuntimeError,
    ContainerState,
    ExitStatus,
    HandOffFailed,
    HardeningError,
    JobTimeout,
    ManagedContainer,
    ResourceMismatch,
    StorageUnavailable,
    TenantDiskUse,
    TenantNetwork,
    Usage,
)
from fta.runtime.spec import (
    JOB_USER,
    TENANT_ID_RE,
    VOLUME_NAME_RE,
    ContainerSpec,
    tenant_volume_name,
)
from fta.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_efs import EFSClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_s3 import S3Client

# The bundle's variables FTA_BUNDLE_0..N (fta.freqtrade.bundle, below this layer's reach).
BUNDLE_ENV_PREFIX = "FTA_BUNDLE_"
# Tells a bot's entry to keep its trade database local (fta.freqtrade.entry.DB_SNAPSHOT_ENV).
DB_SNAPSHOT_ENV = "FTA_DB_SNAPSHOT_SECONDS"
# The environment variable through which a task is given its bundle's address.
BUNDLE_URL_ENV = f"{BUNDLE_ENV_PREFIX}URL"
BUNDLE_URL_SECONDS = 3600
# RunTask refuses overrides longer than this, in characters of their JSON.
OVERRIDES_MAX_CHARS = 8192
TAG_VOLUME = "fta:volume"
TAG_CREATED_AT = "fta:created-at"
# The size a tenant's plan grants its files (EFS enforces none: it is measured against it).
TAG_SIZE_BYTES = "fta:size-bytes"
# Every task the worker runs carries it (ListTasks filters on it, at most 36 characters).
STARTED_BY_PREFIX = "fta-"
UID, GID = (int(part) for part in JOB_USER.split(":"))


class EcsJobRunner:
    def __init__(
        self,
        settings: Settings,
        ecs: EcsSettings,
        *,
        session: boto3.Session | None = None,
        extra_tags: Mapping[str, str] | None = None,
    ) -> None:
        """Every task and resource this runner creates is tagged with the installation and
        `extra_tags`; `list_managed` only sees tasks that carry them."""
        self._settings = settings
        self._config = ecs
        session = session or boto3.Session(region_name=ecs.region)
        self._ecs: ECSClient = session.client(
            "ecs", region_name=ecs.region, endpoint_url=ecs.endpoint_url
        )
        self._ec2: EC2Client = session.client(
            "ec2", region_name=ecs.region, endpoint_url=ecs.endpoint_url
        )
        self._efs: EFSClient = session.client(
            "efs", region_name=ecs.region, endpoint_url=ecs.endpoint_url
        )
        self._logs: CloudWatchLogsClient = session.client(
            "logs", region_name=ecs.region, endpoint_url=ecs.endpoint_url
        )
        self._s3: S3Client = session.client(
            "s3", region_name=ecs.region, endpoint_url=ecs.endpoint_url
        )
        self._tags = {**(extra_tags or {}), TAG_INSTANCE: settings.instance}
        self._started_by = f"{STARTED_BY_PREFIX}{settings.instance}"
        self._lock = threading.Lock()
        self._access_points: dict[str, str] = {}
        self._definitions: dict[str, str] = {}  # JSON of a definition -> its ARN
        self._bundles: dict[str, str] = {}  # task id -> its bundle's S3 key
        self._subnets: dict[str, str] = {}  # tenant id -> its subnet id
        self._zones: list[str] = []  # the job subnets' availability zones

    def close(self) -> None:
        for client in (self._ecs, self._ec2, self._efs, self._logs, self._s3):
            client.close()

    def market_data_url(self) -> str:
        return f"http://{self._config.market_data_host}:{self._settings.gateway_port}"

    # Tenant resources.

    def ensure_tenant_network(self, tenant_id: str, subnet_index: int) -> TenantNetwork:
        """The tenant's subnet (the `subnet_index`th of the pool, as on a host) and its
        security group."""
        _check_tenant_id(tenant_id)
        settings = self._settings
        layout = tenant_subnet(
            settings.tenant_subnet_pool, settings.tenant_subnet_prefix, subnet_index
        )
        with self._lock:
            subnet = self._ensure_subnet(tenant_id, str(layout.subnet), subnet_index)
            name = security_group_name(settings.instance, tenant_id)
            group = self._find_group(name) or self._create_group(name, tenant_id)
        mismatches = verify_security_group(
            group,
            vpc_id=self._config.vpc_id,
            egress=egress_rules(self._config, settings.gateway_port),
            ingress=ingress_rules(self._config),
        )
        tags = {tag["Key"]: tag["Value"] for tag in group.get("Tags") or []}
        if tags.get(TAG_TENANT) != tenant_id or tags.get(TAG_INSTANCE) != settings.instance:
            mismatches.append(f"tags: {tags}")
        if mismatches:
            raise ResourceMismatch("security group", name, mismatches)
        self._subnets[tenant_id] = subnet
        return TenantNetwork(
            name=group["GroupId"], subnet=str(layout.subnet), gateway_ip="", dns_ip=""
        )

    def remove_tenant_network(self, tenant_id: str) -> None:
        """Removes the tenant's security group, then its subnet; refused while a task of the
        tenant still has its interface there."""
        _check_tenant_id(tenant_id)
        name = security_group_name(self._settings.instance, tenant_id)
        group = self._find_group(name)
        try:
            if group is not None:
                self._ec2.delete_security_group(GroupId=group["GroupId"])
            subnet = self._find_subnet(tenant_id)
            if subnet is not None:
                self._ec2.delete_subnet(SubnetId=subnet["SubnetId"])
        except ClientError as error:
            raise ContainerRuntimeError(f"network of {tenant_id} not removed: {error}") from error
        self._subnets.pop(tenant_id, None)

    def ensure_tenant_volume(self, tenant_id: str, size_bytes: int) -> str:
        """The tenant's access point: its own directory, entered as the job's user. EFS
        grows by itself: `size_bytes` is recorded on it, and the usage measured against it."""
        _check_tenant_id(tenant_id)
        name = tenant_volume_name(tenant_id)
        root = f"/{self._settings.instance}/tenants/{tenant_id}"
        point = self._ensure_access_point(name, root, tenant_id, size_bytes)
        recorded = _tags(point.get("Tags") or []).get(TAG_SIZE_BYTES)
        if recorded != str(size_bytes):
            try:
                self._efs.tag_resource(
                    ResourceId=str(point["AccessPointId"]),
                    Tags=[{"Key": TAG_SIZE_BYTES, "Value": str(size_bytes)}],
                )
            except (ClientError, BotoCoreError) as error:
                raise StorageUnavailable(f"size of {name} not recorded: {error}") from error
        return name

    def remove_tenant_volume(self, tenant_id: str) -> None:
        """Erases the tenant's files, then deletes its access point: its data is gone for
        good. Nothing to do for what is gone already."""
        _check_tenant_id(tenant_id)
        name = tenant_volume_name(tenant_id)
        directory = self._tenants_root() / tenant_id
        try:
            # Links are removed, never followed.
            shutil.rmtree(directory)
        except FileNotFoundError:
            pass
        except OSError as error:
            raise StorageUnavailable(f"files of {name} not erased: {error}") from error
        found = self._find_access_point(name)
        if found is None:
            return
        try:
            self._efs.delete_access_point(AccessPointId=found["AccessPointId"])
        except ClientError as error:
            raise StorageUnavailable(f"access point of {name} not removed: {error}") from error
        self._access_points.pop(name, None)

    def tenant_disk_usage(self) -> list[TenantDiskUse]:
        """Each tenant's files as the file system counts them (its blocks), and the size its
        plan grants."""
        root = self._tenants_root()
        usage = []
        for point in self._tenant_access_points():
            tags = _tags(point.get("Tags") or [])
            tenant_id = tags[TAG_TENANT]
            try:
                used = _directory_bytes(root / tenant_id)
            except OSError as error:
                raise StorageUnavailable(f"files of tenant {tenant_id}: {error}") from error
            usage.append(TenantDiskUse(tenant_id, int(tags.get(TAG_SIZE_BYTES) or 0), used))
        return usage

    def ensure_volume(self, name: str) -> str:
        self._ensure_access_point(name, f"/{self._settings.instance}/shared/{name}", None, None)
        return name

    def volume_created_at(self, name: str) -> datetime:
        found = self._find_access_point(name)
        if found is None:
            raise ContainerRuntimeError(f"volume {name} not found")
        created = _tags(found.get("Tags") or []).get(TAG_CREATED_AT, "")
        try:
            return datetime.fromisoformat(created).astimezone(UTC)
        except ValueError:
            raise ContainerRuntimeError(f"volume {name}: no creation time ({created!r})") from None

    def with_python_env(self, spec: ContainerSpec) -> ContainerSpec:
        # The image's own files: no storage driver slows them on Fargate.
        return spec

    # Tasks.

    def create(self, spec: ContainerSpec) -> str:
        """Runs `spec` as a task, once ECS described its definition as hardened."""
        if spec.handoff:
            raise ValueError("a warm container needs an exec into it: not on ECS")
        if spec.image != self._settings.job_image:
            raise ValueError(f"only the job image runs on ECS, not {spec.image!r}")
        group = self._find_group(security_group_name(self._settings.instance, spec.tenant_id))
        if group is None or group["GroupId"] != spec.network:
            raise ValueError(f"{spec.network} is not tenant {spec.tenant_id}'s security group")
        size = fargate_size(spec.limits.nano_cpus, spec.limits.memory_bytes)
        access_points = {mount.volume: self._access_point_id(mount.volume) for mount in spec.mounts}
        definition = task_definition(
            spec,
            settings=self._config,
            instance=self._settings.instance,
            size=size,
            access_points=access_points,
        )
        definition_arn = self._registered(definition)
        environment, bundle_key = self._environment(spec)
        overrides = {"containerOverrides": [{"name": CONTAINER_NAME, "environment": environment}]}
        if len(json.dumps(overrides)) > OVERRIDES_MAX_CHARS:
            self._delete_bundle(bundle_key)
            raise ValueError(f"the task's environment is over {OVERRIDES_MAX_CHARS} characters")
        tags = [*task_tags(self._settings.instance, spec)]
        tags += [{"key": k, "value": v} for k, v in self._tags.items() if k != TAG_INSTANCE]
        request: dict[str, Any] = {
            "cluster": self._config.cluster,
            "taskDefinition": definition_arn,
            "launchType": "FARGATE",
            "platformVersion": "LATEST",
            "count": 1,
            "networkConfiguration": {
                "awsvpcConfiguration": {
                    "subnets": [self._tenant_subnet_id(spec.tenant_id)],
                    "securityGroups": [spec.network],
                    "assignPublicIp": "DISABLED",
                }
            },
            "overrides": overrides,
            "tags": tags,
            "startedBy": self._started_by,
            "enableExecuteCommand": False,
            "propagateTags": "NONE",
        }
        try:
            response = self._ecs.run_task(**request)
        except (ClientError, BotoCoreError) as error:
            self._delete_bundle(bundle_key)
            raise ContainerRuntimeError(f"task not run: {error}") from error
        tasks = response.get("tasks") or []
        if not tasks:
            self._delete_bundle(bundle_key)
            reasons = [f.get("reason", "") for f in response.get("failures") or []]
            raise ContainerRuntimeError(f"task not run: {'; '.join(reasons) or 'no task'}")
        task_id = _task_id(tasks[0]["taskArn"])
        if bundle_key:
            self._bundles[task_id] = bundle_key
        return task_id

    def start(self, container_id: str) -> None:
        """Nothing: `create` ran the task, which starts as soon as Fargate placed it."""

    def hand_off(self, container_id: str, env: dict[str, str], timeout_s: float) -> None:
        raise HandOffFailed("ECS tasks take no hand-off: they are run with their job")

    def follow_logs(self, container_id: str, *, since: datetime | None = None) -> Iterator[str]:
        """The task's lines from CloudWatch Logs as they come, until it stopped and its log
        has nothing more."""
        stream = self._log_stream(container_id)
        token: str | None = None
        stopped_seen = False
        while True:
            events, next_token = self._log_events(stream, token, since)
            yield from (str(event.get("message", "")) for event in events)
            if events or next_token != token:
                token = next_token
                continue
            # Nothing new: the end once the task stopped and one more read found nothing.
            if stopped_seen:
                return
            task = self._describe(container_id)
            stopped_seen = task is None or task.get("lastStatus") == "STOPPED"
            if not stopped_seen:
                time.sleep(self._config.poll_seconds)

    def tail_logs(self, container_id: str, lines: int) -> list[str]:
        stream = self._log_stream(container_id)
        try:
            response = self._logs.get_log_events(
                logGroupName=self._config.log_group,
                logStreamName=stream,
                startFromHead=False,
                limit=max(1, lines),
            )
        except ClientError as error:
            if _code(error) == "ResourceNotFoundException":
                return []
            raise ContainerRuntimeError(f"log of {container_id} unreadable: {error}") from error
        return [str(event.get("message", "")) for event in response.get("events") or []]

    def wait(self, container_id: str, timeout_s: float) -> ExitStatus:
        deadline = time.monotonic() + timeout_s
        while True:
            task = self._describe(container_id)
            if task is None:
                raise ContainerRuntimeError(f"task {container_id} not found")
            if task.get("lastStatus") == "STOPPED":
                state = _state(task)
                return ExitStatus(
                    state.exit_code, state.oom_killed, state.started_at, state.finished_at
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise JobTimeout(container_id, timeout_s)
            time.sleep(min(self._config.poll_seconds, remaining))

    def state(self, container_id: str) -> ContainerState | None:
        task = self._describe(container_id)
        return None if task is None else _state(task)

    def container_address(self, container_id: str, network: str) -> str | None:
        """The task's private address (its interface is in `network`, the tenant's group)."""
        task = self._describe(container_id)
        for attachment in (task or {}).get("attachments") or []:
            if attachment.get("type") != "ElasticNetworkInterface":
                continue
            for detail in attachment.get("details") or []:
                if detail.get("name") == "privateIPv4Address" and detail.get("value"):
                    return str(detail["value"])
        return None

    def stop(self, container_id: str, timeout_s: int) -> None:
        """SIGTERM, then SIGKILL after the definition's stopTimeout (Fargate caps it at
        120 s, so `timeout_s` cannot lengthen it)."""
        self._stop_task(container_id, "stopped by fta")

    def kill(self, container_id: str) -> None:
        self._stop_task(container_id, "killed by fta")

    def remove(self, container_id: str) -> None:
        """Stops the task if it runs, and deletes its bundle; ECS forgets a stopped task by
        itself within about an hour."""
        self._stop_task(container_id, "removed by fta")
        self._delete_bundle(self._bundles.pop(container_id, None))

    def read_usage(self, container_id: str) -> Usage:
        task = self._describe(container_id)
        if task is None:
            raise ContainerRuntimeError(f"usage of {container_id} unreadable: no such task")
        return billed_usage(task, datetime.now(UTC))

    def final_usage(self, container_id: str) -> Usage | None:
        task = self._describe(container_id)
        if task is None or task.get("lastStatus") != "STOPPED":
            return None
        return billed_usage(task, datetime.now(UTC))

    def list_managed(self) -> list[ManagedContainer]:
        ids: list[str] = []
        for desired in ("RUNNING", "STOPPED"):
            pages = self._ecs.get_paginator("list_tasks").paginate(
                cluster=self._config.cluster, startedBy=self._started_by, desiredStatus=desired
            )
            ids += [_task_id(arn) for page in pages for arn in page.get("taskArns") or []]
        managed = []
        for first in range(0, len(ids), 100):
            for task in self._describe_many(ids[first : first + 100]):
                tags = _tags(task.get("tags") or [], key="key", value="value")
                if any(tags.get(key) != value for key, value in self._tags.items()):
                    continue
                managed.append(
                    ManagedContainer(
                        id=_task_id(task["taskArn"]),
                        tenant=tags.get(TAG_TENANT, ""),
                        owner_kind=tags.get(TAG_KIND, ""),
                        owner_id=tags.get(TAG_BOT) or tags.get(TAG_JOB) or "",
                        state="exited" if task.get("lastStatus") == "STOPPED" else "running",
                    )
                )
        return managed

    # Helpers.

    def _describe(self, task_id: str) -> dict[str, Any] | None:
        found = self._describe_many([task_id])
        return found[0] if found else None

    def _describe_many(self, task_ids: list[str]) -> list[dict[str, Any]]:
        try:
            response = self._ecs.describe_tasks(
                cluster=self._config.cluster, tasks=task_ids, include=["TAGS"]
            )
        except (ClientError, BotoCoreError) as error:
            raise ContainerRuntimeError(f"tasks not described: {error}") from error
        return [dict(task) for task in response.get("tasks") or []]

    def _stop_task(self, task_id: str, reason: str) -> None:
        task = self._describe(task_id)
        if task is None or task.get("lastStatus") == "STOPPED":
            return
        try:
            self._ecs.stop_task(cluster=self._config.cluster, task=task_id, reason=reason)
        except ClientError as error:
            raise ContainerRuntimeError(f"task {task_id} not stopped: {error}") from error

    def _registered(self, definition: dict[str, Any]) -> str:
        """The ARN of a definition equal to `definition`, registered now if none is."""
        key = json.dumps(definition, sort_keys=True)
        known = self._definitions.get(key)
        if known is not None:
            return known
        stored: dict[str, Any] | None
        try:
            stored = dict(
                self._ecs.describe_task_definition(taskDefinition=definition["family"])[
                    "taskDefinition"
                ]
            )
            if verify_task_definition(definition, stored):
                stored = None  # the family's latest is another: a new revision
        except ClientError:
            stored = None  # no definition of that family yet
        if stored is None:
            registered = self._ecs.register_task_definition(**definition)["taskDefinition"]
            arn = registered["taskDefinitionArn"]
            stored = dict(self._ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"])
            mismatches = verify_task_definition(definition, stored)
            if mismatches:
                self._ecs.deregister_task_definition(taskDefinition=arn)
                raise HardeningError(mismatches)
        arn = str(stored["taskDefinitionArn"])
        self._definitions[key] = arn
        return arn

    def _environment(self, spec: ContainerSpec) -> tuple[list[dict[str, str]], str | None]:
        """The task's environment, with the bundle put in S3 and replaced by its address."""
        bundle = [spec.env[name] for name in _bundle_names(spec.env)]
        environment = [
            {"name": name, "value": value}
            for name, value in spec.env.items()
            if not name.startswith(BUNDLE_ENV_PREFIX)
        ]
        if spec.owner_kind == "bot":
            # Its data directory is on EFS: the entry keeps the trade database local.
            seconds = str(self._config.bot_db_snapshot_seconds)
            environment.append({"name": DB_SNAPSHOT_ENV, "value": seconds})
        if not bundle:
            return environment, None
        key = f"bundles/{spec.tenant_id}/{spec.owner_id}-{secrets.token_hex(8)}"
        bucket = self._config.bundle_bucket
        try:
            self._s3.put_object(
                Bucket=bucket,
                Key=key,
                Body="".join(bundle).encode("ascii"),
                ServerSideEncryption="AES256",
            )
            url = self._s3.generate_presigned_url(
                "get_object",
                Params={"Bucket": bucket, "Key": key},
                ExpiresIn=BUNDLE_URL_SECONDS,
            )
        except (ClientError, BotoCoreError) as error:
            raise ContainerRuntimeError(f"bundle not stored: {error}") from error
        environment.append({"name": BUNDLE_URL_ENV, "value": url})
        return environment, key

    def _delete_bundle(self, key: str | None) -> None:
        if key is not None:
            try:
                self._s3.delete_object(Bucket=self._config.bundle_bucket, Key=key)
            except (ClientError, BotoCoreError) as error:
                # The bucket's lifecycle rule removes it within a day anyway.
                raise ContainerRuntimeError(f"bundle {key} not deleted: {error}") from error

    def _log_stream(self, task_id: str) -> str:
        task = self._describe(task_id)
        if task is None:
            raise ContainerRuntimeError(f"task {task_id} not found")
        tenant = _tags(task.get("tags") or [], key="key", value="value").get(TAG_TENANT, "")
        # The awslogs driver's name: prefix/container/task id.
        return f"{tenant}/{CONTAINER_NAME}/{task_id}"

    def _log_events(
        self, stream: str, token: str | None, since: datetime | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        arguments: dict[str, Any] = {
            "logGroupName": self._config.log_group,
            "logStreamName": stream,
            "startFromHead": True,
        }
        if token is not None:
            arguments["nextToken"] = token
        elif since is not None:
            arguments["startTime"] = int(since.timestamp() * 1000)
        try:
            response = self._logs.get_log_events(**arguments)
        except ClientError as error:
            if _code(error) == "ResourceNotFoundException":
                return [], token  # the driver creates the stream when the task starts
            raise ContainerRuntimeError(f"log {stream} unreadable: {error}") from error
        return [dict(e) for e in response.get("events") or []], response.get("nextForwardToken")

    def _tenant_subnet_id(self, tenant_id: str) -> str:
        known = self._subnets.get(tenant_id)
        if known is None:
            found = self._find_subnet(tenant_id)
            if found is None:
                raise ContainerRuntimeError(f"tenant {tenant_id} has no subnet")
            known = self._subnets[tenant_id] = str(found["SubnetId"])
        return known

    def _find_subnet(self, tenant_id: str) -> dict[str, Any] | None:
        subnets = self._ec2.describe_subnets(
            Filters=[
                {"Name": "vpc-id", "Values": [self._config.vpc_id]},
                {"Name": f"tag:{TAG_INSTANCE}", "Values": [self._settings.instance]},
                {"Name": f"tag:{TAG_TENANT}", "Values": [tenant_id]},
            ]
        )["Subnets"]
        if len(subnets) > 1:
            raise ResourceMismatch("subnet", tenant_id, [f"{len(subnets)} subnets, not 1"])
        return dict(subnets[0]) if subnets else None

    def _ensure_subnet(self, tenant_id: str, cidr: str, index: int) -> str:
        subnet = self._find_subnet(tenant_id)
        if subnet is None:
            zones = self._job_zones()
            tags = [
                {"Key": k, "Value": v} for k, v in {**self._tags, TAG_TENANT: tenant_id}.items()
            ]
            request: dict[str, Any] = {
                "VpcId": self._config.vpc_id,
                "CidrBlock": cidr,
                # Tenants spread over the zones of the job subnets.
                "AvailabilityZone": zones[index % len(zones)],
                "TagSpecifications": [{"ResourceType": "subnet", "Tags": tags}],
            }
            try:
                subnet = dict(self._ec2.create_subnet(**request)["Subnet"])
                self._ec2.associate_route_table(
                    RouteTableId=self._config.route_table, SubnetId=subnet["SubnetId"]
                )
            except ClientError as error:
                raise ContainerRuntimeError(f"subnet of {tenant_id} not made: {error}") from error
        associations = self._ec2.describe_route_tables(
            Filters=[{"Name": "association.subnet-id", "Values": [subnet["SubnetId"]]}]
        )["RouteTables"]
        route_table = str(associations[0]["RouteTableId"]) if associations else None
        mismatches = verify_subnet(
            subnet,
            vpc_id=self._config.vpc_id,
            cidr=cidr,
            route_table=route_table,
            expected=self._config.route_table,
        )
        if mismatches:
            raise ResourceMismatch("subnet", str(subnet["SubnetId"]), mismatches)
        return str(subnet["SubnetId"])

    def _job_zones(self) -> list[str]:
        if not self._zones:
            subnets = self._ec2.describe_subnets(SubnetIds=self._config.subnet_ids)["Subnets"]
            self._zones = sorted({str(subnet["AvailabilityZone"]) for subnet in subnets})
        return self._zones

    def _find_group(self, name: str) -> dict[str, Any] | None:
        groups = self._ec2.describe_security_groups(
            Filters=[
                {"Name": "group-name", "Values": [name]},
                {"Name": "vpc-id", "Values": [self._config.vpc_id]},
            ]
        )["SecurityGroups"]
        return dict(groups[0]) if groups else None

    def _create_group(self, name: str, tenant_id: str) -> dict[str, Any]:
        tags = [{"Key": k, "Value": v} for k, v in {**self._tags, TAG_TENANT: tenant_id}.items()]
        request: dict[str, Any] = {
            "GroupName": name,
            "Description": f"fta tenant {tenant_id}: the market-data gateway and AWS endpoints",
            "VpcId": self._config.vpc_id,
            "TagSpecifications": [{"ResourceType": "security-group", "Tags": tags}],
        }
        group_id = self._ec2.create_security_group(**request)["GroupId"]
        # A new group lets everything out: that rule goes before any of ours comes in.
        self._ec2.revoke_security_group_egress(
            GroupId=group_id,
            IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
        )
        self._ec2.authorize_security_group_egress(
            GroupId=group_id,
            IpPermissions=ip_permissions(egress_rules(self._config, self._settings.gateway_port)),  # type: ignore[arg-type]
        )
        self._ec2.authorize_security_group_ingress(
            GroupId=group_id,
            IpPermissions=ip_permissions(ingress_rules(self._config)),  # type: ignore[arg-type]
        )
        found = self._find_group(name)
        if found is None:
            raise ContainerRuntimeError(f"security group {name} vanished after its creation")
        return found

    def _tenants_root(self) -> Path:
        root = Path(self._config.tenants_mount)
        if not root.is_dir():
            raise StorageUnavailable(f"the tenants' file system is not mounted at {root}")
        return root

    def _tenant_access_points(self) -> Iterator[dict[str, Any]]:
        for point in self._access_point_list():
            tags = _tags(point.get("Tags") or [])
            tenant_id = tags.get(TAG_TENANT, "")
            if TENANT_ID_RE.fullmatch(tenant_id) and tags.get(TAG_VOLUME) == tenant_volume_name(
                tenant_id
            ):
                yield point

    def _ensure_access_point(
        self, name: str, root: str, tenant_id: str | None, size_bytes: int | None
    ) -> dict[str, Any]:
        if not VOLUME_NAME_RE.fullmatch(name):
            raise ValueError(f"not an fta volume name: {name!r}")
        with self._lock:
            found = self._find_access_point(name)
            if found is None:
                found = self._create_access_point(name, root, tenant_id, size_bytes)
        posix = found.get("PosixUser") or {}
        mismatches = []
        if (posix.get("Uid"), posix.get("Gid"), posix.get("SecondaryGids") or []) != (UID, GID, []):
            mismatches.append(f"PosixUser: {posix}")
        if (found.get("RootDirectory") or {}).get("Path") != root:
            mismatches.append(f"RootDirectory: {found.get('RootDirectory')}, not {root}")
        if found.get("FileSystemId") != self._config.efs_file_system:
            mismatches.append(f"FileSystemId: {found.get('FileSystemId')}")
        if mismatches:
            raise ResourceMismatch("access point", name, mismatches)
        self._access_points[name] = str(found["AccessPointId"])
        return found

    def _access_point_id(self, name: str) -> str:
        known = self._access_points.get(name)
        if known is not None:
            return known
        found = self._find_access_point(name)
        if found is None:
            raise StorageUnavailable(f"volume {name} has no access point")
        self._access_points[name] = str(found["AccessPointId"])
        return self._access_points[name]

    def _find_access_point(self, name: str) -> dict[str, Any] | None:
        for point in self._access_point_list():
            if _tags(point.get("Tags") or []).get(TAG_VOLUME) == name:
                return point
        return None

    def _access_point_list(self) -> list[dict[str, Any]]:
        """This installation's access points on the file system, but those being deleted."""
        found = []
        try:
            pages = self._efs.get_paginator("describe_access_points").paginate(
                FileSystemId=self._config.efs_file_system
            )
            for page in pages:
                for point in page.get("AccessPoints") or []:
                    tags = _tags(point.get("Tags") or [])
                    if (
                        tags.get(TAG_INSTANCE) == self._tags[TAG_INSTANCE]
                        and point.get("LifeCycleState") != "deleting"
                    ):
                        found.append(dict(point))
        except (ClientError, BotoCoreError) as error:
            raise StorageUnavailable(f"access points unreadable: {error}") from error
        return found

    def _create_access_point(
        self, name: str, root: str, tenant_id: str | None, size_bytes: int | None
    ) -> dict[str, Any]:
        tags = {**self._tags, TAG_VOLUME: name, TAG_CREATED_AT: datetime.now(UTC).isoformat()}
        if tenant_id is not None:
            tags[TAG_TENANT] = tenant_id
        if size_bytes is not None:
            tags[TAG_SIZE_BYTES] = str(size_bytes)
        try:
            created = self._efs.create_access_point(
                # The same token twice gives the same access point: two workers make one.
                ClientToken=f"{self._settings.instance}-{name}"[:64],
                FileSystemId=self._config.efs_file_system,
                PosixUser={"Uid": UID, "Gid": GID},
                RootDirectory={
                    "Path": root,
                    "CreationInfo": {"OwnerUid": UID, "OwnerGid": GID, "Permissions": "0750"},
                },
                Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
            )
        except (ClientError, BotoCoreError) as error:
            raise StorageUnavailable(f"access point of {name} not created: {error}") from error
        return dict(created)


def billed_usage(task: Mapping[str, Any], now: datetime) -> Usage:
    """What Fargate bills for `task`: its CPU and memory as requested, from the start of its
    image pull to its stop (or `now`), by the second, one minute at least. Nothing before the
    pull starts."""
    started = task.get("pullStartedAt") or task.get("startedAt")
    if started is None:
        return Usage(cpu_seconds=0.0, memory_max_bytes=0)
    ended = task.get("stoppedAt") or task.get("executionStoppedAt") or now
    seconds = max(60, math.ceil((_utc(ended) - _utc(started)).total_seconds()))
    cpu_units = int(task.get("cpu") or 0)
    return Usage(
        cpu_seconds=cpu_units / 1024 * seconds,
        memory_max_bytes=int(task.get("memory") or 0) * MIB,
    )


def _state(task: Mapping[str, Any]) -> ContainerState:
    container: Mapping[str, Any] = next(
        (c for c in task.get("containers") or [] if c.get("name") == CONTAINER_NAME), {}
    )
    reason = f"{container.get('reason') or ''} {task.get('stoppedReason') or ''}"
    exit_code = container.get("exitCode")
    stopped = task.get("lastStatus") == "STOPPED"
    return ContainerState(
        running=not stopped,
        # A task stopped before its container ran (no image, no capacity) has no code.
        exit_code=int(exit_code) if exit_code is not None else (-1 if stopped else 0),
        oom_killed="OutOfMemory" in reason,
        started_at=_utc_or_none(task.get("startedAt")),
        finished_at=_utc_or_none(task.get("stoppedAt") or task.get("executionStoppedAt")),
    )


def _directory_bytes(directory: Path) -> int:
    """The bytes of the blocks under `directory` (none if it is not there yet), links not
    followed."""
    total = 0
    for path, directories, files in os.walk(directory, onerror=_raise):
        for name in [*directories, *files]:
            total += os.lstat(os.path.join(path, name)).st_blocks * 512
    return total


def _raise(error: OSError) -> None:
    if not isinstance(error, FileNotFoundError):
        raise error


def _bundle_names(env: Mapping[str, str]) -> list[str]:
    names: list[str] = []
    while f"{BUNDLE_ENV_PREFIX}{len(names)}" in env:
        names.append(f"{BUNDLE_ENV_PREFIX}{len(names)}")
    return names


def _task_id(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def _tags(tags: list[Any], *, key: str = "Key", value: str = "Value") -> dict[str, str]:
    return {str(tag[key]): str(tag[value]) for tag in tags}


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _utc_or_none(value: datetime | None) -> datetime | None:
    return _utc(value) if value is not None else None


def _check_tenant_id(tenant_id: str) -> None:
    if not TENANT_ID_RE.fullmatch(tenant_id):
        raise ValueError(f"not a tenant id: {tenant_id!r}")
