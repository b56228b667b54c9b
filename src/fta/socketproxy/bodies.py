"""What each create body may say: the hardened container, the tenant network, the gateway's
connection to it (and disconnection from it), the volumes the worker makes and the hand-off
exec (see fta.runtime.spec and network), in the exact shape the worker sends them, with this
installation's labels. Anything else is refused.

Every field the worker sends is required: a body without `ReadonlyRootfs` would get the
engine's default, not ours.
"""

from __future__ import annotations

import posixpath
from typing import Any

from fta.seccomp import security_opt
from fta.socketproxy.config import ProxyConfig
from fta.socketproxy.errors import Refused
from fta.socketproxy.schema import (
    Check,
    array,
    boolean,
    exactly,
    integer,
    mapping,
    null,
    record,
    text,
)

TENANT = r"[a-z0-9]{1,10}"
VOLUME = r"fta-[a-z0-9][a-z0-9-]{0,62}"
IPV4 = r"(25[0-5]|2[0-4][0-9]|1?[0-9]{1,2})(\.(25[0-5]|2[0-4][0-9]|1?[0-9]{1,2})){3}"
CIDR = IPV4 + r"/([12]?[0-9]|3[0-2])"
LABEL_KEY = r"[a-z0-9][a-z0-9._-]{0,127}"
LABEL_VALUE = r"[ -~]{0,256}"
# The container's own size-capped tmpfs, not a directory of the host.
TMPFS_TARGET = "/tmp"  # noqa: S108
CONTAINER_NAME = (
    r"fta-[a-z0-9]{1,10}-(job|bot|cache-fill)-[A-Za-z0-9][A-Za-z0-9_.-]{0,63}-[0-9a-f]{6}"
)
# fta.runtime.spec's JOB_USER and HANDOFF_COMMAND, copied: the proxy's image carries its own
# package only (tests/unit/test_socket_proxy_exec.py keeps them equal).
JOB_USER = "10000:10000"
HANDOFF_COMMAND = ("python3", "/opt/fta/fta_job_entry.py", "--hand-off")
# A chunk of the job bundle (fta.freqtrade.bundle), printable ASCII only.
BUNDLE_ENV = r"FTA_BUNDLE_(0|[1-9][0-9]?)=[ -~]{0,100000}"

_labels = mapping(LABEL_KEY, text(LABEL_VALUE), max_items=32)

_mount = record(
    {
        "Type": exactly("volume"),
        "Source": text(VOLUME),
        "Target": text(r"/[A-Za-z0-9_./-]{1,255}"),
        "ReadOnly": boolean,
    }
)

_host_config = record(
    {
        "Privileged": exactly(False),
        "ReadonlyRootfs": exactly(True),
        "CapDrop": exactly(["ALL"]),
        "SecurityOpt": exactly(["no-new-privileges", security_opt()]),
        "NetworkMode": text(r"fta-client-" + TENANT),
        "Dns": array(text(IPV4), max_items=3),
        "DnsOptions": array(text(r"(timeout|attempts):[0-9]{1,2}"), max_items=4),
        "ExtraHosts": array(text(r"[a-z0-9][a-z0-9.-]{0,62}:" + IPV4), max_items=8),
        "PublishAllPorts": exactly(False),
        "Memory": integer(6 << 20, 1 << 40),
        "MemorySwap": integer(6 << 20, 1 << 40),
        "NanoCpus": integer(10_000_000, 256_000_000_000),
        "PidsLimit": integer(8, 4096),
        "OomKillDisable": exactly(False),
        "CgroupParent": text(
            r"/[a-z][a-z0-9]{0,31}/" + TENANT + r"|[a-z][a-z0-9]{0,31}-" + TENANT + r"\.slice"
        ),
        "IpcMode": exactly("private"),
        "CgroupnsMode": exactly("private"),
        "Init": exactly(False),
        "Tmpfs": record({TMPFS_TARGET: text(r"rw,nosuid,nodev,size=[0-9]{1,12}")}),
        "Mounts": array(_mount, max_items=8),
        "LogConfig": record(
            {
                "Type": exactly("json-file"),
                "Config": record(
                    {"max-size": text(r"[0-9]{1,4}[km]"), "max-file": text(r"[0-9]{1,2}")}
                ),
            }
        ),
    }
)

