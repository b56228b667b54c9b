"""What a job container is, and the Docker create body that makes it hardened.

The body is the only place where the hardening is written down; `verify.py` checks it again
on what the engine actually stored, and the socket proxy refuses the worst deviations.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from fta.seccomp import security_opt

OwnerKind = Literal["job", "bot", "cache-fill"]
OWNER_KINDS: tuple[OwnerKind, ...] = ("job", "bot", "cache-fill")

JOB_USER = "10000:10000"
# The only command a warm container may be given: it passes the job bundle, from its own
# environment, to the entry waiting as PID 1 (the socket proxy allows no other exec).
HANDOFF_COMMAND = ("python3", "/opt/fta/fta_job_entry.py", "--hand-off")
# No privilege gain, and our own seccomp profile (fta.seccomp) rather than the engine's.
SECURITY_OPT = ("no-new-privileges", security_opt())
# The container's own size-capped tmpfs, not a directory of the host.
TMPFS_TARGET = "/tmp"  # noqa: S108
MARKET_DATA_HOSTNAME = "market-data"
# One log file holds all a job can print (freqtrade's 4 MiB, escaped, and an 8 MiB result
# archive in base64): the engine's follow stream may repeat or lose a line where it rotates a
# file, and a result archive with a repeated line is refused whole.
LOG_MAX_SIZE = "64m"
LOG_MAX_FILE = "2"
# Lookups of names that are not in /etc/hosts fail within about a second instead of hanging.
DNS_OPTIONS = ("timeout:1", "attempts:1")

# The installation an object belongs to: the socket proxy lets the worker reach nothing else.
LABEL_INSTANCE = "fta.instance"
LABEL_MANAGED = "fta.managed"
LABEL_TENANT = "fta.tenant"
LABEL_KIND = "fta.kind"
LABEL_JOB = "fta.job"
LABEL_BOT = "fta.bot"
# On a warm job container, started before its job (fta.worker.warm_pool): the only kind of
# container the socket proxy lets the worker exec the hand-off command in.
LABEL_HANDOFF = "fta.handoff"
# A warm container's environment: its entry waits for the bundle instead of reading it here.
WAIT_FOR_JOB_ENV = {"FTA_WAIT_FOR_JOB": "1"}
# On the volumes that hold a job image's Python environment (see python_env_record_name).
LABEL_IMAGE_ID = "fta.image-id"
LABEL_PYTHON_ENV = "fta.python-env"

# Where the job image keeps every Python file a job imports (its venv and, under base/, the
# standard library): jobs get it from a read-only volume that the engine filled from the image.
PYTHON_ENV_TARGET = "/opt/freqtrade"

TENANT_ID_RE = re.compile(r"[a-z0-9]{1,10}")
OWNER_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
VOLUME_NAME_RE = re.compile(r"fta-[a-z0-9][a-z0-9-]{0,62}")
ENV_NAME_RE = re.compile(r"[A-Z_][A-Z0-9_]{0,127}")
# Linux caps one argument or environment string at 128 KiB; bundles are cut below that.
ENV_VALUE_MAX_CHARS = 100_000


def market_data_url(port: int) -> str:
    """The gateway as a container on a tenant network reaches it (see TenantNetwork)."""
    return f"http://{MARKET_DATA_HOSTNAME}:{port}"


def tenant_volume_name(tenant_id: str) -> str:
    return f"fta-data-{tenant_id}"


def tenant_volume_options(disk_path: str) -> dict[str, str]:
    """The local driver's options that make a volume a bind of the tenant's own file system.
    The socket proxy accepts these options and no others."""
    return {"type": "none", "o": "bind", "device": disk_path}


def tenant_network_name(tenant_id: str) -> str:
    return f"fta-client-{tenant_id}"


def python_env_record_name(instance: str, image_id: str) -> str:
    """The volume whose labels record that an image's Python environment volume is complete:
    one per installation and image id, so an updated image never meets its old files."""
    digest = image_id.removeprefix("sha256:")
    return f"fta-pyenv-{instance}-{digest[:20]}"


def python_env_content_name(instance: str, token: str) -> str:
    return f"fta-pyenv-{instance}-{token}"


@dataclass(frozen=True)
class Limits:
    nano_cpus: int
    memory_bytes: int
    pids: int
    tmpfs_bytes: int

    def __post_init__(self) -> None:
        if self.nano_cpus < 10_000_000:
            raise ValueError("nano_cpus must be at least 0.01 CPU")
        if self.memory_bytes < 6 * 1024 * 1024:
            raise ValueError("memory_bytes must be at least 6 MiB (Docker's minimum)")
        if not 8 <= self.pids <= 4096:
            raise ValueError("pids must be between 8 and 4096")
        if not 1024 * 1024 <= self.tmpfs_bytes <= self.memory_bytes:
            raise ValueError("tmpfs_bytes must be at least 1 MiB and at most memory_bytes")


@dataclass(frozen=True)
class Mount:
    volume: str
    target: str
    read_only: bool

    def __post_init__(self) -> None:
        if not VOLUME_NAME_RE.fullmatch(self.volume):
            raise ValueError(f"not an fta volume name: {self.volume!r}")
        normalized = self.target.startswith("/") and posixpath.normpath(self.target) == self.target
        if not normalized or self.target in ("/", TMPFS_TARGET):
            raise ValueError(f"mount target must be a normalized absolute path: {self.target!r}")


@dataclass(frozen=True)
class ContainerSpec:
    tenant_id: str
    owner_kind: OwnerKind
    owner_id: str
    image: str
    command: list[str] | None
    env: dict[str, str]
    limits: Limits
    mounts: list[Mount]
    network: str
    extra_hosts: dict[str, str] = field(default_factory=dict)
    dns: list[str] = field(default_factory=list)
    # The id `image` must resolve to when the container is created: a Python environment
    # volume belongs to exactly one image.
    image_id: str | None = None
    # Started before its job, which it receives later through `JobRunner.hand_off`.
    handoff: bool = False

    def __post_init__(self) -> None:
        if not TENANT_ID_RE.fullmatch(self.tenant_id):
            raise ValueError(f"not a tenant id: {self.tenant_id!r}")
        if self.owner_kind not in OWNER_KINDS:
            raise ValueError(f"unknown owner kind: {self.owner_kind!r}")
        if not OWNER_ID_RE.fullmatch(self.owner_id):
            raise ValueError(f"not an owner id: {self.owner_id!r}")
        # The socket proxy takes ASCII environment and command strings only.
        for name, value in self.env.items():
            if not ENV_NAME_RE.fullmatch(name):
                raise ValueError(f"not an environment variable name: {name!r}")
            if len(value) > ENV_VALUE_MAX_CHARS or not value.isascii():
                raise ValueError(f"{name}: values are ASCII and at most {ENV_VALUE_MAX_CHARS}")
        if self.command is not None and not all(arg.isascii() for arg in self.command):
            raise ValueError("command arguments must be ASCII")
        if not self.image.isascii():
            raise ValueError("image must be ASCII")
        targets = [mount.target for mount in self.mounts]
        if len(set(targets)) != len(targets):
            raise ValueError("two mounts share a target")
        for mount in self.mounts:
            self._check_volume_belongs(mount)

    def _check_volume_belongs(self, mount: Mount) -> None:
        # A tenant's container never sees another tenant's data volume, and shared volumes
        # (the candle cache) are writable only by the cache-filling job.
        if mount.volume.startswith("fta-data-"):
            if mount.volume != tenant_volume_name(self.tenant_id):
                raise ValueError(f"{mount.volume} is not tenant {self.tenant_id}'s volume")
        elif not mount.read_only and self.owner_kind != "cache-fill":
            raise ValueError(f"shared volume {mount.volume} must be mounted read-only")


def container_labels(spec: ContainerSpec, extra_labels: Mapping[str, str]) -> dict[str, str]:
    labels = dict(extra_labels)
    labels.update(
        {
            LABEL_MANAGED: "1",
            LABEL_TENANT: spec.tenant_id,
            LABEL_KIND: spec.owner_kind,
            LABEL_BOT if spec.owner_kind == "bot" else LABEL_JOB: spec.owner_id,
        }
    )
    if spec.handoff:
        labels[LABEL_HANDOFF] = "1"
    return labels


def tmpfs_options(limits: Limits) -> str:
    return f"rw,nosuid,nodev,size={limits.tmpfs_bytes}"


def extra_hosts_list(extra_hosts: Mapping[str, str]) -> list[str]:
    return [f"{name}:{address}" for name, address in sorted(extra_hosts.items())]


def container_create_body(
    spec: ContainerSpec, *, cgroup_parent: str, extra_labels: Mapping[str, str]
) -> dict[str, Any]:
    """The `POST /containers/create` body (API 1.41) of a hardened container for `spec`.

    HostConfig comes first so that the proxy's body checks see it early.
    """
    host_config: dict[str, Any] = {
        "Privileged": False,
        "ReadonlyRootfs": True,
        "CapDrop": ["ALL"],
        "SecurityOpt": list(SECURITY_OPT),
        "NetworkMode": spec.network,
        "Dns": list(spec.dns),
        "DnsOptions": list(DNS_OPTIONS),
        "ExtraHosts": extra_hosts_list(spec.extra_hosts),
        "PublishAllPorts": False,
        "Memory": spec.limits.memory_bytes,
        "MemorySwap": spec.limits.memory_bytes,
        "NanoCpus": spec.limits.nano_cpus,
        "PidsLimit": spec.limits.pids,
        "OomKillDisable": False,
        "CgroupParent": cgroup_parent,
        "IpcMode": "private",
        "CgroupnsMode": "private",
        # The image's entry is PID 1 (it reaps and forwards signals itself), not docker-init: a
        # process the job could ptrace. Explicit, or the engine's own default would apply.
        "Init": False,
        "Tmpfs": {TMPFS_TARGET: tmpfs_options(spec.limits)},
        "Mounts": [
            {"Type": "volume", "Source": m.volume, "Target": m.target, "ReadOnly": m.read_only}
            for m in spec.mounts
        ],
        "LogConfig": {
            "Type": "json-file",
            "Config": {"max-size": LOG_MAX_SIZE, "max-file": LOG_MAX_FILE},
        },
    }
    body: dict[str, Any] = {
        "HostConfig": host_config,
        "User": JOB_USER,
        "Image": spec.image,
        "Env": [f"{name}={value}" for name, value in spec.env.items()],
        "Labels": container_labels(spec, extra_labels),
        "AttachStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
        "Tty": False,
        "OpenStdin": False,
    }
    if spec.command is not None:
        body["Cmd"] = list(spec.command)
    return body
