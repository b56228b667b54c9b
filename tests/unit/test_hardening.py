"""The hardened create body, its verification on inspect output, and the tenant layout."""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from fta.runtime.docker_output import parse_docker_time, split_log_lines
from fta.runtime.network import bridge_name, network_options, tenant_subnet
from fta.runtime.spec import (
    ContainerSpec,
    Limits,
    Mount,
    container_create_body,
    tenant_volume_options,
)
from fta.runtime.verify import verify_hardening, verify_network, verify_volume
from fta.seccomp import security_opt

TENANT = "k3vq7m2a"
PARENT = f"/fta/{TENANT}"
EXTRA = {"fta.test": "1"}


def make_spec(**changes: Any) -> ContainerSpec:
    fields: dict[str, Any] = {
        "tenant_id": TENANT,
        "owner_kind": "job",
        "owner_id": "1234",
        "image": "fta/freqtrade:2026.9",
        "command": ["backtesting"],
        "env": {"FTA_BUNDLE_0": "QUJD"},
        "limits": Limits(
            nano_cpus=1_000_000_000, memory_bytes=512 << 20, pids=128, tmpfs_bytes=64 << 20
        ),
        "mounts": [
            Mount(f"fta-data-{TENANT}", "/freqtrade/user_data", read_only=False),
            Mount("fta-candles", "/candles", read_only=True),
        ],
        "network": f"fta-client-{TENANT}",
        "extra_hosts": {"market-data": "10.210.0.2"},
        "dns": ["10.210.0.3"],
    }
    fields.update(changes)
    return ContainerSpec(**fields)


def engine_inspect(spec: ContainerSpec) -> dict[str, Any]:
    """`docker inspect` as Docker 20.10 returns it for the body fta sends."""
    body = container_create_body(spec, cgroup_parent=PARENT, extra_labels=EXTRA)
    host = body["HostConfig"]
    mounts = []
    for mount in host["Mounts"]:
        stored = {"Type": "volume", "Source": mount["Source"], "Target": mount["Target"]}
        if mount["ReadOnly"]:
            stored["ReadOnly"] = True
        mounts.append(stored)
    return {
        "Id": "f" * 64,
        "State": {"Status": "created", "Running": False},
        "HostConfig": {
            **host,
            "Binds": None,
            "PortBindings": {},
            "RestartPolicy": {"Name": "", "MaximumRetryCount": 0},
            "AutoRemove": False,
            "VolumeDriver": "",
            "VolumesFrom": None,
            "CapAdd": None,
            "DnsSearch": [],
            "GroupAdd": None,
            "Links": None,
            "OomScoreAdj": 0,
            "PidMode": "",
            "UTSMode": "",
            "UsernsMode": "",
            "ShmSize": 67108864,
            "Runtime": "runc",
            "Devices": [],
            "DeviceCgroupRules": None,
            "DeviceRequests": None,
            "Ulimits": None,
            "Mounts": mounts,
            "MaskedPaths": [
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
            ],
            "ReadonlyPaths": [
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger",
            ],
        },
        "Mounts": [
            {
                "Type": "volume",
                "Name": m.volume,
                "Source": f"/var/lib/docker/volumes/{m.volume}/_data",
                "Destination": m.target,
                "Driver": "local",
                "Mode": "z",
                "RW": not m.read_only,
                "Propagation": "",
            }
            for m in spec.mounts
        ],
        "Config": {
            "User": body["User"],
            "Image": body["Image"],
            "Env": body["Env"],
            "Cmd": body.get("Cmd"),
            "Labels": {**body["Labels"], "fta.image": "freqtrade", "fta.inputs": "0" * 64},
            "ExposedPorts": {"8080/tcp": {}},
        },
    }


def verify(spec: ContainerSpec, inspect: dict[str, Any]) -> list[str]:
    return verify_hardening(spec, inspect, cgroup_parent=PARENT, extra_labels=EXTRA)


def test_engine_output_for_the_body_passes() -> None:
    spec = make_spec()
    assert verify(spec, engine_inspect(spec)) == []


