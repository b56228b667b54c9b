"""Checks what the engine stored against what fta asked for, field by field.

The worker creates a container, inspects it and starts it only when `verify_hardening`
finds nothing: whatever sits between the worker and the engine (the socket proxy, a future
engine's defaults, a bug in the body builder) cannot silently weaken a job container.
Networks and volumes are checked the same way before they are used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fta.runtime.network import TenantSubnet, network_options
from fta.runtime.spec import (
    DNS_OPTIONS,
    JOB_USER,
    LABEL_BOT,
    LABEL_HANDOFF,
    LABEL_JOB,
    LABEL_KIND,
    LABEL_MANAGED,
    LABEL_TENANT,
    LOG_MAX_FILE,
    LOG_MAX_SIZE,
    SECURITY_OPT,
    TMPFS_TARGET,
    ContainerSpec,
    container_labels,
    extra_hosts_list,
    tmpfs_options,
)

OWNERSHIP_LABELS = (
    LABEL_MANAGED,
    LABEL_TENANT,
    LABEL_KIND,
    LABEL_JOB,
    LABEL_BOT,
    LABEL_HANDOFF,
)

# Docker's defaults (20.10); newer engines mask more, never less.
DEFAULT_MASKED_PATHS = frozenset(
    {
        "/proc/asound",
        "/proc/acpi",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/proc/sched_debug",
        "/proc/scsi",
        "/sys/firmware",
    }
)
DEFAULT_READONLY_PATHS = frozenset(
    {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)


class _Checker:
    def __init__(self) -> None:
        self.mismatches: list[str] = []

    def equal(self, field: str, got: Any, expected: Any) -> None:
        if got != expected:
            self.mismatches.append(f"{field}: expected {expected!r}, got {got!r}")

    def empty(self, field: str, got: Any) -> None:
        # Docker reports an unset list or map as null, or as an empty one after an update.
        if got not in (None, [], {}, ""):
            self.mismatches.append(f"{field}: expected nothing, got {got!r}")

    def superset(self, field: str, got: Any, required: frozenset[str]) -> None:
        missing = required - set(got or [])
        if missing:
            self.mismatches.append(f"{field}: missing {sorted(missing)!r}")


def verify_hardening(
    spec: ContainerSpec,
    inspect: Mapping[str, Any],
    *,
    cgroup_parent: str,
    extra_labels: Mapping[str, str] | None = None,
) -> list[str]:
    """Every hardening field of `docker inspect` output that differs from `spec`'s policy."""
    check = _Checker()
    host = inspect.get("HostConfig") or {}
    config = inspect.get("Config") or {}

    check.equal("HostConfig.Privileged", host.get("Privileged"), False)
    check.empty("HostConfig.CapAdd", host.get("CapAdd"))
    check.equal("HostConfig.CapDrop", host.get("CapDrop"), ["ALL"])
    check.equal("HostConfig.SecurityOpt", host.get("SecurityOpt"), list(SECURITY_OPT))
    check.equal("HostConfig.ReadonlyRootfs", host.get("ReadonlyRootfs"), True)
    check.equal("Config.User", config.get("User"), JOB_USER)
    check.empty("HostConfig.GroupAdd", host.get("GroupAdd"))
    check.equal("HostConfig.Runtime", host.get("Runtime"), "runc")
    check.superset("HostConfig.MaskedPaths", host.get("MaskedPaths"), DEFAULT_MASKED_PATHS)
    check.superset("HostConfig.ReadonlyPaths", host.get("ReadonlyPaths"), DEFAULT_READONLY_PATHS)
    check.empty("HostConfig.Sysctls", host.get("Sysctls"))

    # Resources.
    limits = spec.limits
    check.equal("HostConfig.Memory", host.get("Memory"), limits.memory_bytes)
    check.equal("HostConfig.MemorySwap", host.get("MemorySwap"), limits.memory_bytes)
    check.equal("HostConfig.NanoCpus", host.get("NanoCpus"), limits.nano_cpus)
    check.equal("HostConfig.PidsLimit", host.get("PidsLimit"), limits.pids)
    check.equal("HostConfig.OomKillDisable", bool(host.get("OomKillDisable")), False)
    check.equal("HostConfig.OomScoreAdj", host.get("OomScoreAdj"), 0)
    check.empty("HostConfig.Ulimits", host.get("Ulimits"))
    check.equal("HostConfig.CgroupParent", host.get("CgroupParent"), cgroup_parent)
    check.equal("HostConfig.Tmpfs", host.get("Tmpfs"), {TMPFS_TARGET: tmpfs_options(limits)})

    # Namespaces.
    check.empty("HostConfig.PidMode", host.get("PidMode"))
    check.equal("HostConfig.IpcMode", host.get("IpcMode"), "private")
    check.empty("HostConfig.UsernsMode", host.get("UsernsMode"))
    check.empty("HostConfig.UTSMode", host.get("UTSMode"))
    check.equal("HostConfig.CgroupnsMode", host.get("CgroupnsMode"), "private")

    # Network.
    check.equal("HostConfig.NetworkMode", host.get("NetworkMode"), spec.network)
    check.empty("HostConfig.PortBindings", host.get("PortBindings"))
    check.equal("HostConfig.PublishAllPorts", host.get("PublishAllPorts"), False)
    check.empty("HostConfig.Links", host.get("Links"))
    check.equal("HostConfig.Dns", host.get("Dns") or [], spec.dns)
    check.equal("HostConfig.DnsOptions", host.get("DnsOptions"), list(DNS_OPTIONS))
    check.empty("HostConfig.DnsSearch", host.get("DnsSearch"))
    check.equal(
        "HostConfig.ExtraHosts", host.get("ExtraHosts") or [], extra_hosts_list(spec.extra_hosts)
    )

    # Devices and storage.
    check.empty("HostConfig.Devices", host.get("Devices"))
    check.empty("HostConfig.DeviceRequests", host.get("DeviceRequests"))
    check.empty("HostConfig.DeviceCgroupRules", host.get("DeviceCgroupRules"))
    check.empty("HostConfig.Binds", host.get("Binds"))
    check.empty("HostConfig.VolumesFrom", host.get("VolumesFrom"))
    check.empty("HostConfig.VolumeDriver", host.get("VolumeDriver"))
    _check_mounts(check, spec, host.get("Mounts"), inspect.get("Mounts"))

    # Lifecycle and bookkeeping.
    check.equal("HostConfig.Init", host.get("Init"), False)
    check.equal("HostConfig.AutoRemove", host.get("AutoRemove"), False)
    check.equal(
        "HostConfig.RestartPolicy.Name",
        (host.get("RestartPolicy") or {}).get("Name") or "no",
        "no",
    )
    check.equal(
        "HostConfig.LogConfig",
        host.get("LogConfig"),
        {"Type": "json-file", "Config": {"max-size": LOG_MAX_SIZE, "max-file": LOG_MAX_FILE}},
    )
    check.equal("Config.Image", config.get("Image"), spec.image)
    if spec.image_id is not None:
        check.equal("Image", inspect.get("Image"), spec.image_id)
    _check_labels(check, config.get("Labels") or {}, container_labels(spec, extra_labels or {}))
    return check.mismatches


