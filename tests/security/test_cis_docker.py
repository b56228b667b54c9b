"""CIS Docker Benchmark section 5 on fta's containers: the checker on inspect fixtures (a
hardened container passes, each weakened field fails its item), and on a real running job
container and a real running bot container of the platform."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.models.containers import Container
from fastapi.testclient import TestClient

from fta.settings import get_settings
from tests.integration.strategies import source
from tests.support.api import Client, sign_up
from tests.support.cis_docker import (
    ACCEPTED_DEVIATIONS,
    ANY_KIND,
    ITEMS,
    Finding,
    Status,
    check_container,
    failures,
)
from tests.support.configs import ONE_PAIR_BOT, SHORT_BACKTEST
from tests.support.docker_resources import local_docker
from tests.support.jobs import job_containers, wait_for_job
from tests.support.sandbox import Sandbox

DOCS = Path(__file__).resolve().parents[2] / "docs" / "security.md"
TENANT = "k3v7q2ma"
CGROUP_ROOT = "fta"

# `docker info` and `docker inspect` of a job container as Docker 20.10 reports them,
# trimmed to the fields that matter here.
ENGINE: dict[str, Any] = {
    "CgroupDriver": "cgroupfs",
    "SecurityOptions": ["name=seccomp,profile=default"],
    "Swarm": {"LocalNodeState": "inactive"},
}
HARDENED: dict[str, Any] = {
    "Path": "python3",
    "Args": ["/opt/fta/fta_job_entry.py"],
    "AppArmorProfile": "",
    "ProcessLabel": "",
    "ExecIDs": None,
    "HostConfig": {
        "Binds": None,
        "NetworkMode": f"fta-client-{TENANT}",
        "PortBindings": None,
        "RestartPolicy": {"Name": "", "MaximumRetryCount": 0},
        "CapAdd": None,
        "CapDrop": ["ALL"],
        "IpcMode": "private",
        "PidMode": "",
        "UTSMode": "",
        "UsernsMode": "",
        "Privileged": False,
        "PublishAllPorts": False,
        "ReadonlyRootfs": True,
        "SecurityOpt": ["no-new-privileges"],
        "CpuShares": 0,
        "NanoCpus": 1_000_000_000,
        "Memory": 1024 * 1024 * 1024,
        "MemorySwap": 1024 * 1024 * 1024,
        "CgroupParent": f"/{CGROUP_ROOT}/{TENANT}",
        "PidsLimit": 256,
        "Ulimits": None,
        "Devices": None,
        "DeviceCgroupRules": None,
        "DeviceRequests": None,
        "Mounts": [
            {"Type": "volume", "Source": f"fta-data-{TENANT}", "Target": "/freqtrade/user_data"},
            {"Type": "volume", "Source": "fta-candles", "Target": "/candles", "ReadOnly": True},
        ],
    },
    "Mounts": [
        {
            "Type": "volume",
            "Name": f"fta-data-{TENANT}",
            "Source": f"/var/lib/docker/volumes/fta-data-{TENANT}/_data",
            "Destination": "/freqtrade/user_data",
            "Driver": "local",
            "RW": True,
            "Propagation": "",
        },
        {
            "Type": "volume",
            "Name": "fta-candles",
            "Source": "/var/lib/docker/volumes/fta-candles/_data",
            "Destination": "/candles",
            "Driver": "local",
            "RW": False,
            "Propagation": "",
        },
    ],
    "Config": {
        "User": "10000:10000",
        "Image": "fta/freqtrade:2026.9",
        "Entrypoint": ["python3", "/opt/fta/fta_job_entry.py"],
        "Labels": {
            "fta.managed": "1",
            "fta.tenant": TENANT,
            "fta.kind": "job",
            "fta.job": "8d7a8c84-ce3f-470d-b0fb-cd1325c37bb2",
        },
    },
    "NetworkSettings": {"Ports": {}, "Networks": {f"fta-client-{TENANT}": {}}},
}
ACCEPTED_ON_THIS_KIND_OF_HOST = {"5.2", "5.15", "5.25", "5.27"}


def _check(
    inspect: dict[str, Any], engine: dict[str, Any] = ENGINE, **options: Any
) -> dict[str, Finding]:
    findings = check_container(inspect, engine, cgroup_root=CGROUP_ROOT, **options)
    return {finding.item: finding for finding in findings}


def _weakened(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    inspect = copy.deepcopy(HARDENED)
    change(inspect)
    return inspect


def _host(**fields: Any) -> Callable[[dict[str, Any]], None]:
    return lambda inspect: inspect["HostConfig"].update(fields)


def _bind(source: str, target: str) -> Callable[[dict[str, Any]], None]:
    def change(inspect: dict[str, Any]) -> None:
        inspect["HostConfig"]["Binds"] = [f"{source}:{target}:ro"]
        inspect["Mounts"].append(
            {"Type": "bind", "Source": source, "Destination": target, "RW": False}
        )

    return change


def _publish(host_ip: str, host_port: str) -> Callable[[dict[str, Any]], None]:
    binding = {"8080/tcp": [{"HostIp": host_ip, "HostPort": host_port}]}
    return _host(PortBindings=binding)


def _propagation(inspect: dict[str, Any]) -> None:
    inspect["Mounts"][0]["Propagation"] = "rshared"


def _networks(inspect: dict[str, Any]) -> None:
    inspect["HostConfig"]["NetworkMode"] = "bridge"
    inspect["NetworkSettings"]["Networks"] = {"bridge": {}}


WEAKENED: list[tuple[str, str, Callable[[dict[str, Any]], None]]] = [
    ("5.2", "unconfined AppArmor", lambda inspect: inspect.update(AppArmorProfile="unconfined")),
    ("5.4", "a capability added", _host(CapAdd=["NET_ADMIN"])),
    ("5.4", "default capabilities kept", _host(CapDrop=None)),
    ("5.5", "privileged", _host(Privileged=True)),
    ("5.6", "/etc mounted", _bind("/etc", "/host-etc")),
    ("5.6", "the host root mounted", _bind("/", "/host")),
    ("5.6", "a parent of the engine's state", _bind("/var", "/host-var")),
    ("5.7", "sshd as the command", lambda inspect: inspect.update(Path="/usr/sbin/sshd")),
    ("5.8", "port 80 mapped", _publish("127.0.0.1", "80")),
    ("5.9", "a port published", _publish("127.0.0.1", "8080")),
    ("5.9", "every exposed port published", _host(PublishAllPorts=True)),
    ("5.10", "host network", _host(NetworkMode="host")),
    ("5.11", "no memory limit", _host(Memory=0)),
    ("5.12", "no CPU limit", _host(NanoCpus=0)),
    ("5.13", "writable root", _host(ReadonlyRootfs=False)),
    ("5.14", "bound to every interface", _publish("0.0.0.0", "8080")),  # noqa: S104
    ("5.15", "restarted always", _host(RestartPolicy={"Name": "always"})),
    (
        "5.15",
        "too many retries",
        _host(RestartPolicy={"Name": "on-failure", "MaximumRetryCount": 9}),
    ),
    ("5.16", "host PID", _host(PidMode="host")),
    ("5.17", "host IPC", _host(IpcMode="host")),
    ("5.17", "shareable IPC", _host(IpcMode="shareable")),
    ("5.18", "a device", _host(Devices=[{"PathOnHost": "/dev/kmsg"}])),
    ("5.19", "unlimited ulimit", _host(Ulimits=[{"Name": "nproc", "Soft": -1, "Hard": -1}])),
    ("5.20", "shared propagation", _propagation),
    ("5.21", "host UTS", _host(UTSMode="host")),
    ("5.22", "seccomp disabled", _host(SecurityOpt=["no-new-privileges", "seccomp=unconfined"])),
    ("5.23", "an exec session", lambda inspect: inspect.update(ExecIDs=["3f1c"])),
    ("5.24", "an exec session", lambda inspect: inspect.update(ExecIDs=["3f1c"])),
    ("5.25", "another tenant's cgroup", _host(CgroupParent="/fta/othertnt")),
    ("5.25", "a foreign cgroup", _host(CgroupParent="/system.slice")),
    ("5.26", "no no-new-privileges", _host(SecurityOpt=[])),
    ("5.29", "no PIDs limit", _host(PidsLimit=0)),
    ("5.30", "on docker0", _networks),
    ("5.31", "host user namespace", _host(UsernsMode="host")),
    ("5.32", "the Docker socket", _bind("/var/run/docker.sock", "/var/run/docker.sock")),
]


def test_every_section_5_item_is_checked_once() -> None:
    numbers = [item for item, _, _ in ITEMS]
    assert numbers == [f"5.{n}" for n in range(1, 33)]
    assert set(ACCEPTED_DEVIATIONS) <= set(numbers)


def _exec(user: str = "10000:10000", *, privileged: bool = False) -> dict[str, Any]:
    """An exec session's inspect (its ProcessConfig)."""
    return {
        "ID": "3f1c",
        "ProcessConfig": {
            "entrypoint": "python3",
            "arguments": ["/opt/fta/fta_job_entry.py", "--hand-off"],
            "privileged": privileged,
            "user": user,
            "tty": False,
        },
    }