_container = record(
    {
        "HostConfig": _host_config,
        "User": exactly(JOB_USER),
        "Image": text(r"[a-z0-9][a-z0-9._/-]{0,199}(:[A-Za-z0-9._-]{1,128})?"),
        "Env": array(text(r"[A-Z_][A-Z0-9_]{0,127}=[\t\n -~]{0,100000}"), max_items=64),
        "Labels": _labels,
        "AttachStdin": exactly(False),
        "AttachStdout": exactly(False),
        "AttachStderr": exactly(False),
        "Tty": exactly(False),
        "OpenStdin": exactly(False),
    },
    {"Cmd": array(text(r"[\t\n -~]{0,100000}"), max_items=64)},
)


def check_container_create(body: dict[str, Any], name: str, config: ProxyConfig) -> None:
    _container(body, "container")
    labels: dict[str, str] = body["Labels"]
    tenant = _check_owned_labels(labels, config, "container")
    kind = labels.get("fta.kind")
    if kind not in ("job", "bot", "cache-fill"):
        raise Refused(403, "container: label fta.kind must be job, bot or cache-fill")
    if not name.startswith(f"fta-{tenant}-{kind}-"):
        raise Refused(403, "container: its name must be its tenant's and kind's")
    host = body["HostConfig"]
    if host["NetworkMode"] != f"fta-client-{tenant}":
        raise Refused(403, "container: NetworkMode must be its tenant's network")
    if host["MemorySwap"] != host["Memory"]:
        raise Refused(403, "container: MemorySwap must equal Memory (no swap)")
    parent = host["CgroupParent"]
    if parent not in (f"/{config.cgroup_root}/{tenant}", f"{config.cgroup_root}-{tenant}.slice"):
        raise Refused(403, "container: CgroupParent must be its tenant's")
    targets = set()
    for mount in host["Mounts"]:
        target = mount["Target"]
        if (
            posixpath.normpath(target) != target
            or target in ("/", TMPFS_TARGET)
            or target in targets
        ):
            raise Refused(403, f"container: mount target {target!r} is not allowed")
        targets.add(target)
        source = mount["Source"]
        if source.startswith("fta-data-") and source != f"fta-data-{tenant}":
            raise Refused(403, f"container: {source} is another tenant's volume")
        if not source.startswith("fta-data-") and not mount["ReadOnly"] and kind != "cache-fill":
            raise Refused(403, f"container: shared volume {source} must be read-only")


def check_network_create(body: dict[str, Any], config: ProxyConfig) -> None:
    pool = record(
        {"Subnet": text(CIDR), "IPRange": text(CIDR), "Gateway": text(IPV4)},
        {"AuxiliaryAddresses": null},
    )
    shape = record(
        {
            "Name": text(r"fta-client-" + TENANT),
            "Driver": exactly("bridge"),
            "Options": record(
                {
                    "com.docker.network.bridge.name": text(r"[a-z0-9-]{1,15}"),
                    "com.docker.network.bridge.enable_ip_masquerade": exactly("false"),
                    "com.docker.network.bridge.enable_icc": exactly("true"),
                }
            ),
            "IPAM": record({"Driver": exactly("default"), "Config": array(pool, max_items=1)}),
            "CheckDuplicate": exactly(True),
            "Internal": exactly(True),
            "Labels": _labels,
        },
        {"Attachable": exactly(False)},
    )
    shape(body, "network")
    tenant = _check_owned_labels(body["Labels"], config, "network")
    if body["Name"] != f"fta-client-{tenant}":
        raise Refused(403, "network: its name must be its tenant's")
    if body["Options"]["com.docker.network.bridge.name"] != config.bridge_prefix + tenant:
        raise Refused(403, f"network: the bridge must be named {config.bridge_prefix}{tenant}")
    if len(body["IPAM"]["Config"]) != 1:
        raise Refused(403, "network: exactly one address pool")


