"""Tenant parent cgroups: names for Docker and counter parsing, on fixture files."""

from __future__ import annotations

from pathlib import Path

import pytest

from fta.runtime.cgroup import (
    cgroup_parent,
    parse_flat_keyed,
    parse_single_value,
    read_tenant_usage,
    tenant_cgroup_relpath,
)

CPU_STAT_V2 = """usage_usec 2031554
user_usec 1800000
system_usec 231554
nr_periods 40
nr_throttled 3
throttled_usec 120000
"""
MEMORY_EVENTS_V2 = """low 0
high 0
max 12
oom 2
oom_kill 1
oom_group_kill 0
"""
OOM_CONTROL_V1 = """oom_kill_disable 0
under_oom 0
oom_kill 3
"""


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_parent_names_per_driver() -> None:
    assert cgroup_parent("k3vq7m2a", driver="cgroupfs", root="fta") == "/fta/k3vq7m2a"
    assert cgroup_parent("k3vq7m2a", driver="systemd", root="fta") == "fta-k3vq7m2a.slice"
    assert tenant_cgroup_relpath("k3vq7m2a", driver="cgroupfs", root="fta") == "fta/k3vq7m2a"
    assert (
        tenant_cgroup_relpath("k3vq7m2a", driver="systemd", root="fta")
        == "fta.slice/fta-k3vq7m2a.slice"
    )


def test_flat_keyed_files() -> None:
    assert parse_flat_keyed(CPU_STAT_V2)["usage_usec"] == 2031554
    assert parse_flat_keyed(MEMORY_EVENTS_V2)["oom_kill"] == 1
    assert parse_flat_keyed(OOM_CONTROL_V1) == {
        "oom_kill_disable": 0,
        "under_oom": 0,
        "oom_kill": 3,
    }
    assert parse_flat_keyed("garbage\n\nkey value\nn 5 6\n") == {}


def test_single_value_files() -> None:
    assert parse_single_value("2031554123\n") == 2031554123
    with pytest.raises(ValueError):
        parse_single_value("max\n")


def test_v1_cgroupfs_counters(tmp_path: Path) -> None:
    write(tmp_path / "cpuacct/fta/k3vq7m2a/cpuacct.usage", "2030000000\n")
    write(tmp_path / "memory/fta/k3vq7m2a/memory.max_usage_in_bytes", "268435456\n")
    write(tmp_path / "memory/fta/k3vq7m2a/memory.oom_control", OOM_CONTROL_V1)
    usage = read_tenant_usage("k3vq7m2a", version=1, driver="cgroupfs", root="fta", mount=tmp_path)
    assert usage.cpu_seconds == pytest.approx(2.03)
    assert usage.memory_max_bytes == 268435456
    assert usage.oom_kills == 3


def test_v1_on_old_kernels_has_no_oom_count(tmp_path: Path) -> None:
    base = tmp_path / "memory/fta.slice/fta-k3vq7m2a.slice"
    write(tmp_path / "cpuacct/fta.slice/fta-k3vq7m2a.slice/cpuacct.usage", "5\n")
    write(base / "memory.max_usage_in_bytes", "4096\n")
    write(base / "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\n")
    usage = read_tenant_usage("k3vq7m2a", version=1, driver="systemd", root="fta", mount=tmp_path)
    assert usage.oom_kills is None
    assert usage.memory_max_bytes == 4096


def test_v2_systemd_counters(tmp_path: Path) -> None:
    base = tmp_path / "fta.slice/fta-k3vq7m2a.slice"
    write(base / "cpu.stat", CPU_STAT_V2)
    write(base / "memory.peak", "536870912\n")
    write(base / "memory.current", "1024\n")
    write(base / "memory.events", MEMORY_EVENTS_V2)
    usage = read_tenant_usage("k3vq7m2a", version=2, driver="systemd", root="fta", mount=tmp_path)
    assert usage.cpu_seconds == pytest.approx(2.031554)
    assert usage.memory_max_bytes == 536870912
    assert usage.oom_kills == 1


def test_v2_without_memory_peak_reads_current(tmp_path: Path) -> None:
    base = tmp_path / "fta/k3vq7m2a"
    write(base / "cpu.stat", CPU_STAT_V2)
    write(base / "memory.current", "1024\n")
    write(base / "memory.events", MEMORY_EVENTS_V2)
    usage = read_tenant_usage("k3vq7m2a", version=2, driver="cgroupfs", root="fta", mount=tmp_path)
    assert usage.memory_max_bytes == 1024


def test_missing_tenant_cgroup_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_tenant_usage("k3vq7m2a", version=2, driver="systemd", root="fta", mount=tmp_path)