def test_a_warm_container_handed_its_job_passes_and_other_execs_do_not() -> None:
    handed = {**copy.deepcopy(HARDENED), "ExecIDs": ["3f1c"]}
    assert failures(list(_check(handed, execs=[_exec()]).values())) == []
    for user in ("root", "0", "0:0", ""):
        assert _check(handed, execs=[_exec(user)])["5.24"].status is Status.FAIL, user
    assert _check(handed, execs=[_exec(privileged=True)])["5.23"].status is Status.FAIL
    # An exec that cannot be judged fails both.
    for item in ("5.23", "5.24"):
        assert _check(handed)[item].status is Status.FAIL
        assert _check(handed, execs=[{**_exec(), "ID": "other"}])[item].status is Status.FAIL


def test_a_hardened_job_container_passes() -> None:
    findings = _check(HARDENED, processes=["python3 /opt/fta/fta_job_entry.py"])
    assert failures(list(findings.values())) == []
    accepted = {item for item, finding in findings.items() if finding.status is Status.ACCEPTED}
    assert accepted == ACCEPTED_ON_THIS_KIND_OF_HOST
    assert findings["5.3"].status is Status.NOT_APPLICABLE  # no SELinux on this engine
    assert findings["5.28"].status is Status.NOT_APPLICABLE
    assert all(finding.reason for finding in findings.values())