def test_body_carries_the_hardening() -> None:
    body = container_create_body(make_spec(), cgroup_parent=PARENT, extra_labels=EXTRA)
    host = body["HostConfig"]
    assert body["User"] == "10000:10000"
    assert host["Privileged"] is False
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert "CapAdd" not in host
    assert host["SecurityOpt"] == ["no-new-privileges", security_opt()]
    assert host["Memory"] == host["MemorySwap"] == 512 << 20
    assert host["NanoCpus"] == 1_000_000_000
    assert host["PidsLimit"] == 128
    assert host["Tmpfs"] == {"/tmp": f"rw,nosuid,nodev,size={64 << 20}"}
    assert host["NetworkMode"] == f"fta-client-{TENANT}"
    assert host["Dns"] == ["10.210.0.3"]
    assert host["ExtraHosts"] == ["market-data:10.210.0.2"]
    assert host["CgroupParent"] == PARENT
    assert host["IpcMode"] == "private"
    assert host["PublishAllPorts"] is False
    assert "PortBindings" not in host and "Binds" not in host and "Devices" not in host
    assert host["LogConfig"]["Type"] == "json-file"
    assert set(host["LogConfig"]["Config"]) == {"max-size", "max-file"}
    assert all(mount["Type"] == "volume" for mount in host["Mounts"])
    assert body["Labels"] == {
        "fta.test": "1",
        "fta.managed": "1",
        "fta.tenant": TENANT,
        "fta.kind": "job",
        "fta.job": "1234",
    }
    assert next(iter(body)) == "HostConfig"


def test_bot_containers_carry_a_bot_label() -> None:
    body = container_create_body(
        make_spec(owner_kind="bot", owner_id="77"), cgroup_parent=PARENT, extra_labels={}
    )
    assert body["Labels"]["fta.bot"] == "77"
    assert "fta.job" not in body["Labels"]


Tamper = Callable[[dict[str, Any]], None]


def host_set(key: str, value: Any) -> Tamper:
    return lambda inspect: inspect["HostConfig"].__setitem__(key, value)


def config_set(key: str, value: Any) -> Tamper:
    return lambda inspect: inspect["Config"].__setitem__(key, value)


def label_set(key: str, value: str) -> Tamper:
    return lambda inspect: inspect["Config"]["Labels"].__setitem__(key, value)


def host_mount(index: int, key: str, value: Any) -> Tamper:
    return lambda inspect: inspect["HostConfig"]["Mounts"][index].__setitem__(key, value)


def mount_point(index: int, key: str, value: Any) -> Tamper:
    return lambda inspect: inspect["Mounts"][index].__setitem__(key, value)


def add_anonymous_volume(inspect: dict[str, Any]) -> None:
    inspect["Mounts"].append(
        {"Type": "volume", "Name": "a" * 64, "Destination": "/data", "Driver": "local", "RW": True}
    )


