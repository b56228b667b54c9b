"""Job containers: hardened specs, their verification, and the runners that drive them."""

from fta.runtime.cgroup import TenantCgroupUsage, cgroup_parent, read_tenant_usage
from fta.runtime.docker_runner import CREATE_BODY_MAX_BYTES, DockerJobRunner
from fta.runtime.protocol import (
    ContainerRuntimeError,
    ContainerState,
    ExitStatus,
    HandOffFailed,
    HardeningError,
    JobRunner,
    JobTimeout,
    ManagedContainer,
    ResourceMismatch,
    StorageUnavailable,
    TenantDiskUse,
    TenantNetwork,
    Usage,
)
from fta.runtime.spec import (
    MARKET_DATA_HOSTNAME,
    ContainerSpec,
    Limits,
    Mount,
    container_create_body,
    tenant_network_name,
    tenant_volume_name,
)
from fta.runtime.verify import verify_hardening

__all__ = [
    "CREATE_BODY_MAX_BYTES",
    "MARKET_DATA_HOSTNAME",
    "ContainerRuntimeError",
    "ContainerSpec",
    "ContainerState",
    "DockerJobRunner",
    "ExitStatus",
    "HandOffFailed",
    "HardeningError",
    "JobRunner",
    "JobTimeout",
    "Limits",
    "ManagedContainer",
    "Mount",
    "ResourceMismatch",
    "StorageUnavailable",
    "TenantCgroupUsage",
    "TenantDiskUse",
    "TenantNetwork",
    "Usage",
    "cgroup_parent",
    "container_create_body",
    "read_tenant_usage",
    "tenant_network_name",
    "tenant_volume_name",
    "verify_hardening",
]
