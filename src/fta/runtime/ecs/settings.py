"""Where the worker runs tasks on ECS: the resources deploy/ecs/ creates, by the names its
stacks output (docs/scaling.md)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class EcsSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FTA_ECS_", env_file=None, extra="ignore", populate_by_name=True
    )

    region: str = Field(default="eu-west-3", validation_alias="AWS_REGION")
    # One AWS-compatible endpoint for every service: a stand-in's, or empty on AWS itself.
    endpoint_url: str | None = None
    cluster: str
    vpc_id: str
    # The job subnets (comma-separated): each tenant's own subnet is made in one of their
    # availability zones, from FTA_TENANT_SUBNET_POOL (a range of the VPC's), as on a host.
    subnets: Annotated[str, Field(min_length=1)]
    # The job subnets' route table (the VPC and the S3 endpoint, no way out): a tenant's
    # subnet gets it too.
    route_table: str
    # The market-data gateway's security group: the one destination of the tasks' traffic to
    # the outside, besides the AWS endpoints below.
    gateway_security_group: str
    # The interface endpoints' (ECR, CloudWatch Logs) group and the S3 gateway endpoint's
    # prefix list: Fargate pulls the image and ships the logs through the task's own network
    # interface, so its security group must let that through.
    endpoints_security_group: str
    s3_prefix_list: str
    efs_file_system: str
    efs_security_group: str
    job_task_role: str
    job_execution_role: str
    log_group: str
    # Where the worker's own task mounts the file system's tenants directory (an access point
    # of its own, as the jobs' user): a tenant's files are measured and erased there.
    tenants_mount: str = "/efs/tenants"
    # Where a job's bundle waits for its task (RunTask's overrides hold 8 KiB in all).
    bundle_bucket: str
    # The job image in ECR (fta's job image, pushed).
    job_image: str
    # The gateway's name in the VPC's service discovery.
    market_data_host: str = "market-data.fta.internal"
    # Where a bot's freqtrade API listens (fta.freqtrade.bot_api.API_PORT): the gateway's
    # relay is let in there.
    bot_api_port: int = 8080
    # How often a bot's trade database, kept on its task's own storage (SQLite and NFS do
    # not mix), is copied back to its EFS directory; once more when it stops.
    bot_db_snapshot_seconds: Annotated[int, Field(ge=10, le=3600)] = 300
    # How often a task's state and its log are read.
    poll_seconds: Annotated[float, Field(gt=0, le=60)] = 2.0

    @property
    def subnet_ids(self) -> list[str]:
        return [part.strip() for part in self.subnets.split(",") if part.strip()]
