"""/api/v1/storage: what the account stores against its plan's storage quotas."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from fta.access.disks import disk_usage
from fta.accounts import service as accounts
from fta.accounts.deps import TenantDep
from fta.jobs import retention
from fta.strategies import service as strategies
from fta.web.deps import SessionDep

router = APIRouter(tags=["plans"])


class StrategyStorageOut(BaseModel):
    versions: int = Field(description="versions stored, hidden strategies' included")
    bytes: int
    max_versions: int
    max_bytes: int


class JobOutputStorageOut(BaseModel):
    bytes: int = Field(description="logs and result files of finished jobs still kept")
    max_bytes: int = Field(description="past it, the oldest jobs' output is deleted first")
    retention_days: int = Field(description="a finished job's output is deleted after it")


class DataDiskOut(BaseModel):
    used_bytes: int = Field(description="bots' and jobs' files on the account's own disk")
    size_bytes: int = Field(description="the disk's size: past it, writes fail")
    measured_at: datetime = Field(description="measured every few minutes")


class StorageOut(BaseModel):
    strategies: StrategyStorageOut
    job_output: JobOutputStorageOut
    data_disk: DataDiskOut | None = Field(description="none before the first job made it")


@router.get("/storage")
def get_storage(tenant_id: TenantDep, session: SessionDep) -> StorageOut:
    tenant = accounts.get_tenant(session, tenant_id)
    code = strategies.storage(session, tenant)
    disk = disk_usage(session, tenant.id)
    return StorageOut(
        strategies=StrategyStorageOut(
            versions=code.versions,
            bytes=code.bytes,
            max_versions=code.max_versions,
            max_bytes=code.max_bytes,
        ),
        job_output=JobOutputStorageOut(
            bytes=retention.tenant_output_bytes(session, tenant.id),
            max_bytes=tenant.plan.max_job_output_bytes,
            retention_days=tenant.plan.job_output_retention_days,
        ),
        data_disk=None
        if disk is None
        else DataDiskOut(
            used_bytes=disk.used_bytes, size_bytes=disk.size_bytes, measured_at=disk.measured_at
        ),
    )