def check_network_connect(body: dict[str, Any], config: ProxyConfig) -> None:
    shape = record(
        {
            "Container": exactly(config.gateway_container),
            "EndpointConfig": record({"IPAMConfig": record({"IPv4Address": text(IPV4)})}),
        }
    )
    shape(body, "connect")


def check_network_disconnect(body: dict[str, Any], config: ProxyConfig) -> None:
    """Only the gateway is ever disconnected: a tenant's own containers go with their removal."""
    record({"Container": exactly(config.gateway_container)})(body, "disconnect")


def check_volume_create(body: dict[str, Any], config: ProxyConfig) -> None:
    driver_options: Check = record(
        {"type": exactly("none"), "o": exactly("bind"), "device": text(r"/[A-Za-z0-9_./-]+")}
    )
    shape = record(
        {"Name": text(VOLUME), "Driver": exactly("local"), "Labels": _labels},
        {"DriverOpts": driver_options},
    )
    shape(body, "volume")
    labels: dict[str, str] = body["Labels"]
    name: str = body["Name"]
    if not name.startswith("fta-data-"):
        _check_instance(labels, config, "volume")
        if "DriverOpts" in body:
            raise Refused(403, "volume: only a tenant data volume has driver options")
        return
    tenant = _check_owned_labels(labels, config, "volume")
    if name != f"fta-data-{tenant}":
        raise Refused(403, "volume: a data volume is named after its tenant")
    # The bind of the tenant's own size-capped disk, and nothing else: without it a tenant
    # volume has no quota; with any other device it could mount anything of the host.
    expected = {"type": "none", "o": "bind", "device": f"{config.disk_root}/mounts/{tenant}"}
    if body.get("DriverOpts") != expected:
        raise Refused(403, "volume: a data volume is the bind of its tenant's own disk")


def _check_instance(labels: dict[str, str], config: ProxyConfig, what: str) -> None:
    if labels.get("fta.instance") != config.instance or labels.get("fta.managed") != "1":
        raise Refused(403, f"{what}: must carry fta.instance={config.instance}, fta.managed=1")


def _check_owned_labels(labels: dict[str, str], config: ProxyConfig, what: str) -> str:
    """This installation's labels and a tenant's; returns the tenant."""
    _check_instance(labels, config, what)
    tenant = labels.get("fta.tenant", "")
    text(TENANT)(tenant, f"{what}: label fta.tenant")
    return tenant


def check_exec_create(body: dict[str, Any]) -> None:
    """The hand-off (fta.runtime.docker_runner's exec_create): the fixed command as the job's
    user, nothing attached, not privileged, the job bundle alone in its environment. The
    `Container` docker-py repeats is dropped: the engine goes by the path's (full) id."""
    shape = record(
        {
            "User": exactly(JOB_USER),
            "Privileged": exactly(False),
            "Tty": exactly(False),
            "AttachStdin": exactly(False),
            "AttachStdout": exactly(False),
            "AttachStderr": exactly(False),
            "Cmd": exactly(list(HANDOFF_COMMAND)),
            "Env": array(text(BUNDLE_ENV), max_items=64),
        },
        {"Container": text(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}")},
    )
    shape(body, "exec")
    names = [item.partition("=")[0] for item in body["Env"]]
    if not names:
        raise Refused(403, "exec: Env must hold the job bundle")
    if len(set(names)) != len(names):
        raise Refused(403, "exec: an Env name appears twice")
    body.pop("Container", None)


def check_exec_start(body: dict[str, Any]) -> None:
    """Detached, never a hijacked stream: the worker reads the exec's end from its inspect."""
    record({"Detach": exactly(True), "Tty": exactly(False)})(body, "exec start")


# A create's `name` parameter: fta-<tenant>-<kind>-<owner>-<random>.
container_name = text(CONTAINER_NAME)
