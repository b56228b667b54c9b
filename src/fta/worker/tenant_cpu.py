"""The CPU time the kernel counted in a tenant's parent cgroup, read from the host's cgroup
file system when the worker can see it (None when it cannot: then samples are used)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from fta.runtime import read_tenant_usage
from fta.runtime.cgroup import CgroupDriver, CgroupVersion

CGROUP_MOUNT = Path("/sys/fs/cgroup")
DRIVERS: tuple[CgroupDriver, ...] = ("cgroupfs", "systemd")


def tenant_cpu_seconds(tenant_id: str, root: str, mount: Path = CGROUP_MOUNT) -> Decimal | None:
    version: CgroupVersion = 2 if (mount / "cgroup.controllers").exists() else 1
    for driver in DRIVERS:
        try:
            usage = read_tenant_usage(
                tenant_id, version=version, driver=driver, root=root, mount=mount
            )
        except (OSError, KeyError, ValueError):
            continue
        return Decimal(str(usage.cpu_seconds)).quantize(Decimal("0.001"))
    return None


@dataclass(frozen=True)
class CgroupWindow:
    """The tenant cgroup's CPU time gained between two instants around one container."""

    start: datetime
    end: datetime
    cpu_seconds: Decimal
