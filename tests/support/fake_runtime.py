"""An in-memory `JobRunner`: the worker's decisions tested without Docker.

Every call is recorded (`FakeRuntime.calls`). What a container does is scripted before it
runs: `FakeRuntime.script(...)` queues an `Outcome` for the next container that runs a job or
a bot, in order (a container created and started, or a warm one handed its job), or for the
next one of an owner kind only (`owner_kind="cache-fill"`). A container without a script runs
until it is stopped or killed. Time is real but short: a container
"runs" for its script's `seconds`, and `wait` returns as soon as it ended.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fta.runtime import (
    ContainerRuntimeError,
    ContainerSpec,
    ContainerState,
    ExitStatus,
    HandOffFailed,
    JobTimeout,
    ManagedContainer,
    Mount,
    TenantDiskUse,
    TenantNetwork,
    Usage,
)
from fta.runtime.spec import (
    PYTHON_ENV_TARGET,
    market_data_url,
    tenant_network_name,
    tenant_volume_name,
)

FAKE_IMAGE_ID = "sha256:" + "f" * 64
FAKE_PYTHON_ENV = "fta-python-env-fake"
KILLED = 137
STOPPED = 143
USAGE = Usage(1.25, 64 * 1024 * 1024)
# When the fake's volumes were made: before anything a test records.
VOLUMES_CREATED_AT = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Outcome:
    """How a scripted container ends: `seconds` after it starts running its job (math.inf:
    never on its own), with `exit_code`, or killed for its memory (`oom`)."""

    exit_code: int = 0
    lines: tuple[str, ...] = ()
    usage: Usage = USAGE
    oom: bool = False
    seconds: float = 0.0


@dataclass
class FakeContainer:
    id: str
    spec: ContainerSpec
    outcome: Outcome | None = None
    started_at: float | None = None
    ended: ExitStatus | None = None
    handed_env: dict[str, str] | None = None

    @property
    def running(self) -> bool:
        return self.started_at is not None and self.ended is None


@dataclass
class FakeRuntime:
    calls: list[tuple[str, str]] = field(default_factory=list)
    containers: dict[str, FakeContainer] = field(default_factory=dict)
    # Every container ever created, by id, removed ones included.
    created: dict[str, ContainerSpec] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    networks: dict[str, TenantNetwork] = field(default_factory=dict)
    volumes: dict[str, int | None] = field(default_factory=dict)
    # Tenant id -> (disk size, bytes used), as ensure_tenant_volume made them.
    disks: dict[str, tuple[int, int]] = field(default_factory=dict)
    # The next warm containers to refuse their hand-off.
    refuse_hand_offs: int = 0
    # Where jobs reach the market-data gateway (Settings.gateway_port's default).
    gateway_port: int = 8090
    # The next creations to fail with this error.
    create_errors: deque[ContainerRuntimeError] = field(default_factory=deque)
    _outcomes: dict[str | None, deque[Outcome]] = field(default_factory=dict)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- scripting ----------------------------------------------------------------------

    def script(self, *outcomes: Outcome, owner_kind: str | None = None) -> None:
        """The outcomes of the next containers that run a job or a bot (of `owner_kind`
        only, when given), in order."""
        self._outcomes.setdefault(owner_kind, deque()).extend(outcomes)

    def plant(self, spec: ContainerSpec, *, running: bool = True) -> str:
        """A container that exists without the worker having made it (a leftover)."""
        container_id = self.create(spec)
        if running:
            self.containers[container_id].started_at = time.monotonic()
        return container_id

    def called(self, name: str) -> list[str]:
        """The container ids (or names) `name` was called with, in order."""
        return [argument for call, argument in self.calls if call == name]

    # --- JobRunner ----------------------------------------------------------------------

    def market_data_url(self) -> str:
        return market_data_url(self.gateway_port)

    def ensure_tenant_network(self, tenant_id: str, subnet_index: int) -> TenantNetwork:
        self.calls.append(("ensure_tenant_network", tenant_id))
        network = TenantNetwork(
            name=tenant_network_name(tenant_id),
            subnet=f"10.{subnet_index // 256}.{subnet_index % 256}.0/24",
            gateway_ip="10.0.0.2",
            dns_ip="10.0.0.3",
        )
        self.networks[tenant_id] = network
        return network

    def remove_tenant_network(self, tenant_id: str) -> None:
        self.calls.append(("remove_tenant_network", tenant_id))
        self.networks.pop(tenant_id, None)

    def ensure_tenant_volume(self, tenant_id: str, size_bytes: int) -> str:
        name = tenant_volume_name(tenant_id)
        self.calls.append(("ensure_tenant_volume", name))
        self.volumes[name] = size_bytes
        size, used = self.disks.get(tenant_id, (0, 0))
        self.disks[tenant_id] = (max(size, size_bytes), used)  # disks never shrink
        return name

    def remove_tenant_volume(self, tenant_id: str) -> None:
        name = tenant_volume_name(tenant_id)
        self.calls.append(("remove_tenant_volume", name))
        self.volumes.pop(name, None)
        self.disks.pop(tenant_id, None)

    def tenant_disk_usage(self) -> list[TenantDiskUse]:
        self.calls.append(("tenant_disk_usage", ""))
        return [TenantDiskUse(t, size, used) for t, (size, used) in sorted(self.disks.items())]

    def ensure_volume(self, name: str) -> str:
        self.calls.append(("ensure_volume", name))
        self.volumes.setdefault(name, None)
        return name

    def volume_created_at(self, name: str) -> datetime:
        self.calls.append(("volume_created_at", name))
        return VOLUMES_CREATED_AT

    def with_python_env(self, spec: ContainerSpec) -> ContainerSpec:
        self.calls.append(("with_python_env", spec.owner_id))
        return dataclasses.replace(
            spec,
            image_id=FAKE_IMAGE_ID,
            mounts=[*spec.mounts, Mount(FAKE_PYTHON_ENV, PYTHON_ENV_TARGET, read_only=True)],
        )

    def create(self, spec: ContainerSpec) -> str:
        with self._lock:
            container_id = f"fake{next(self._ids):060d}"
            self.calls.append(("create", container_id))
            if self.create_errors:
                raise self.create_errors.popleft()
            self.containers[container_id] = FakeContainer(container_id, spec)
            self.created[container_id] = spec
        return container_id

    def start(self, container_id: str) -> None:
        self.calls.append(("start", container_id))
        container = self._get(container_id)
        container.started_at = time.monotonic()
        if not container.spec.handoff:
            self._begin(container)

    def hand_off(self, container_id: str, env: dict[str, str], timeout_s: float) -> None:
        self.calls.append(("hand_off", container_id))
        container = self._get(container_id)
        if self.refuse_hand_offs > 0 or not container.running or not container.spec.handoff:
            self.refuse_hand_offs = max(0, self.refuse_hand_offs - 1)
            raise HandOffFailed(f"container {container_id} did not take its job")
        container.handed_env = dict(env)
        container.started_at = time.monotonic()
        self._begin(container)

    def follow_logs(self, container_id: str, *, since: datetime | None = None) -> Iterator[str]:
        self.calls.append(("follow_logs", container_id))
        container = self._get(container_id)
        yield from container.outcome.lines if container.outcome else ()

    def state(self, container_id: str) -> ContainerState | None:
        self.calls.append(("state", container_id))
        container = self.containers.get(container_id)
        if container is None:
            return None
        self._settle(container)
        ended = container.ended
        return ContainerState(
            running=container.running,
            exit_code=ended.exit_code if ended else 0,
            oom_killed=ended.oom_killed if ended else False,
            started_at=None,
            finished_at=ended.finished_at if ended else None,
        )

    def container_address(self, container_id: str, network: str) -> str | None:
        self.calls.append(("container_address", container_id))
        container = self.containers.get(container_id)
        if container is None or not container.running or container.spec.network != network:
            return None
        # The upper half of the fake's /24: where Docker hands out a tenant's addresses.
        prefix = self.networks[container.spec.tenant_id].subnet.rsplit(".", 1)[0]
        return f"{prefix}.{128 + int(container_id[-2:]) % 100}"

    def tail_logs(self, container_id: str, lines: int) -> list[str]:
        self.calls.append(("tail_logs", container_id))
        container = self._get(container_id)
        return list(container.outcome.lines[-lines:]) if container.outcome else []

    def stop(self, container_id: str, timeout_s: int) -> None:
        self.calls.append(("stop", container_id))
        self._end(self._get(container_id), STOPPED, oom=False)

    def wait(self, container_id: str, timeout_s: float) -> ExitStatus:
        self.calls.append(("wait", container_id))
        container = self._get(container_id)
        deadline = time.monotonic() + timeout_s
        while True:
            self._settle(container)
            if container.ended is not None:
                return container.ended
            left = deadline - time.monotonic()
            if left <= 0:
                raise JobTimeout(container_id, timeout_s)
            time.sleep(min(left, 0.01))

    def read_usage(self, container_id: str) -> Usage:
        self.calls.append(("read_usage", container_id))
        container = self._get(container_id)
        self._settle(container)
        if container.running and container.outcome is not None:
            return container.outcome.usage
        # Like the engine's: an exited container's counters read zero.
        return Usage(0.0, 0)

    def final_usage(self, container_id: str) -> Usage | None:
        return None

    def kill(self, container_id: str) -> None:
        self.calls.append(("kill", container_id))
        self._end(self._get(container_id), KILLED, oom=False)

    def remove(self, container_id: str) -> None:
        self.calls.append(("remove", container_id))
        if self.containers.pop(container_id, None) is not None:
            self.removed.append(container_id)

    def list_managed(self) -> list[ManagedContainer]:
        self.calls.append(("list_managed", ""))
        managed = []
        for container in list(self.containers.values()):
            self._settle(container)
            managed.append(
                ManagedContainer(
                    id=container.id,
                    tenant=container.spec.tenant_id,
                    owner_kind=container.spec.owner_kind,
                    owner_id=container.spec.owner_id,
                    state="running" if container.running else "exited",
                )
            )
        return managed

    # --- inside ---------------------------------------------------------------------------

    def _get(self, container_id: str) -> FakeContainer:
        container = self.containers.get(container_id)
        if container is None:
            raise ContainerRuntimeError(f"no such container: {container_id}")
        return container

    def _begin(self, container: FakeContainer) -> None:
        """The container runs its job or bot now: the next scripted outcome is its own."""
        if container.outcome is None:
            for key in (container.spec.owner_kind, None):
                queue = self._outcomes.get(key)
                if queue:
                    container.outcome = queue.popleft()
                    return

    def _settle(self, container: FakeContainer) -> None:
        """Ends a running container whose scripted time is over."""
        outcome = container.outcome
        if not container.running or outcome is None or math.isinf(outcome.seconds):
            return
        assert container.started_at is not None
        if time.monotonic() - container.started_at >= outcome.seconds:
            self._end(container, 137 if outcome.oom else outcome.exit_code, oom=outcome.oom)

    def _end(self, container: FakeContainer, exit_code: int, *, oom: bool) -> None:
        if container.ended is None:
            container.ended = ExitStatus(exit_code, oom, None, datetime.now(UTC))
