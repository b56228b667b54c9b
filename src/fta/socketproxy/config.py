"""What the proxy knows of its installation, from its environment."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

_INSTANCE_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
_NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}")
_PREFIX_RE = re.compile(r"[a-z][a-z0-9-]{0,9}")
_ROOT_RE = re.compile(r"[a-z][a-z0-9]{0,31}")
_DISK_ROOT_RE = re.compile(r"(/[A-Za-z0-9_.-]+)+")


@dataclass(frozen=True)
class ProxyConfig:
    # The installation whose objects (labelled `fta.instance=<instance>`) the worker may reach.
    instance: str
    # The only container that may join tenant networks, and be inspected without the label.
    gateway_container: str
    # Tenant bridges carry this prefix: the host firewall drops traffic from them.
    bridge_prefix: str
    # Tenant containers' parent cgroups are named after it.
    cgroup_root: str
    # Tenant data volumes are binds of `<disk_root>/mounts/<tenant>`, and nothing else.
    disk_root: str
    docker_socket: str = "/var/run/docker.sock"
    listen_port: int = 2375

    def __post_init__(self) -> None:
        checks = [
            ("FTA_INSTANCE", _INSTANCE_RE, self.instance),
            ("FTA_GATEWAY_CONTAINER", _NAME_RE, self.gateway_container),
            ("FTA_TENANT_BRIDGE_PREFIX", _PREFIX_RE, self.bridge_prefix),
            ("FTA_TENANT_CGROUP_ROOT", _ROOT_RE, self.cgroup_root),
            ("FTA_TENANT_DISK_ROOT", _DISK_ROOT_RE, self.disk_root),
        ]
        for name, pattern, value in checks:
            if not pattern.fullmatch(value) or "/../" in f"{value}/" or "/./" in f"{value}/":
                raise ValueError(f"{name}={value!r} is not valid")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> ProxyConfig:
        return cls(
            instance=environ.get("FTA_INSTANCE", "fta"),
            gateway_container=environ.get("FTA_GATEWAY_CONTAINER", "fta-market-data"),
            bridge_prefix=environ.get("FTA_TENANT_BRIDGE_PREFIX", "ftab-"),
            cgroup_root=environ.get("FTA_TENANT_CGROUP_ROOT", "fta"),
            disk_root=environ.get("FTA_TENANT_DISK_ROOT", "/var/lib/fta/tenant-disks"),
            docker_socket=environ.get("FTA_DOCKER_SOCKET", "/var/run/docker.sock"),
            listen_port=int(environ.get("FTA_SOCKET_PROXY_PORT", "2375")),
        )