@pytest.mark.parametrize(
    ("item", "change"),
    [(item, change) for item, _, change in WEAKENED],
    ids=[f"{item} {name}" for item, name, _ in WEAKENED],
)
def test_each_weakened_field_fails_its_item(
    item: str, change: Callable[[dict[str, Any]], None]
) -> None:
    findings = _check(_weakened(change))
    assert findings[item].status is Status.FAIL, findings[item]


def test_host_dependent_items_follow_the_engine() -> None:
    with_apparmor = {**ENGINE, "SecurityOptions": ["name=apparmor", "name=seccomp"]}
    assert _check(HARDENED, with_apparmor)["5.2"].status is Status.FAIL
    confined = _weakened(lambda inspect: inspect.update(AppArmorProfile="docker-default"))
    assert _check(confined, with_apparmor)["5.2"].status is Status.PASS

    with_selinux = {**ENGINE, "SecurityOptions": ["name=selinux", "name=seccomp"]}
    assert _check(HARDENED, with_selinux)["5.3"].status is Status.FAIL
    labelled = _weakened(lambda inspect: inspect.update(ProcessLabel="system_u:system_r:c1"))
    assert _check(labelled, with_selinux)["5.3"].status is Status.PASS

    without_seccomp = {**ENGINE, "SecurityOptions": []}
    assert _check(HARDENED, without_seccomp)["5.22"].status is Status.FAIL
    in_swarm = {**ENGINE, "Swarm": {"LocalNodeState": "active"}}
    assert _check(HARDENED, in_swarm)["5.1"].status is Status.FAIL


