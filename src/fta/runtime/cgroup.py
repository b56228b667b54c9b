"""Per-tenant parent cgroups: their name for Docker, and their counters for metering.

Every container of a tenant is created under one parent cgroup, which keeps the CPU time of
children that have already exited. cgroup v1 (cgroupfs, as on the development machines) and
cgroup v2 (systemd driver, as on production hosts) lay the counters out differently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

CgroupDriver = Literal["cgroupfs", "systemd"]
CgroupVersion = Literal[1, 2]


def cgroup_parent(tenant_id: str, *, driver: CgroupDriver, root: str) -> str:
    """The HostConfig.CgroupParent of a tenant's containers.

    systemd nests slices by the dashes in their names: `fta-<id>.slice` lives in `fta.slice`.
    """
    if driver == "systemd":
        return f"{root}-{tenant_id}.slice"
    return f"/{root}/{tenant_id}"


def tenant_cgroup_relpath(tenant_id: str, *, driver: CgroupDriver, root: str) -> str:
    """Where the parent cgroup lives under a hierarchy's mount point."""
    if driver == "systemd":
        return f"{root}.slice/{root}-{tenant_id}.slice"
    return f"{root}/{tenant_id}"


@dataclass(frozen=True)
class TenantCgroupUsage:
    cpu_seconds: float
    memory_max_bytes: int
    # None where the kernel does not count OOM kills for this hierarchy.
    oom_kills: int | None


def parse_flat_keyed(text: str) -> dict[str, int]:
    """Parses `key value` lines (cpu.stat, memory.events, memory.oom_control)."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            values[parts[0]] = int(parts[1])
    return values


def parse_single_value(text: str) -> int:
    """Parses a one-number file (cpuacct.usage, memory.max_usage_in_bytes, memory.peak)."""
    return int(text.strip())


def read_tenant_usage(
    tenant_id: str,
    *,
    version: CgroupVersion,
    driver: CgroupDriver,
    root: str,
    mount: Path = Path("/sys/fs/cgroup"),
) -> TenantCgroupUsage:
    """Reads a tenant's cumulative CPU time, peak memory and OOM kills."""
    relpath = tenant_cgroup_relpath(tenant_id, driver=driver, root=root)
    if version == 1:
        return _read_v1(mount, relpath)
    return _read_v2(mount / relpath)


def _read_v1(mount: Path, relpath: str) -> TenantCgroupUsage:
    cpu_ns = parse_single_value((mount / "cpuacct" / relpath / "cpuacct.usage").read_text())
    memory = mount / "memory" / relpath
    peak = parse_single_value((memory / "memory.max_usage_in_bytes").read_text())
    # Kernels from 4.13 add an oom_kill count to memory.oom_control.
    oom_kills = parse_flat_keyed((memory / "memory.oom_control").read_text()).get("oom_kill")
    return TenantCgroupUsage(cpu_ns / 1e9, peak, oom_kills)


def _read_v2(directory: Path) -> TenantCgroupUsage:
    cpu_usec = parse_flat_keyed((directory / "cpu.stat").read_text())["usage_usec"]
    # memory.peak exists from Linux 5.19; before that the current usage is the best reading.
    peak_file = directory / "memory.peak"
    if not peak_file.exists():
        peak_file = directory / "memory.current"
    peak = parse_single_value(peak_file.read_text())
    events = parse_flat_keyed((directory / "memory.events").read_text())
    return TenantCgroupUsage(cpu_usec / 1e6, peak, events.get("oom_kill"))
