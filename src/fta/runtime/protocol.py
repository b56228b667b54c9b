"""The interface the worker drives job containers through, whatever runs them.

`DockerJobRunner` implements it on one host through the socket proxy, `EcsJobRunner`
(fta.runtime.ecs) on ECS/Fargate, with the same calls, states and errors; `FTA_RUNNER`
chooses. Every call blocks: the worker calls the runner from a thread, never from async code.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from fta.runtime.spec import MARKET_DATA_HOSTNAME, ContainerSpec


@dataclass(frozen=True)
class TenantNetwork:
    """A Docker network, or on ECS a security group (its id as `name`, the other fields
    empty: the gateway has a name in the VPC's DNS, which its DNS Firewall restricts)."""

    name: str
    subnet: str
    # The market-data gateway's fixed address on this network.
    gateway_ip: str
    # A reserved address of the subnet that nobody answers on: no outside name resolves.
    dns_ip: str

    @property
    def extra_hosts(self) -> dict[str, str]:
        return {MARKET_DATA_HOSTNAME: self.gateway_ip} if self.gateway_ip else {}

    @property
    def dns(self) -> list[str]:
        return [self.dns_ip] if self.dns_ip else []


@dataclass(frozen=True)
class ExitStatus:
    exit_code: int
    oom_killed: bool
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class ContainerState:
    running: bool
    exit_code: int
    oom_killed: bool
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class Usage:
    cpu_seconds: float
    # Memory in use now, page cache excluded (keep the max of samples: that is the peak).
    memory_max_bytes: int


@dataclass(frozen=True)
class TenantDiskUse:
    """A tenant's data disk: its size and the bytes its files take."""

    tenant_id: str
    size_bytes: int
    used_bytes: int


@dataclass(frozen=True)
class ManagedContainer:
    id: str
    tenant: str
    owner_kind: str
    owner_id: str
    state: str


class ContainerRuntimeError(Exception):
    """Base of the runtime's own errors."""


class HardeningError(ContainerRuntimeError):
    """The engine stored a container that differs from the hardened spec; it was removed."""

    def __init__(self, mismatches: list[str]) -> None:
        super().__init__("container failed hardening verification: " + "; ".join(mismatches))
        self.mismatches = mismatches


class ResourceMismatch(ContainerRuntimeError):
    """A network or volume with fta's name exists with other settings: never reused."""

    def __init__(self, kind: str, name: str, mismatches: list[str]) -> None:
        super().__init__(f"{kind} {name} differs from what fta creates: " + "; ".join(mismatches))
        self.kind = kind
        self.name = name
        self.mismatches = mismatches


class StorageUnavailable(ContainerRuntimeError):
    """The tenant's data file system could not be provided (helper down, host disk trouble)."""


class HandOffFailed(ContainerRuntimeError):
    """A warm container did not take its job: it must be removed, and the job run cold."""


class JobTimeout(ContainerRuntimeError):
    """The container was still running at the deadline (it is left running: kill it)."""

    def __init__(self, container_id: str, timeout_s: float) -> None:
        super().__init__(f"container {container_id} still running after {timeout_s:.0f} s")
        self.container_id = container_id
        self.timeout_s = timeout_s


class JobRunner(Protocol):
    def market_data_url(self) -> str:
        """The market-data gateway as a job or a bot reaches it."""
        ...

    def ensure_tenant_network(self, tenant_id: str, subnet_index: int) -> TenantNetwork: ...

    def remove_tenant_network(self, tenant_id: str) -> None: ...

    def ensure_tenant_volume(self, tenant_id: str, size_bytes: int) -> str: ...

    def remove_tenant_volume(self, tenant_id: str) -> None: ...

    def tenant_disk_usage(self) -> list[TenantDiskUse]: ...

    def ensure_volume(self, name: str) -> str: ...

    def volume_created_at(self, name: str) -> datetime: ...

    def with_python_env(self, spec: ContainerSpec) -> ContainerSpec: ...

    def create(self, spec: ContainerSpec) -> str: ...

    def start(self, container_id: str) -> None: ...

    def hand_off(self, container_id: str, env: dict[str, str], timeout_s: float) -> None: ...

    def follow_logs(self, container_id: str, *, since: datetime | None = None) -> Iterator[str]: ...

    def state(self, container_id: str) -> ContainerState | None: ...

    def container_address(self, container_id: str, network: str) -> str | None: ...

    def tail_logs(self, container_id: str, lines: int) -> list[str]: ...

    def stop(self, container_id: str, timeout_s: int) -> None: ...

    def wait(self, container_id: str, timeout_s: float) -> ExitStatus: ...

    def read_usage(self, container_id: str) -> Usage: ...

    def final_usage(self, container_id: str) -> Usage | None:
        """What a stopped container used in all, when the runner still knows it (on ECS,
        what Fargate bills); None when it does not (Docker's counters go with its cgroup)."""
        ...

    def kill(self, container_id: str) -> None: ...

    def remove(self, container_id: str) -> None: ...

    def list_managed(self) -> list[ManagedContainer]: ...