def test_systemd_hosts_confirm_the_tenant_slice() -> None:
    systemd = {**ENGINE, "CgroupDriver": "systemd"}
    sliced = _weakened(_host(CgroupParent=f"{CGROUP_ROOT}-{TENANT}.slice"))
    assert _check(sliced, systemd)["5.25"].status is Status.ACCEPTED
    assert _check(HARDENED, systemd)["5.25"].status is Status.FAIL


def _kind(kind: str | None) -> Callable[[dict[str, Any]], None]:
    def change(inspect: dict[str, Any]) -> None:
        labels = inspect["Config"]["Labels"]
        owner = labels.pop("fta.job")
        del labels["fta.kind"]
        if kind is not None:
            labels["fta.kind"] = kind
            labels["fta.bot" if kind == "bot" else "fta.job"] = owner

    return change


def test_a_hardened_bot_container_deviates_on_the_same_items_for_its_own_reasons() -> None:
    job = _check(HARDENED)
    bot = _check(_weakened(_kind("bot")))
    assert failures(list(bot.values())) == []
    assert {item: f.status for item, f in bot.items()} == {
        item: f.status for item, f in job.items()
    }
    for item in ("5.15", "5.27"):
        assert bot[item].reason == ACCEPTED_DEVIATIONS[item]["bot"] != job[item].reason
        assert "supervisor" in bot[item].reason, bot[item]


@pytest.mark.parametrize("kind", ["cache-fill", "bot"])
def test_supervised_kinds_are_still_held_to_a_set_restart_policy(kind: str) -> None:
    always = _weakened(_kind(kind))
    always["HostConfig"]["RestartPolicy"] = {"Name": "always"}
    assert _check(always)["5.15"].status is Status.FAIL
    limited = _weakened(_kind(kind))
    limited["HostConfig"]["RestartPolicy"] = {"Name": "on-failure", "MaximumRetryCount": 5}
    assert _check(limited)["5.15"].status is Status.PASS


@pytest.mark.parametrize("kind", [None, "proxy"])
def test_containers_of_no_supervised_kind_are_held_to_the_benchmark(kind: str | None) -> None:
    findings = _check(_weakened(_kind(kind)))
    assert findings["5.15"].status is Status.FAIL
    assert findings["5.27"].status is Status.FAIL
    healthy = _weakened(_kind(kind))
    healthy["Config"]["Healthcheck"] = {"Test": ["CMD", "true"]}
    assert _check(healthy)["5.27"].status is Status.PASS
    assert findings["5.2"].status is Status.ACCEPTED  # host-dependent, whatever the kind


def test_a_process_running_sshd_fails() -> None:
    findings = _check(HARDENED, processes=["/usr/sbin/sshd -D"])
    assert findings["5.7"].status is Status.FAIL


def test_every_accepted_deviation_is_documented_for_its_kinds() -> None:
    rows = {
        cells[0]: cells[1]
        for line in DOCS.read_text().splitlines()
        if len(cells := [cell.strip() for cell in line.strip("|").split("|")]) == 3
    }
    for item, reasons in ACCEPTED_DEVIATIONS.items():
        assert item in rows, f"{item} not in {DOCS.name}"
        for kind in set(reasons) - {ANY_KIND}:
            assert kind.replace("-", " ") in rows[item], f"{item} for {kind}: {rows[item]!r}"


# Real containers of the platform, inspected through the local engine.


@pytest.fixture
def client(http: TestClient, sandbox: Sandbox) -> Iterator[Client]:
    client = sign_up(http, "Cis")
    sandbox.forget_tenant(client.tenant_id)
    yield client


def _upload(http: TestClient, client: Client, strategy: str) -> str:
    uploaded = http.post(
        "/api/v1/strategies",
        json={"name": strategy, "source": source(strategy)},
        headers=client.auth,
    )
    assert uploaded.status_code == 201, uploaded.text
    return str(uploaded.json()["id"])


def _processes(top: dict[str, Any]) -> list[str]:
    command = top["Titles"].index("CMD")
    return [str(row[command]) for row in top["Processes"] or []]