TAMPERED: dict[str, tuple[Tamper, str]] = {
    "privileged": (host_set("Privileged", True), "HostConfig.Privileged"),
    "cap added": (host_set("CapAdd", ["NET_ADMIN"]), "HostConfig.CapAdd"),
    "caps kept": (host_set("CapDrop", ["NET_RAW"]), "HostConfig.CapDrop"),
    "caps not dropped": (host_set("CapDrop", None), "HostConfig.CapDrop"),
    "new privileges": (host_set("SecurityOpt", None), "HostConfig.SecurityOpt"),
    "seccomp off": (
        host_set("SecurityOpt", ["no-new-privileges", "seccomp=unconfined"]),
        "HostConfig.SecurityOpt",
    ),
    "apparmor off": (
        host_set("SecurityOpt", ["no-new-privileges", "apparmor=unconfined"]),
        "HostConfig.SecurityOpt",
    ),
    "writable root": (host_set("ReadonlyRootfs", False), "HostConfig.ReadonlyRootfs"),
    "root user": (config_set("User", "0"), "Config.User"),
    "image user": (config_set("User", ""), "Config.User"),
    "extra group": (host_set("GroupAdd", ["0"]), "HostConfig.GroupAdd"),
    "other runtime": (host_set("Runtime", "runsc"), "HostConfig.Runtime"),
    "unmasked proc": (host_set("MaskedPaths", []), "HostConfig.MaskedPaths"),
    "writable proc": (host_set("ReadonlyPaths", ["/proc/bus"]), "HostConfig.ReadonlyPaths"),
    "sysctl": (host_set("Sysctls", {"net.ipv4.ip_forward": "1"}), "HostConfig.Sysctls"),
    "memory": (host_set("Memory", 0), "HostConfig.Memory"),
    "swap": (host_set("MemorySwap", -1), "HostConfig.MemorySwap"),
    "cpus": (host_set("NanoCpus", 0), "HostConfig.NanoCpus"),
    "pids": (host_set("PidsLimit", None), "HostConfig.PidsLimit"),
    "oom killer off": (host_set("OomKillDisable", True), "HostConfig.OomKillDisable"),
    "oom score": (host_set("OomScoreAdj", -1000), "HostConfig.OomScoreAdj"),
    "ulimits": (
        host_set("Ulimits", [{"Name": "nofile", "Soft": 1, "Hard": 2}]),
        "HostConfig.Ulimits",
    ),
    "cgroup parent": (host_set("CgroupParent", "/"), "HostConfig.CgroupParent"),
    "tmpfs size": (host_set("Tmpfs", {"/tmp": "rw,exec"}), "HostConfig.Tmpfs"),
    "extra tmpfs": (
        host_set("Tmpfs", {"/tmp": f"rw,nosuid,nodev,size={64 << 20}", "/run": ""}),
        "HostConfig.Tmpfs",
    ),
    "host pid": (host_set("PidMode", "host"), "HostConfig.PidMode"),
    "shared pid": (host_set("PidMode", "container:abc"), "HostConfig.PidMode"),
    "host ipc": (host_set("IpcMode", "host"), "HostConfig.IpcMode"),
    "host userns": (host_set("UsernsMode", "host"), "HostConfig.UsernsMode"),
    "host uts": (host_set("UTSMode", "host"), "HostConfig.UTSMode"),
    "host cgroupns": (host_set("CgroupnsMode", "host"), "HostConfig.CgroupnsMode"),
    "host network": (host_set("NetworkMode", "host"), "HostConfig.NetworkMode"),
    "default bridge": (host_set("NetworkMode", "bridge"), "HostConfig.NetworkMode"),
    "ports": (
        host_set("PortBindings", {"8080/tcp": [{"HostIp": "", "HostPort": "8080"}]}),
        "HostConfig.PortBindings",
    ),
    "publish all": (host_set("PublishAllPorts", True), "HostConfig.PublishAllPorts"),
    "links": (host_set("Links", ["/other:/me/other"]), "HostConfig.Links"),
    "dns": (host_set("Dns", ["8.8.8.8"]), "HostConfig.Dns"),
    "no dns": (host_set("Dns", None), "HostConfig.Dns"),
    "dns options": (host_set("DnsOptions", None), "HostConfig.DnsOptions"),
    "dns search": (host_set("DnsSearch", ["example.com"]), "HostConfig.DnsSearch"),
    "extra hosts": (
        host_set("ExtraHosts", ["market-data:10.210.0.2", "evil:1.2.3.4"]),
        "HostConfig.ExtraHosts",
    ),
    "device": (
        host_set(
            "Devices",
            [{"PathOnHost": "/dev/sda", "PathInContainer": "/dev/sda", "CgroupPermissions": "rwm"}],
        ),
        "HostConfig.Devices",
    ),
    "gpu": (host_set("DeviceRequests", [{"Count": -1}]), "HostConfig.DeviceRequests"),
    "device rule": (host_set("DeviceCgroupRules", ["a *:* rwm"]), "HostConfig.DeviceCgroupRules"),
    "bind": (host_set("Binds", ["/:/host"]), "HostConfig.Binds"),
    "docker socket": (
        host_set("Binds", ["/var/run/docker.sock:/var/run/docker.sock"]),
        "HostConfig.Binds",
    ),
    "volumes from": (host_set("VolumesFrom", ["fta-market-data"]), "HostConfig.VolumesFrom"),
    "volume driver": (host_set("VolumeDriver", "nfs"), "HostConfig.VolumeDriver"),
    "bind mount": (host_mount(0, "Type", "bind"), "HostConfig.Mounts"),
    "other volume": (host_mount(0, "Source", "fta-data-other"), "HostConfig.Mounts"),
    "writable cache": (host_mount(1, "ReadOnly", False), "HostConfig.Mounts"),
    "volume options": (
        host_mount(0, "VolumeOptions", {"DriverConfig": {"Options": {"device": "/"}}}),
        "HostConfig.Mounts",
    ),
    "mounted writable": (mount_point(1, "RW", True), "Mounts"),
    "mounted bind": (mount_point(0, "Type", "bind"), "Mounts"),
    "mounted elsewhere": (mount_point(0, "Destination", "/"), "Mounts"),
    "other driver": (mount_point(0, "Driver", "nfs"), "Mounts"),
    "anonymous volume": (add_anonymous_volume, "Mounts"),
    "docker-init": (host_set("Init", True), "HostConfig.Init"),
    "engine's default init": (host_set("Init", None), "HostConfig.Init"),
    "auto remove": (host_set("AutoRemove", True), "HostConfig.AutoRemove"),
    "restarts": (host_set("RestartPolicy", {"Name": "always"}), "HostConfig.RestartPolicy"),
    "log driver": (
        host_set("LogConfig", {"Type": "syslog", "Config": {}}),
        "HostConfig.LogConfig",
    ),
    "uncapped log": (
        host_set("LogConfig", {"Type": "json-file", "Config": {}}),
        "HostConfig.LogConfig",
    ),
    "image": (config_set("Image", "evil/image"), "Config.Image"),
    "tenant label": (label_set("fta.tenant", "other"), "Config.Labels[fta.tenant]"),
    "managed label": (label_set("fta.managed", "0"), "Config.Labels[fta.managed]"),
    "job label": (label_set("fta.job", "9"), "Config.Labels[fta.job]"),
    "kind label": (label_set("fta.kind", "bot"), "Config.Labels[fta.kind]"),
    "extra label": (label_set("fta.test", "0"), "Config.Labels[fta.test]"),
    "foreign fta label": (label_set("fta.bot", "9"), "Config.Labels[fta.bot]"),
    "hand-off label from the image": (label_set("fta.handoff", "1"), "Config.Labels[fta.handoff]"),
}


