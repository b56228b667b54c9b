"""CIS Docker Benchmark v1.6.0, section 5 (container runtime), checked on one container.

Input is what the engine reports: `docker inspect` of the container, `docker info` of the
engine, and optionally the container's process list (`docker top`). Every item of the
section gets a finding: pass, fail, not applicable, or an accepted deviation whose reason
is written in `ACCEPTED_DEVIATIONS` (and in docs/security.md).

Numbering follows v1.6.0, where 5.1 is swarm mode; editions up to v1.4 numbered the same
items one lower (AppArmor was 5.1, the Docker socket 5.31).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from fta.runtime.cgroup import cgroup_parent
from fta.runtime.spec import LABEL_KIND, LABEL_TENANT, TENANT_ID_RE


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NOT_APPLICABLE = "not-applicable"
    ACCEPTED = "accepted-deviation"


@dataclass(frozen=True)
class Finding:
    item: str
    title: str
    status: Status
    reason: str


ANY_KIND = "*"

_ONE_SHOT_RESTART = (
    "restart policy 'no' for a job or a cache fill: one that exits is finished, the worker "
    "records its outcome and removes it; a restart would run hostile code again outside the "
    "job's deadline and accounting"
)
_ONE_SHOT_HEALTH = (
    "no HEALTHCHECK in a job or a cache fill: the worker supervises it through its exit, its "
    "deadline and its output; a health probe would add nothing"
)

# Reasons by item, then by the container's `fta.kind` (ANY_KIND: whatever the kind). A kind
# without a reason for an item is held to the benchmark on that item.
ACCEPTED_DEVIATIONS: Mapping[str, Mapping[str, str]] = {
    "5.2": {
        ANY_KIND: (
            "AppArmor depends on the host: where the kernel has no AppArmor the engine cannot "
            "apply a profile (seccomp, dropped capabilities, no-new-privileges and a non-root "
            "uid still confine the container); where it has, the docker-default profile is "
            "required and its absence fails"
        ),
    },
    "5.15": {
        "job": _ONE_SHOT_RESTART,
        "cache-fill": _ONE_SHOT_RESTART,
        "bot": (
            "restart policy 'no' for a bot: the worker's supervisor restarts a bot that exits, "
            "after a back-off that doubles and at most bot_max_restarts times in a row (5 by "
            "default), recording each crash for its client; an engine policy would be a second "
            "restarter racing the supervisor, with a count the platform never sees"
        ),
    },
    "5.25": {
        ANY_KIND: (
            "a cgroup parent per tenant is used on purpose: it keeps the CPU time of the "
            "tenant's exited containers for metering; it is confirmed to be the tenant's own"
        ),
    },
    "5.27": {
        "job": _ONE_SHOT_HEALTH,
        "cache-fill": _ONE_SHOT_HEALTH,
        "bot": (
            "no HEALTHCHECK in a bot: the worker's supervisor judges it alive from its "
            "container's state and the heartbeat freqtrade sends in the bot's status reports; "
            "an engine probe would run one more process in the tenant's container, and outside "
            "swarm the engine does nothing with its verdict"
        ),
    },
}


# CIS 5.6 names these and the root; the engine's own state is as sensitive.
SENSITIVE_HOST_DIRS = (
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    "/proc",
    "/sys",
    "/usr",
    "/var/lib/docker",
    "/var/lib/containerd",
)
SOCKET_NAMES = ("docker.sock", "containerd.sock", "dockershim.sock")


@dataclass(frozen=True)
class _Container:
    inspect: Mapping[str, Any]
    engine: Mapping[str, Any]
    processes: Sequence[str] | None
    cgroup_root: str
    execs: Sequence[Mapping[str, Any]] | None = None

    @property
    def host(self) -> Mapping[str, Any]:
        return self.inspect.get("HostConfig") or {}

    @property
    def config(self) -> Mapping[str, Any]:
        return self.inspect.get("Config") or {}

    @property
    def labels(self) -> Mapping[str, str]:
        return self.config.get("Labels") or {}

    @property
    def kind(self) -> str:
        return self.labels.get(LABEL_KIND) or ""

    def deviation(self, item: str) -> str | None:
        """The reason `item` may deviate on a container of this kind, if it may."""
        reasons = ACCEPTED_DEVIATIONS[item]
        return reasons.get(ANY_KIND) or reasons.get(self.kind)

    @property
    def security_opt(self) -> list[str]:
        return [opt.replace(":", "=", 1) for opt in self.host.get("SecurityOpt") or []]

    @property
    def engine_security(self) -> str:
        return " ".join(self.engine.get("SecurityOptions") or [])

    def published_ports(self) -> list[tuple[str, str, str]]:
        """(container port, host address, host port) of every port published on the host."""
        published: list[tuple[str, str, str]] = []
        ports = (self.inspect.get("NetworkSettings") or {}).get("Ports")
        for source in (self.host.get("PortBindings"), ports):
            for port, bindings in (source or {}).items():
                for binding in bindings or []:
                    published.append(
                        (port, binding.get("HostIp") or "", binding.get("HostPort") or "")
                    )
        return published

    def host_paths(self) -> list[tuple[str, str]]:
        """(host path, container path) of every bind mount, however it was requested."""
        paths = [
            (str(mount.get("Source") or ""), str(mount.get("Destination") or ""))
            for mount in self.inspect.get("Mounts") or []
            if mount.get("Type") == "bind"
        ]
        paths += [
            (str(mount.get("Source") or ""), str(mount.get("Target") or ""))
            for mount in self.host.get("Mounts") or []
            if mount.get("Type") == "bind"
        ]
        for bind in self.host.get("Binds") or []:
            source, _, rest = str(bind).partition(":")
            if source.startswith("/"):  # not a named volume
                paths.append((source, rest.partition(":")[0]))
        return paths

    def command_lines(self) -> list[str]:
        configured = [
            " ".join(
                [str(self.inspect.get("Path") or ""), *map(str, self.inspect.get("Args") or [])]
            )
        ]
        return configured + list(self.processes or [])


def _is_sensitive(source: str) -> bool:
    """The host root, a sensitive directory, something in one, or a directory holding one."""
    path = posixpath.normpath(source or "/")
    if path == "/":
        return True
    return any(
        path == directory or path.startswith(directory + "/") or directory.startswith(path + "/")
        for directory in SENSITIVE_HOST_DIRS
    )


Check = Callable[[_Container], tuple[Status, str]]


def _swarm(c: _Container) -> tuple[Status, str]:
    state = (c.engine.get("Swarm") or {}).get("LocalNodeState") or "inactive"
    if state == "inactive":
        return Status.PASS, "the engine is not in swarm mode"
    return Status.FAIL, f"the engine's swarm state is {state!r}; fta does not use swarm"


def _apparmor(c: _Container) -> tuple[Status, str]:
    profile = c.inspect.get("AppArmorProfile") or ""
    if profile == "unconfined":
        return Status.FAIL, "the container runs unconfined by AppArmor"
    if profile:
        return Status.PASS, f"AppArmor profile {profile!r}"
    if "name=apparmor" in c.engine_security:
        return Status.FAIL, "the engine has AppArmor, but the container has no profile"
    return Status.ACCEPTED, ACCEPTED_DEVIATIONS["5.2"][ANY_KIND]


def _selinux(c: _Container) -> tuple[Status, str]:
    if "name=selinux" not in c.engine_security:
        return Status.NOT_APPLICABLE, "the engine does not run with SELinux"
    if "label=disable" in c.security_opt:
        return Status.FAIL, "SELinux labelling is disabled for the container"
    if not c.inspect.get("ProcessLabel"):
        return Status.FAIL, "the container has no SELinux process label"
    return Status.PASS, f"SELinux process label {c.inspect.get('ProcessLabel')!r}"


def _capabilities(c: _Container) -> tuple[Status, str]:
    added = c.host.get("CapAdd") or []
    if added:
        return Status.FAIL, f"capabilities added: {sorted(added)}"
    dropped = [cap.upper() for cap in c.host.get("CapDrop") or []]
    if "ALL" not in dropped:
        return Status.FAIL, f"the default capabilities are kept (dropped only {dropped})"
    return Status.PASS, "every capability is dropped and none is added"


def _privileged(c: _Container) -> tuple[Status, str]:
    if c.host.get("Privileged"):
        return Status.FAIL, "the container is privileged"
    return Status.PASS, "not privileged"


def _sensitive_dirs(c: _Container) -> tuple[Status, str]:
    sensitive = [source for source, _ in c.host_paths() if _is_sensitive(source)]
    if sensitive:
        return Status.FAIL, f"sensitive host directories mounted: {sorted(set(sensitive))}"
    binds = len(c.host_paths())
    return Status.PASS, f"no sensitive host directory mounted ({binds} bind mounts in all)"


def _sshd(c: _Container) -> tuple[Status, str]:
    running = [line for line in c.command_lines() if "sshd" in line]
    if running:
        return Status.FAIL, f"sshd runs in the container: {running}"
    where = "its command and process list" if c.processes is not None else "its command"
    return Status.PASS, f"no sshd in {where}"


def _privileged_ports(c: _Container) -> tuple[Status, str]:
    low = [
        port
        for port, _, host_port in c.published_ports()
        if host_port.isdigit() and int(host_port) < 1024
    ]
    if low:
        return Status.FAIL, f"privileged host ports mapped: {sorted(set(low))}"
    return Status.PASS, "no privileged host port is mapped"


def _needed_ports(c: _Container) -> tuple[Status, str]:
    published = c.published_ports()
    if published or c.host.get("PublishAllPorts"):
        return Status.FAIL, f"ports published on the host: {sorted(set(published))}"
    return Status.PASS, "no port is published on the host: nothing of a client is reachable"


def _host_network(c: _Container) -> tuple[Status, str]:
    mode = c.host.get("NetworkMode") or ""
    if mode == "host":
        return Status.FAIL, "the container shares the host's network namespace"
    return Status.PASS, f"network mode {mode!r}"


def _memory(c: _Container) -> tuple[Status, str]:
    memory = int(c.host.get("Memory") or 0)
    if memory <= 0:
        return Status.FAIL, "no memory limit"
    return Status.PASS, f"memory limited to {memory // (1024 * 1024)} MiB"


def _cpu(c: _Container) -> tuple[Status, str]:
    nano_cpus = int(c.host.get("NanoCpus") or 0)
    quota = int(c.host.get("CpuQuota") or 0)
    shares = int(c.host.get("CpuShares") or 0)
    if nano_cpus > 0:
        return Status.PASS, f"CPU capped at {nano_cpus / 1e9:g} CPUs"
    if quota > 0:
        return Status.PASS, f"CPU quota {quota} per period {c.host.get('CpuPeriod')}"
    if shares > 0:
        return Status.PASS, f"CPU shares {shares}"
    return Status.FAIL, "no CPU limit and default CPU shares"


def _read_only_root(c: _Container) -> tuple[Status, str]:
    if c.host.get("ReadonlyRootfs") is True:
        return Status.PASS, "the root filesystem is read-only"
    return Status.FAIL, "the root filesystem is writable"


def _bound_interface(c: _Container) -> tuple[Status, str]:
    # Looked for, not bound to.
    any_address = ("", "0.0.0.0", "::")  # noqa: S104
    wildcard = [port for port, address, _ in c.published_ports() if address in any_address]
    if wildcard:
        return Status.FAIL, f"ports published on every host interface: {sorted(set(wildcard))}"
    if c.host.get("PublishAllPorts"):
        return Status.FAIL, "PublishAllPorts publishes on every host interface"
    return Status.PASS, "no port is published on a wildcard address"


def _restart_policy(c: _Container) -> tuple[Status, str]:
    policy = c.host.get("RestartPolicy") or {}
    name = policy.get("Name") or "no"
    retries = int(policy.get("MaximumRetryCount") or 0)
    if name == "on-failure" and 0 < retries <= 5:
        return Status.PASS, f"restart on failure, at most {retries} times"
    reason = c.deviation("5.15")
    if name == "no" and reason:
        return Status.ACCEPTED, reason
    return Status.FAIL, f"restart policy {name!r} (retries {retries}) on kind {c.kind!r}"


def _namespace(field: str, what: str) -> Check:
    def check(c: _Container) -> tuple[Status, str]:
        mode = str(c.host.get(field) or "")
        if mode == "host" or mode.startswith("container:") or mode == "shareable":
            return Status.FAIL, f"{field} {mode!r}: the {what} namespace is shared"
        return Status.PASS, f"{field} {mode or 'default'!r}: a private {what} namespace"

    return check


def _devices(c: _Container) -> tuple[Status, str]:
    exposed = {
        field: c.host.get(field)
        for field in ("Devices", "DeviceRequests", "DeviceCgroupRules")
        if c.host.get(field)
    }
    if exposed:
        return Status.FAIL, f"host devices exposed: {exposed}"
    return Status.PASS, "no host device is exposed"


def _ulimits(c: _Container) -> tuple[Status, str]:
    ulimits = c.host.get("Ulimits") or []
    unlimited = [
        limit.get("Name") for limit in ulimits if -1 in (limit.get("Soft"), limit.get("Hard"))
    ]
    if unlimited:
        return Status.FAIL, f"ulimits raised to unlimited: {unlimited}"
    if not ulimits:
        return Status.PASS, "the engine's default ulimits apply; processes are capped by PIDs"
    return Status.PASS, f"ulimits set: {[limit.get('Name') for limit in ulimits]}"


def _mount_propagation(c: _Container) -> tuple[Status, str]:
    shared = [
        mount.get("Destination")
        for mount in c.inspect.get("Mounts") or []
        if mount.get("Propagation") in ("shared", "rshared")
    ]
    shared += [
        mount.get("Target")
        for mount in c.host.get("Mounts") or []
        if (mount.get("BindOptions") or {}).get("Propagation") in ("shared", "rshared")
    ]
    if shared:
        return Status.FAIL, f"mounts with shared propagation: {shared}"
    return Status.PASS, "no mount has shared propagation"


def _seccomp(c: _Container) -> tuple[Status, str]:
    if "seccomp=unconfined" in c.security_opt:
        return Status.FAIL, "seccomp is disabled for the container"
    if c.host.get("Privileged"):
        return Status.FAIL, "a privileged container runs without seccomp"
    if "name=seccomp" not in c.engine_security:
        return Status.FAIL, "the engine applies no seccomp profile"
    custom = [opt for opt in c.security_opt if opt.startswith("seccomp=")]
    return Status.PASS, "a custom seccomp profile" if custom else "the default seccomp profile"


def _exec_sessions(what: str, harmless: Callable[[Mapping[str, Any]], bool]) -> Check:
    """Judges every exec the container had by its inspect's ProcessConfig; an exec whose
    inspect is not given cannot be judged."""

    def check(c: _Container) -> tuple[Status, str]:
        sessions = c.inspect.get("ExecIDs") or []
        if not sessions:
            return Status.PASS, "no exec session was ever opened"
        judged = {e.get("ID"): e.get("ProcessConfig") or {} for e in c.execs or []}
        if any(session not in judged for session in sessions):
            return Status.FAIL, f"{len(sessions)} exec sessions: {what} cannot be excluded"
        offending = [s for s in sessions if not harmless(judged[s])]
        if offending:
            return Status.FAIL, f"{len(offending)} of {len(sessions)} exec sessions: {what}"
        return Status.PASS, f"{len(sessions)} exec sessions, none of them {what}"

    return check


def _unprivileged(process: Mapping[str, Any]) -> bool:
    return process.get("privileged") is False


def _not_root(process: Mapping[str, Any]) -> bool:
    user = str(process.get("user") or "").split(":", 1)[0]
    return user not in ("", "0", "root")


def _cgroup(c: _Container) -> tuple[Status, str]:
    parent = c.host.get("CgroupParent") or ""
    if not parent:
        return Status.PASS, "the engine's default cgroup"
    tenant = c.labels.get(LABEL_TENANT, "")
    driver = c.engine.get("CgroupDriver")
    if TENANT_ID_RE.fullmatch(tenant) and driver in ("cgroupfs", "systemd"):
        expected = cgroup_parent(tenant, driver=driver, root=c.cgroup_root)
        if parent == expected:
            return Status.ACCEPTED, f"cgroup parent {parent!r}: " + ACCEPTED_DEVIATIONS["5.25"][
                ANY_KIND
            ]
    return Status.FAIL, f"cgroup parent {parent!r} is not the tenant's ({tenant!r})"


def _no_new_privileges(c: _Container) -> tuple[Status, str]:
    if any(opt in ("no-new-privileges", "no-new-privileges=true") for opt in c.security_opt):
        return Status.PASS, "no-new-privileges is set"
    return Status.FAIL, "the container may gain privileges through setuid binaries"


def _healthcheck(c: _Container) -> tuple[Status, str]:
    test = (c.config.get("Healthcheck") or {}).get("Test") or []
    if test and test[0] != "NONE":
        return Status.PASS, f"health check {test}"
    reason = c.deviation("5.27")
    if reason:
        return Status.ACCEPTED, reason
    return Status.FAIL, f"no health check on a container of kind {c.kind!r}"


def _latest_image(_: _Container) -> tuple[Status, str]:
    return Status.NOT_APPLICABLE, (
        "images are built locally by images/build.sh and never pulled: no tag can go stale "
        "against a registry"
    )


def _pids(c: _Container) -> tuple[Status, str]:
    limit = int(c.host.get("PidsLimit") or 0)
    if limit > 0:
        return Status.PASS, f"at most {limit} processes"
    return Status.FAIL, "no PIDs limit"


def _default_bridge(c: _Container) -> tuple[Status, str]:
    mode = c.host.get("NetworkMode") or ""
    networks = (c.inspect.get("NetworkSettings") or {}).get("Networks") or {}
    if mode in ("default", "bridge") or "bridge" in networks:
        return Status.FAIL, "the container is on the default bridge docker0"
    return Status.PASS, f"on {sorted(networks) or [mode]}, not on docker0"


def _user_namespace(c: _Container) -> tuple[Status, str]:
    if c.host.get("UsernsMode") == "host":
        return Status.FAIL, "the container shares the host's user namespace"
    user = c.config.get("User") or "root"
    return Status.PASS, f"UsernsMode is not 'host'; the container runs as {user!r}"


def _docker_socket(c: _Container) -> tuple[Status, str]:
    sockets = [
        f"{source} -> {target}"
        for source, target in c.host_paths()
        if any(name in source or name in target for name in SOCKET_NAMES)
    ]
    if sockets:
        return Status.FAIL, f"an engine socket is mounted: {sockets}"
    return Status.PASS, "no engine socket is mounted"


ITEMS: tuple[tuple[str, str, Check], ...] = (
    ("5.1", "Swarm mode is not enabled, if not needed", _swarm),
    ("5.2", "An AppArmor profile is enabled, if applicable", _apparmor),
    ("5.3", "SELinux security options are set, if applicable", _selinux),
    ("5.4", "Linux kernel capabilities are restricted", _capabilities),
    ("5.5", "Privileged containers are not used", _privileged),
    ("5.6", "Sensitive host system directories are not mounted", _sensitive_dirs),
    ("5.7", "sshd is not run within the container", _sshd),
    ("5.8", "Privileged ports are not mapped", _privileged_ports),
    ("5.9", "Only needed ports are open", _needed_ports),
    ("5.10", "The host's network namespace is not shared", _host_network),
    ("5.11", "Memory usage is limited", _memory),
    ("5.12", "CPU priority is set appropriately", _cpu),
    ("5.13", "The root filesystem is mounted read-only", _read_only_root),
    ("5.14", "Incoming traffic is bound to a specific host interface", _bound_interface),
    ("5.15", "The 'on-failure' restart policy is limited to 5", _restart_policy),
    ("5.16", "The host's process namespace is not shared", _namespace("PidMode", "process")),
    ("5.17", "The host's IPC namespace is not shared", _namespace("IpcMode", "IPC")),
    ("5.18", "Host devices are not directly exposed", _devices),
    ("5.19", "The default ulimit is overwritten only if needed", _ulimits),
    ("5.20", "Mount propagation mode is not shared", _mount_propagation),
    ("5.21", "The host's UTS namespace is not shared", _namespace("UTSMode", "UTS")),
    ("5.22", "The default seccomp profile is not disabled", _seccomp),
    (
        "5.23",
        "docker exec is not used with --privileged",
        _exec_sessions("a privileged exec", _unprivileged),
    ),
    (
        "5.24",
        "docker exec is not used with --user=root",
        _exec_sessions("an exec as root", _not_root),
    ),
    ("5.25", "cgroup usage is confirmed", _cgroup),
    ("5.26", "The container cannot acquire additional privileges", _no_new_privileges),
    ("5.27", "Container health is checked at runtime", _healthcheck),
    ("5.28", "Docker commands use the latest version of their image", _latest_image),
    ("5.29", "The PIDs cgroup limit is used", _pids),
    ("5.30", "The default bridge docker0 is not used", _default_bridge),
    ("5.31", "The host's user namespace is not shared", _user_namespace),
    ("5.32", "The Docker socket is not mounted inside the container", _docker_socket),
)


def check_container(
    inspect: Mapping[str, Any],
    engine: Mapping[str, Any],
    *,
    cgroup_root: str,
    processes: Sequence[str] | None = None,
    execs: Sequence[Mapping[str, Any]] | None = None,
) -> list[Finding]:
    """Every section-5 item for one container.

    `inspect` is `docker inspect` of the container, `engine` is `docker info`, `processes`
    the command lines of `docker top` when the container runs, `execs` the inspects of its
    exec sessions (a warm job container has had one: its hand-off), and `cgroup_root` the
    setting under which tenants' cgroup parents live.
    """
    container = _Container(inspect, engine, processes, cgroup_root, execs)
    return [Finding(item, title, *check(container)) for item, title, check in ITEMS]


def failures(findings: Sequence[Finding]) -> list[Finding]:
    return [finding for finding in findings if finding.status is Status.FAIL]