def _check_running(engine: docker.DockerClient, container: Container) -> list[Finding]:
    container.reload()
    assert container.status == "running", container.status
    findings = check_container(
        container.attrs,
        engine.info(),
        cgroup_root=get_settings().tenant_cgroup_root,
        processes=_processes(container.top()),
        execs=[engine.api.exec_inspect(i) for i in container.attrs.get("ExecIDs") or []],
    )
    assert failures(findings) == [], "\n".join(map(str, failures(findings)))
    return findings


def _accepted(findings: list[Finding]) -> dict[str, str]:
    return {f.item: f.reason for f in findings if f.status is Status.ACCEPTED}


@pytest.mark.docker
def test_a_running_job_container_passes_every_applicable_item(
    http: TestClient, client: Client
) -> None:
    submitted = http.post(
        "/api/v1/jobs",
        json={
            "kind": "backtest",
            "strategy_id": _upload(http, client, "Sleeper"),
            "config": SHORT_BACKTEST,
        },
        headers=client.auth,
    )
    assert submitted.status_code == 202, submitted.text
    job_id = str(submitted.json()["id"])
    try:
        assert (
            wait_for_job(client, job_id, {"running", "failed"}, timeout=180)["status"] == "running"
        )
        engine = local_docker()
        try:
            (container,) = job_containers(engine, job_id)
            accepted = _accepted(_check_running(engine, container))
        finally:
            engine.close()
        assert {"5.15", "5.25", "5.27"} <= set(accepted) <= set(ACCEPTED_DEVIATIONS)
        assert accepted["5.15"] == ACCEPTED_DEVIATIONS["5.15"]["job"]
    finally:
        http.post(f"/api/v1/jobs/{job_id}/cancel", headers=client.auth)
        assert (
            wait_for_job(client, job_id, {"cancelled", "failed"}, timeout=180)["status"]
            == "cancelled"
        )


def _bot_containers(engine: docker.DockerClient, bot_id: str) -> list[Container]:
    # The engine's filter, checked again exactly.
    found = engine.containers.list(all=True, filters={"label": f"fta.bot={bot_id}"})
    return [container for container in found if container.labels.get("fta.bot") == bot_id]


def _wait_bot_running(http: TestClient, client: Client, bot_id: str) -> None:
    deadline = time.monotonic() + 240
    bot: dict[str, Any] = {}
    while time.monotonic() < deadline:
        bot = http.get(f"/api/v1/bots/{bot_id}", headers=client.auth).json()
        if bot["actual_state"] == "running":
            return
        if bot["actual_state"] == "crashed":
            pytest.fail(f"bot {bot_id} crashed: {bot.get('last_error')}")
        time.sleep(1)
    pytest.fail(f"bot {bot_id} still {bot.get('actual_state')} after 240 s")


@pytest.mark.docker
def test_a_running_bot_container_passes_every_applicable_item(
    http: TestClient, client: Client
) -> None:
    body = {"name": "cis", "strategy_id": _upload(http, client, "EnterNow"), "config": ONE_PAIR_BOT}
    created = http.post("/api/v1/bots", json=body, headers=client.auth)
    assert created.status_code == 201, created.text
    bot_id = str(created.json()["id"])
    engine = local_docker()
    try:
        started = http.post(f"/api/v1/bots/{bot_id}/start", headers=client.auth)
        assert started.status_code == 202, started.text
        _wait_bot_running(http, client, bot_id)
        (container,) = _bot_containers(engine, bot_id)
        assert container.labels["fta.kind"] == "bot"
        accepted = _accepted(_check_running(engine, container))
        assert {"5.15", "5.25", "5.27"} <= set(accepted) <= set(ACCEPTED_DEVIATIONS)
        for item in ("5.15", "5.27"):
            assert accepted[item] == ACCEPTED_DEVIATIONS[item]["bot"]
    finally:
        deleted = http.delete(f"/api/v1/bots/{bot_id}", headers=client.auth)
        deadline = time.monotonic() + 90
        while _bot_containers(engine, bot_id) and time.monotonic() < deadline:
            time.sleep(1)
        left = _bot_containers(engine, bot_id)
        engine.close()
    assert deleted.status_code == 204, deleted.text
    assert left == []
