"""The JobRunner on one Docker host, reached only through the socket proxy.

This module is the only part of fta that talks to Docker. Every call it makes is in the
proxy's allow-list (fta.socketproxy.routes), and every body it sends has the shape the proxy
expects (fta.socketproxy.bodies); adding a call or a field means adding it there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import secrets
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import docker
import requests
import urllib3
from docker.errors import APIError, DockerException, NotFound
from docker.types import IPAMConfig, IPAMPool

from fta.runtime.cgroup import CgroupDriver, cgroup_parent
from fta.runtime.docker_output import parse_docker_time, split_log_lines
from fta.runtime.network import (
    TenantSubnet,
    bridge_name,
    network_labels,
    network_options,
    tenant_subnet,
)
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
    HANDOFF_COMMAND,
    JOB_USER,
    LABEL_BOT,
    LABEL_IMAGE_ID,
    LABEL_INSTANCE,
    LABEL_JOB,
    LABEL_KIND,
    LABEL_MANAGED,
    LABEL_PYTHON_ENV,
    LABEL_TENANT,
    PYTHON_ENV_TARGET,
    TENANT_ID_RE,
    VOLUME_NAME_RE,
    ContainerSpec,
    Mount,
    container_create_body,
    market_data_url,
    python_env_content_name,
    python_env_record_name,
    tenant_network_name,
    tenant_volume_name,
    tenant_volume_options,
)
from fta.runtime.verify import verify_hardening, verify_network, verify_volume
from fta.settings import Settings
from fta.tenantdisk.client import TenantDiskClient, TenantDiskUnavailable

API_VERSION = "1.41"
# The proxy judges a create body only when it fits in its buffer, and refuses larger ones.
CREATE_BODY_MAX_BYTES = 1_000_000
# One wait request lasts at most this long; the proxy's stream timeout is far above it.
WAIT_REQUEST_SECONDS = 300.0
# Framing bound of output lines: above the result line's own cap (256 KiB), so a summary is
# never cut; what is logged is cut much shorter by the worker.
MAX_OUTPUT_LINE_BYTES = 512 * 1024
# How long a network another process is creating may take to show.
NETWORK_APPEARS_SECONDS = 5.0
# One lock per tenant for its network's creation, shared by every runner of the process.
_TENANT_SETUP: dict[str, threading.Lock] = {}
_TENANT_SETUP_GUARD = threading.Lock()
# A hand-off lasts about as long as starting a small Python program.
HAND_OFF_POLL_SECONDS = 0.01
# One image's Python environment is made once at a time in this process.
_PYTHON_ENV_SETUP = threading.Lock()


class DockerJobRunner:
    def __init__(
        self, settings: Settings, *, extra_labels: Mapping[str, str] | None = None
    ) -> None:
        """Everything this runner creates carries the installation's label (the socket proxy
        lets it reach nothing else) and `extra_labels`; `list_managed` only sees containers
        that carry them (tests use them to keep to their own containers)."""
        self._settings = settings
        self._client = docker.DockerClient(base_url=settings.docker_host, version=API_VERSION)
        self._api = self._client.api
        self._extra_labels = {**(extra_labels or {}), LABEL_INSTANCE: settings.instance}
        self._cgroup_driver: CgroupDriver | None = None
        # Image id -> its verified Python environment volume.
        self._python_envs: dict[str, str] = {}
        self._disks = TenantDiskClient(settings.tenant_disk_socket, settings.tenant_disk_root)

    def close(self) -> None:
        self._client.close()

    def market_data_url(self) -> str:
        return market_data_url(self._settings.gateway_port)

    # Tenant resources.

    def ensure_tenant_network(self, tenant_id: str, subnet_index: int) -> TenantNetwork:
        _check_tenant_id(tenant_id)
        settings = self._settings
        name = tenant_network_name(tenant_id)
        layout = tenant_subnet(
            settings.tenant_subnet_pool, settings.tenant_subnet_prefix, subnet_index
        )
        bridge = bridge_name(settings.tenant_bridge_prefix, tenant_id)
        labels = network_labels(tenant_id, self._extra_labels)
        # A tenant's first jobs start at once: one creates, the others wait and verify.
        with _tenant_setup_lock(tenant_id):
            return self._ensure_tenant_network(name, layout, bridge, labels)

    def _ensure_tenant_network(
        self, name: str, layout: TenantSubnet, bridge: str, labels: dict[str, str]
    ) -> TenantNetwork:
        inspect = self._inspect_network(name)
        if inspect is None:
            try:
                self._api.create_network(
                    name,
                    driver="bridge",
                    options=network_options(bridge),
                    ipam=IPAMConfig(
                        pool_configs=[
                            IPAMPool(
                                subnet=str(layout.subnet),
                                iprange=str(layout.dynamic_range),
                                gateway=str(layout.bridge_ip),
                            )
                        ]
                    ),
                    check_duplicate=True,
                    internal=True,
                    labels=labels,
                    attachable=False,
                )
            except APIError:
                # Created meanwhile by another process: the engine answers 409, or 403 for the
                # address pool it already holds before the network shows. Anything else raises.
                if self._await_network(name) is None:
                    raise
            inspect = self._api.inspect_network(name)
        mismatches = verify_network(inspect, name=name, layout=layout, bridge=bridge, labels=labels)
        if mismatches:
            raise ResourceMismatch("network", name, mismatches)
        self._connect_gateway(name, str(layout.gateway_ip))
        return TenantNetwork(
            name=name,
            subnet=str(layout.subnet),
            gateway_ip=str(layout.gateway_ip),
            dns_ip=str(layout.dns_ip),
        )

    def remove_tenant_network(self, tenant_id: str) -> None:
        """Removes the tenant's network (none: nothing to do), the gateway's connection to it
        first. The engine refuses while any other container is still attached."""
        _check_tenant_id(tenant_id)
        name = tenant_network_name(tenant_id)
        with _tenant_setup_lock(tenant_id):
            if self._inspect_network(name) is None:
                return
            try:
                if self._gateway_address(name) is not None:
                    gateway = self._settings.gateway_container
                    self._api.disconnect_container_from_network(gateway, name)
                self._api.remove_network(name)
            except NotFound:
                pass  # removed meanwhile
            except APIError as error:
                raise ContainerRuntimeError(f"network {name} not removed: {error}") from error

    def ensure_tenant_volume(self, tenant_id: str, size_bytes: int) -> str:
        """The tenant's data volume: a bind of its own file system of at least `size_bytes`,
        which the host's tenant disk helper creates, grows and mounts."""
        _check_tenant_id(tenant_id)
        try:
            disk = self._disks.ensure(tenant_id, size_bytes)
        except TenantDiskUnavailable as error:
            raise StorageUnavailable(str(error)) from error
        options = tenant_volume_options(disk.path)
        return self._ensure_volume(
            tenant_volume_name(tenant_id), {LABEL_TENANT: tenant_id}, options
        )

    def remove_tenant_volume(self, tenant_id: str) -> None:
        """Removes the tenant's data volume, then its disk (unmounted, its image deleted): its
        data is gone for good. Nothing to do for what is gone already. Refused while a
        container still uses them."""
        _check_tenant_id(tenant_id)
        name = tenant_volume_name(tenant_id)
        with _tenant_setup_lock(tenant_id):
            try:
                if self._inspect_volume(name) is not None:
                    self._api.remove_volume(name)
            except NotFound:
                pass  # removed meanwhile
            except APIError as error:
                raise ContainerRuntimeError(f"volume {name} not removed: {error}") from error
            try:
                self._disks.remove(tenant_id)
            except TenantDiskUnavailable as error:
                raise StorageUnavailable(str(error)) from error

    def tenant_disk_usage(self) -> list[TenantDiskUse]:
        """Every tenant disk of the host, as its helper measures them."""
        try:
            disks = self._disks.usage()
        except TenantDiskUnavailable as error:
            raise StorageUnavailable(str(error)) from error
        return [TenantDiskUse(d.tenant_id, d.size_bytes, d.used_bytes) for d in disks]

    def ensure_volume(self, name: str) -> str:
        return self._ensure_volume(name, {}, None)

    def volume_created_at(self, name: str) -> datetime:
        """When the engine created the volume: files written before are not in it."""
        inspect = self._inspect_volume(name)
        if inspect is None:
            raise ContainerRuntimeError(f"volume {name} not found")
        created = inspect.get("CreatedAt")
        try:
            # The local driver writes RFC 3339 in the engine's time zone.
            return datetime.fromisoformat(str(created)).astimezone(UTC)
        except ValueError:
            raise ContainerRuntimeError(f"volume {name}: no creation time ({created!r})") from None

    def with_python_env(self, spec: ContainerSpec) -> ContainerSpec:
        """`spec` pinned to the id its image has now, with that image's Python environment
        mounted read-only from its volume (made on the image's first use).

        On this storage driver the image's files are served through a FUSE daemon, which
        makes freqtrade's imports take twice as long as from the host's file system (see
        docs/benchmarks.md); a volume lives on the host's file system."""
        image_id = str(self._api.inspect_image(spec.image)["Id"])
        volume = self._python_envs.get(image_id)
        if volume is None:
            with _PYTHON_ENV_SETUP:
                volume = self._python_env_volume(spec, image_id)
            self._python_envs[image_id] = volume
        return dataclasses.replace(
            spec,
            image_id=image_id,
            mounts=[*spec.mounts, Mount(volume, PYTHON_ENV_TARGET, read_only=True)],
        )

    def _python_env_volume(self, spec: ContainerSpec, image_id: str) -> str:
        """The volume holding the image's PYTHON_ENV_TARGET, verified or made now. Its
        record, a volume without content, is created only once the copy is complete: its
        labels name the content volume, and labels never change."""
        record_name = python_env_record_name(self._settings.instance, image_id)
        record = self._inspect_volume(record_name)
        if record is None:
            content = self._fill_python_env(spec, image_id)
            self._api.create_volume(
                record_name,
                driver="local",
                labels={
                    **self._extra_labels,
                    LABEL_MANAGED: "1",
                    LABEL_IMAGE_ID: image_id,
                    LABEL_PYTHON_ENV: content,
                },
            )
            # Another worker may have recorded its own copy first: that one is used.
            record = self._api.inspect_volume(record_name)
        mismatches = verify_volume(record, name=record_name, options=None)
        labels = record.get("Labels") or {}
        if labels.get(LABEL_IMAGE_ID) != image_id:
            mismatches.append(f"Labels[{LABEL_IMAGE_ID}]: not {image_id}")
        content = str(labels.get(LABEL_PYTHON_ENV) or "")
        if mismatches or not VOLUME_NAME_RE.fullmatch(content):
            raise ResourceMismatch("volume", record_name, mismatches or ["no content volume"])
        found = self._inspect_volume(content)
        if found is None:
            raise ResourceMismatch("volume", content, ["recorded, but missing"])
        mismatches = verify_volume(found, name=content, options=None)
        if (found.get("Labels") or {}).get(LABEL_IMAGE_ID) != image_id:
            mismatches.append(f"Labels[{LABEL_IMAGE_ID}]: not {image_id}")
        if mismatches:
            raise ResourceMismatch("volume", content, mismatches)
        return content

    def _fill_python_env(self, spec: ContainerSpec, image_id: str) -> str:
        """A new volume with the image's PYTHON_ENV_TARGET in it. The engine copies an
        image's directory into an empty volume when it creates a container that mounts the
        volume there: no code runs, and the files keep the image's owners (root) and modes.
        That container, the job's own (verified like it), is removed without being started."""
        content = python_env_content_name(self._settings.instance, secrets.token_hex(8))
        self._api.create_volume(
            content,
            driver="local",
            labels={**self._extra_labels, LABEL_MANAGED: "1", LABEL_IMAGE_ID: image_id},
        )
        filler = dataclasses.replace(
            spec,
            command=None,
            env={},
            mounts=[Mount(content, PYTHON_ENV_TARGET, read_only=True)],
            image_id=image_id,
        )
        self.remove(self.create(filler))
        return content

    # Containers.

    def create(self, spec: ContainerSpec) -> str:
        parent = self._cgroup_parent(spec.tenant_id)
        body = container_create_body(spec, cgroup_parent=parent, extra_labels=self._extra_labels)
        size = len(json.dumps(body))
        if size > CREATE_BODY_MAX_BYTES:
            raise ValueError(f"create body is {size} bytes, over {CREATE_BODY_MAX_BYTES}")
        name = f"fta-{spec.tenant_id}-{spec.owner_kind}-{spec.owner_id}-{secrets.token_hex(3)}"
        container_id: str = self._api.create_container_from_config(body, name=name)["Id"]
        try:
            inspect = self._api.inspect_container(container_id)
            mismatches = verify_hardening(
                spec, inspect, cgroup_parent=parent, extra_labels=self._extra_labels
            )
        except BaseException:
            self.remove(container_id)
            raise
        if mismatches:
            self.remove(container_id)
            raise HardeningError(mismatches)
        return container_id

    def start(self, container_id: str) -> None:
        self._api.start(container_id)

    def hand_off(self, container_id: str, env: dict[str, str], timeout_s: float) -> None:
        """Gives a warm container (created from a spec with `handoff`, started) its job: the
        one exec the socket proxy allows, the fixed hand-off command as the job's user with
        the job's environment, waited for until it ends."""
        try:
            exec_id = self._api.exec_create(
                container_id,
                list(HANDOFF_COMMAND),
                stdout=False,
                stderr=False,
                user=JOB_USER,
                environment=dict(env),
            )["Id"]
            self._api.exec_start(exec_id, detach=True)
            deadline = time.monotonic() + timeout_s
            while True:
                found = self._api.exec_inspect(exec_id)
                if not found.get("Running") and found.get("ExitCode") is not None:
                    break
                if time.monotonic() >= deadline:
                    raise HandOffFailed(f"the hand-off to {container_id} lasted over {timeout_s} s")
                time.sleep(HAND_OFF_POLL_SECONDS)
        except APIError as error:
            raise HandOffFailed(f"the hand-off to {container_id} failed: {error}") from error
        if found["ExitCode"] != 0:
            raise HandOffFailed(
                f"the hand-off to {container_id} ended with code {found['ExitCode']}"
            )

    def follow_logs(self, container_id: str, *, since: datetime | None = None) -> Iterator[str]:
        """Lines of stdout and stderr as they come, until the container stops (or the proxy
        ends a stream that stayed silent for an hour). Longer lines come in pieces. With
        `since`, only what was written from then on (a worker picking a bot up again)."""
        stream = self._api.logs(
            container_id, stdout=True, stderr=True, stream=True, follow=True, since=since
        )
        try:
            yield from split_log_lines(stream, MAX_OUTPUT_LINE_BYTES)
        finally:
            stream.close()

    def wait(self, container_id: str, timeout_s: float) -> ExitStatus:
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise JobTimeout(container_id, timeout_s)
            try:
                self._api.wait(container_id, timeout=min(remaining, WAIT_REQUEST_SECONDS))
                break
            except requests.exceptions.RequestException as error:
                if not _is_read_timeout(error):
                    raise
            except APIError as error:
                if error.status_code != 504:  # the proxy gave up on a long wait: ask again
                    raise
        state = self._api.inspect_container(container_id)["State"]
        return ExitStatus(
            exit_code=int(state["ExitCode"]),
            oom_killed=bool(state["OOMKilled"]),
            started_at=parse_docker_time(state.get("StartedAt")),
            finished_at=parse_docker_time(state.get("FinishedAt")),
        )

    def state(self, container_id: str) -> ContainerState | None:
        """Whether the container runs, and how it ended if it does not; None once it is gone."""
        try:
            state = self._api.inspect_container(container_id)["State"]
        except NotFound:
            return None
        return ContainerState(
            running=bool(state["Running"]),
            exit_code=int(state["ExitCode"]),
            oom_killed=bool(state["OOMKilled"]),
            started_at=parse_docker_time(state.get("StartedAt")),
            finished_at=parse_docker_time(state.get("FinishedAt")),
        )

    def container_address(self, container_id: str, network: str) -> str | None:
        """The container's IPv4 address on `network` as the engine assigned it; None when it
        has none there, or is gone."""
        try:
            inspect = self._api.inspect_container(container_id)
        except NotFound:
            return None
        networks = (inspect.get("NetworkSettings") or {}).get("Networks") or {}
        address = (networks.get(network) or {}).get("IPAddress")
        return str(address) if address else None

    def tail_logs(self, container_id: str, lines: int) -> list[str]:
        """The last `lines` lines of output of a container, running or stopped."""
        raw = self._api.logs(container_id, stdout=True, stderr=True, stream=False, tail=lines)
        return list(split_log_lines([raw], MAX_OUTPUT_LINE_BYTES))

    def stop(self, container_id: str, timeout_s: int) -> None:
        """SIGTERM, then SIGKILL after `timeout_s` seconds; a stopped container is left as is."""
        with contextlib.suppress(NotFound):
            self._api.stop(container_id, timeout=timeout_s)

    def read_usage(self, container_id: str) -> Usage:
        """One stats reading; a stopped container reads as zero (its cgroup is gone).

        Memory is what `docker stats` shows: the cgroup's usage less its inactive file cache
        (`total_inactive_file` on cgroup v1, `inactive_file` on v2), page cache the kernel
        drops at once under pressure. The cgroup's own peak (v1 max_usage, v2 memory.peak)
        counts that cache too: a job reading its candles would be billed for the files.
        """
        try:
            stats: dict[str, Any] = self._api.stats(container_id, stream=False, one_shot=True)
        except DockerException as error:
            raise ContainerRuntimeError(f"usage of {container_id} unreadable: {error}") from error
        cpu_ns = ((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage") or 0
        memory = stats.get("memory_stats") or {}
        usage = int(memory.get("usage") or 0)
        counters = memory.get("stats") or {}
        inactive_file = int(counters.get("total_inactive_file", counters.get("inactive_file", 0)))
        return Usage(
            cpu_seconds=cpu_ns / 1e9,
            memory_max_bytes=usage - inactive_file if inactive_file < usage else usage,
        )

    def final_usage(self, container_id: str) -> Usage | None:
        return None

    def kill(self, container_id: str) -> None:
        try:
            self._api.kill(container_id)
        except NotFound:
            pass
        except APIError as error:
            if error.status_code != 409:  # not running any more
                raise

    def remove(self, container_id: str) -> None:
        try:
            self._api.remove_container(container_id, force=True, v=True)
        except NotFound:
            pass
        except APIError as error:
            if error.status_code != 409:  # removal already in progress
                raise

    def list_managed(self) -> list[ManagedContainer]:
        selectors = [f"{LABEL_MANAGED}=1"]
        selectors += [f"{key}={value}" for key, value in self._extra_labels.items()]
        found = self._api.containers(all=True, filters={"label": selectors})
        managed = []
        for container in found:
            labels = container.get("Labels") or {}
            managed.append(
                ManagedContainer(
                    id=container["Id"],
                    tenant=labels.get(LABEL_TENANT, ""),
                    owner_kind=labels.get(LABEL_KIND, ""),
                    owner_id=labels.get(LABEL_BOT) or labels.get(LABEL_JOB) or "",
                    state=container.get("State", ""),
                )
            )
        return managed

    # Helpers.

    def _cgroup_parent(self, tenant_id: str) -> str:
        if self._cgroup_driver is None:
            driver = self._api.info().get("CgroupDriver")
            if driver not in ("cgroupfs", "systemd"):
                raise ContainerRuntimeError(f"unsupported cgroup driver {driver!r}")
            self._cgroup_driver = driver
        return cgroup_parent(
            tenant_id, driver=self._cgroup_driver, root=self._settings.tenant_cgroup_root
        )

    def _inspect_volume(self, name: str) -> dict[str, Any] | None:
        try:
            inspect: dict[str, Any] = self._api.inspect_volume(name)
        except NotFound:
            return None
        return inspect

    def _inspect_network(self, name: str) -> dict[str, Any] | None:
        try:
            inspect: dict[str, Any] = self._api.inspect_network(name)
        except NotFound:
            return None
        return inspect

    def _await_network(self, name: str) -> dict[str, Any] | None:
        deadline = time.monotonic() + NETWORK_APPEARS_SECONDS
        while (inspect := self._inspect_network(name)) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        return inspect

    def _connect_gateway(self, network: str, address: str) -> None:
        gateway = self._settings.gateway_container
        if self._gateway_address(network) is None:
            try:
                self._api.connect_container_to_network(gateway, network, ipv4_address=address)
            except APIError:
                # Another thread may have connected it meanwhile; anything else shows below.
                if self._gateway_address(network) is None:
                    raise
        configured = self._gateway_address(network)
        if configured != address:
            raise ResourceMismatch(
                "network", network, [f"gateway {gateway} has address {configured}, not {address}"]
            )

    def _gateway_address(self, network: str) -> str | None:
        """The fixed address the gateway is configured with on `network`, "" when it is
        attached without one, None when it is not attached."""
        gateway = self._settings.gateway_container
        try:
            inspect = self._api.inspect_container(gateway)
        except NotFound as error:
            raise ContainerRuntimeError(f"market-data gateway {gateway} not found") from error
        attached = ((inspect.get("NetworkSettings") or {}).get("Networks") or {}).get(network)
        if attached is None:
            return None
        return str((attached.get("IPAMConfig") or {}).get("IPv4Address") or "")

    def _ensure_volume(
        self, name: str, labels: Mapping[str, str], options: Mapping[str, str] | None
    ) -> str:
        if not VOLUME_NAME_RE.fullmatch(name):
            raise ValueError(f"not an fta volume name: {name!r}")
        try:
            inspect = self._api.inspect_volume(name)
        except NotFound:
            # Creating an existing volume returns it: concurrent creates are harmless.
            self._api.create_volume(
                name,
                driver="local",
                driver_opts=dict(options) if options else None,
                labels={**self._extra_labels, **labels, LABEL_MANAGED: "1"},
            )
            inspect = self._api.inspect_volume(name)
        mismatches = verify_volume(inspect, name=name, options=options)
        if mismatches:
            raise ResourceMismatch("volume", name, mismatches)
        return name


def _tenant_setup_lock(tenant_id: str) -> threading.Lock:
    with _TENANT_SETUP_GUARD:
        return _TENANT_SETUP.setdefault(tenant_id, threading.Lock())


def _check_tenant_id(tenant_id: str) -> None:
    if not TENANT_ID_RE.fullmatch(tenant_id):
        raise ValueError(f"not a tenant id: {tenant_id!r}")


def _is_read_timeout(error: requests.exceptions.RequestException) -> bool:
    # A timeout while waiting for the headers is a ReadTimeout; while reading the body (Docker
    # sends a wait's headers at once) it is a ConnectionError around urllib3's error.
    if isinstance(error, requests.exceptions.ReadTimeout):
        return True
    return bool(error.args) and isinstance(error.args[0], urllib3.exceptions.ReadTimeoutError)