@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_each_tampered_field_is_a_mismatch(case: str) -> None:
    tamper, field = TAMPERED[case]
    spec = make_spec()
    inspect = copy.deepcopy(engine_inspect(spec))
    tamper(inspect)
    mismatches = verify(spec, inspect)
    assert len(mismatches) == 1, mismatches
    assert mismatches[0].startswith(field), mismatches


def test_a_pinned_image_must_be_the_one_the_engine_used() -> None:
    image_id = "sha256:" + "1" * 64
    spec = make_spec(image_id=image_id)
    inspect = engine_inspect(spec)
    assert verify(spec, {**inspect, "Image": image_id}) == []
    mismatches = verify(spec, {**inspect, "Image": "sha256:" + "2" * 64})
    assert len(mismatches) == 1 and mismatches[0].startswith("Image:"), mismatches
    assert verify(make_spec(), inspect) == []


def test_missing_sections_are_mismatches_not_crashes() -> None:
    assert len(verify(make_spec(), {})) > 20


def test_spec_refuses_another_tenants_volume() -> None:
    with pytest.raises(ValueError, match="not tenant"):
        make_spec(mounts=[Mount("fta-data-other", "/freqtrade/user_data", read_only=True)])


def test_spec_keeps_shared_volumes_read_only_except_for_cache_fill() -> None:
    writable = [Mount("fta-candles", "/candles", read_only=False)]
    with pytest.raises(ValueError, match="read-only"):
        make_spec(mounts=writable)
    assert make_spec(owner_kind="cache-fill", mounts=writable).mounts == writable