def _check_mounts(check: _Checker, spec: ContainerSpec, requested: Any, effective: Any) -> None:
    expected_requested = [
        {"Type": "volume", "Source": m.volume, "Target": m.target, "ReadOnly": m.read_only}
        for m in spec.mounts
    ]
    # The engine leaves out ReadOnly when false, and adds nothing else for a plain volume.
    got_requested = [
        {
            **mount,
            "ReadOnly": bool(mount.get("ReadOnly")),
        }
        for mount in requested or []
    ]
    check.equal("HostConfig.Mounts", got_requested, expected_requested)

    expected_effective = sorted(
        (m.volume, m.target, not m.read_only, "volume", "local") for m in spec.mounts
    )
    got_effective = sorted(
        (
            mount.get("Name"),
            mount.get("Destination"),
            mount.get("RW"),
            mount.get("Type"),
            mount.get("Driver"),
        )
        for mount in effective or []
    )
    check.equal("Mounts", got_effective, expected_effective)


def _check_labels(check: _Checker, got: Mapping[str, str], expected: Mapping[str, str]) -> None:
    for key, value in expected.items():
        check.equal(f"Config.Labels[{key}]", got.get(key), value)
    # Image labels may add keys (images/build.sh adds fta.image, fta.inputs), but none of the
    # ownership labels the reconciler trusts.
    for key in OWNERSHIP_LABELS:
        if key in got and key not in expected:
            check.mismatches.append(f"Config.Labels[{key}]: unexpected ownership label")


def verify_network(
    inspect: Mapping[str, Any],
    *,
    name: str,
    layout: TenantSubnet,
    bridge: str,
    labels: Mapping[str, str],
) -> list[str]:
    """Differences between a tenant network as inspected and as fta creates it."""
    check = _Checker()
    check.equal("Name", inspect.get("Name"), name)
    check.equal("Driver", inspect.get("Driver"), "bridge")
    check.equal("Scope", inspect.get("Scope"), "local")
    check.equal("Internal", inspect.get("Internal"), True)
    check.equal("EnableIPv6", inspect.get("EnableIPv6"), False)
    check.equal("Attachable", inspect.get("Attachable"), False)
    check.equal("Ingress", inspect.get("Ingress"), False)
    check.equal("ConfigOnly", inspect.get("ConfigOnly"), False)
    check.empty("ConfigFrom.Network", (inspect.get("ConfigFrom") or {}).get("Network"))
    check.equal("Options", inspect.get("Options"), network_options(bridge))
    ipam = inspect.get("IPAM") or {}
    check.equal("IPAM.Driver", ipam.get("Driver"), "default")
    check.equal(
        "IPAM.Config",
        [
            {key: pool.get(key) for key in ("Subnet", "IPRange", "Gateway")}
            for pool in ipam.get("Config") or []
        ],
        [
            {
                "Subnet": str(layout.subnet),
                "IPRange": str(layout.dynamic_range),
                "Gateway": str(layout.bridge_ip),
            }
        ],
    )
    got_labels = inspect.get("Labels") or {}
    for key, value in labels.items():
        check.equal(f"Labels[{key}]", got_labels.get(key), value)
    return check.mismatches


def verify_volume(
    inspect: Mapping[str, Any], *, name: str, options: Mapping[str, str] | None
) -> list[str]:
    """Differences between a volume as inspected and the local volume fta creates: without
    options, or with exactly the tenant disk bind's (other options could mount anything)."""
    check = _Checker()
    check.equal("Name", inspect.get("Name"), name)
    check.equal("Driver", inspect.get("Driver"), "local")
    check.equal("Scope", inspect.get("Scope"), "local")
    if options:
        check.equal("Options", inspect.get("Options"), dict(options))
    else:
        check.empty("Options", inspect.get("Options"))
    return check.mismatches