@pytest.mark.parametrize(
    "changes",
    [
        {"tenant_id": "Bad-Id"},
        {"tenant_id": "abcdefghijk"},
        {"owner_kind": "root"},
        {"owner_id": "../x"},
        {"env": {"lower": "x"}},
        {"env": {"FTA_BUNDLE_0": "é"}},
        {"env": {"FTA_BUNDLE_0": "x" * 100_001}},
        {"command": ["echo", "é"]},
        {
            "mounts": [
                Mount(f"fta-data-{TENANT}", "/a", read_only=False),
                Mount("fta-candles", "/a", read_only=True),
            ]
        },
    ],
)
def test_spec_refuses_bad_fields(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        make_spec(**changes)


@pytest.mark.parametrize(
    ("volume", "target"),
    [
        ("data", "/x"),
        ("fta-data-x", "relative"),
        ("fta-x", "/"),
        ("fta-x", "/a/../b"),
        ("fta-x", "/tmp"),
    ],
)
def test_mount_refuses_bad_names_and_targets(volume: str, target: str) -> None:
    with pytest.raises(ValueError):
        Mount(volume, target, read_only=True)


@pytest.mark.parametrize(
    "changes",
    [
        {"nano_cpus": 0},
        {"memory_bytes": 1024},
        {"pids": 0},
        {"pids": 100_000},
        {"tmpfs_bytes": 0},
        {"tmpfs_bytes": 2 << 30},
    ],
)
def test_limits_refuse_unbounded_values(changes: dict[str, int]) -> None:
    fields = {"nano_cpus": 10**9, "memory_bytes": 1 << 30, "pids": 64, "tmpfs_bytes": 1 << 20}
    with pytest.raises(ValueError):
        Limits(**{**fields, **changes})


def test_tenant_subnet_layout() -> None:
    first = tenant_subnet("10.210.0.0/16", 27, 0)
    assert first.subnet == ipaddress.ip_network("10.210.0.0/27")
    assert str(first.bridge_ip) == "10.210.0.1"
    assert str(first.gateway_ip) == "10.210.0.2"
    assert str(first.dns_ip) == "10.210.0.3"
    assert first.dynamic_range == ipaddress.ip_network("10.210.0.16/28")
    assert first.gateway_ip not in first.dynamic_range
    assert first.dns_ip not in first.dynamic_range

    last = tenant_subnet("10.210.0.0/16", 27, 2047)
    assert last.subnet == ipaddress.ip_network("10.210.255.224/27")
    assert last.dynamic_range == ipaddress.ip_network("10.210.255.240/28")

    small = tenant_subnet("10.210.0.0/16", 29, 1)
    assert small.subnet == ipaddress.ip_network("10.210.0.8/29")
    assert small.dynamic_range == ipaddress.ip_network("10.210.0.12/30")


@pytest.mark.parametrize(
    ("pool", "prefix", "index"),
    [
        ("10.210.0.0/16", 27, 2048),
        ("10.210.0.0/16", 27, -1),
        ("10.210.0.0/16", 30, 0),
        ("10.210.0.0/16", 15, 0),
        ("fd00::/64", 120, 0),
    ],
)
def test_tenant_subnet_refuses_out_of_pool(pool: str, prefix: int, index: int) -> None:
    with pytest.raises(ValueError):
        tenant_subnet(pool, prefix, index)


def test_bridge_names_fit_linux_interface_names() -> None:
    assert bridge_name("ftab-", "k3vq7m2a") == "ftab-k3vq7m2a"
    with pytest.raises(ValueError):
        bridge_name("ftab-", "k3vq7m2abcd")


def network_inspect() -> dict[str, Any]:
    layout = tenant_subnet("10.210.0.0/16", 27, 3)
    return {
        "Name": f"fta-client-{TENANT}",
        "Scope": "local",
        "Driver": "bridge",
        "EnableIPv6": False,
        "IPAM": {
            "Driver": "default",
            "Options": None,
            "Config": [
                {
                    "Subnet": str(layout.subnet),
                    "IPRange": str(layout.dynamic_range),
                    "Gateway": str(layout.bridge_ip),
                }
            ],
        },
        "Internal": True,
        "Attachable": False,
        "Ingress": False,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Options": network_options(f"ftab-{TENANT}"),
        "Labels": {"fta.managed": "1", "fta.tenant": TENANT},
    }


def check_network(inspect: dict[str, Any]) -> list[str]:
    return verify_network(
        inspect,
        name=f"fta-client-{TENANT}",
        layout=tenant_subnet("10.210.0.0/16", 27, 3),
        bridge=f"ftab-{TENANT}",
        labels={"fta.managed": "1", "fta.tenant": TENANT},
    )


def test_network_as_created_passes() -> None:
    assert check_network(network_inspect()) == []


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("Internal", False),
        ("Driver", "macvlan"),
        ("EnableIPv6", True),
        ("Attachable", True),
        (
            "Options",
            {
                **network_options(f"ftab-{TENANT}"),
                "com.docker.network.bridge.enable_ip_masquerade": "true",
            },
        ),
        ("Options", network_options("docker0")),
        ("IPAM", {"Driver": "default", "Config": [{"Subnet": "10.210.0.0/16"}]}),
        ("Labels", {"fta.managed": "1", "fta.tenant": "other"}),
        ("ConfigFrom", {"Network": "template"}),
    ],
)
def test_network_with_other_settings_is_refused(key: str, value: Any) -> None:
    inspect = network_inspect()
    inspect[key] = value
    assert check_network(inspect)


def test_volume_with_driver_options_is_refused() -> None:
    plain = {"Name": "fta-candles", "Driver": "local", "Scope": "local", "Options": None}
    assert verify_volume(plain, name="fta-candles", options=None) == []
    assert verify_volume({**plain, "Options": {}}, name="fta-candles", options=None) == []
    bind = {**plain, "Options": {"type": "none", "o": "bind", "device": "/"}}
    assert verify_volume(bind, name="fta-candles", options=None) == [
        "Options: expected nothing, got " + repr(bind["Options"])
    ]
    assert verify_volume({**plain, "Driver": "nfs"}, name="fta-candles", options=None)


def test_tenant_volume_must_bind_exactly_its_disk() -> None:
    disk = tenant_volume_options("/var/lib/fta/tenant-disks/mounts/abc")
    volume = {"Name": "fta-data-abc", "Driver": "local", "Scope": "local", "Options": disk}
    assert verify_volume(volume, name="fta-data-abc", options=disk) == []
    for options in (None, {}, {**disk, "device": "/"}, {**disk, "o": "bind,rw"}):
        assert verify_volume({**volume, "Options": options}, name="fta-data-abc", options=disk)


def test_log_lines_are_split_and_capped() -> None:
    chunks = [b"first li", b"ne\r\nsecond\n", b"x" * 25, b"\n\xff tail"]
    assert list(split_log_lines(chunks, 10)) == [
        "first line",
        "second",
        "x" * 10,
        "x" * 10,
        "x" * 5,
        "\ufffd tail",
    ]
    assert list(split_log_lines([b"\n\n"], 10)) == ["", ""]


def test_docker_times_keep_microseconds() -> None:
    assert parse_docker_time("2026-11-24T06:44:49.024624444Z") == datetime(
        2026, 11, 24, 6, 44, 49, 24624, tzinfo=UTC
    )
    assert parse_docker_time("2026-11-24T06:44:49Z") == datetime(
        2026, 11, 24, 6, 44, 49, tzinfo=UTC
    )
    assert parse_docker_time("0001-01-01T00:00:00Z") is None
    assert parse_docker_time(None) is None
