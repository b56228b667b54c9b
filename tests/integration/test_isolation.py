"""A tenant's job container reaches its market-data gateway and nothing else.

Every job container here is made by DockerJobRunner through the socket proxy, with the host
firewall applied from deploy/host-firewall.sh (in a chain of the test's own, with the
metadata rule aimed at the stand-in outside host, never at the real metadata address).
Controls on the default bridge show that each probe can succeed.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fta.runtime import ContainerSpec, DockerJobRunner, Limits, verify_hardening
from fta.runtime.spec import container_create_body
from fta.seccomp import security_opt
from tests.support.docker_resources import DockerResources, local_docker, responder_command
from tests.support.netns import StandInHost, stand_in_internet_host
from tests.support.socket_proxy import (
    PROXY_IMAGE,
    STANDIN_GATEWAY_PORT,
    TEST_BRIDGE_PREFIX,
    TEST_CGROUP_ROOT,
    StandinWorld,
    new_tenant,
    spec_with,
)

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]
FIREWALL = REPO / "deploy" / "host-firewall.sh"
PROBE_PORT = 8080


@contextmanager
def host_listener(token: str) -> Iterator[int]:
    """A TCP listener bound to 0.0.0.0 on the host that answers each request with `token`;
    yields its port."""
    server = socket.create_server(("0.0.0.0", 0))  # noqa: S104 - the point of the test
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                # Read the request first: closing on unread data would reset the connection.
                conn.settimeout(2.0)
                try:
                    conn.recv(4096)
                    conn.sendall(token.encode() + b"\n")
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()


def firewall(action: str, chain: str, metadata: str) -> None:
    env = {
        **os.environ,
        "FTA_FIREWALL_CHAIN": chain,
        "FTA_METADATA_ADDRESS": metadata,
        "FTA_TENANT_BRIDGE_PREFIX": TEST_BRIDGE_PREFIX,
    }
    subprocess.run(["bash", str(FIREWALL), action], env=env, check=True, timeout=60)


@dataclass(frozen=True)
class World:
    runner: DockerJobRunner
    resources: DockerResources
    tenant_a: ContainerSpec
    tenant_a_bridge_ip: str
    tenant_b_ip: str
    tenant_b_token: str
    control_ip: str
    control_token: str
    host_port: int
    host_token: str
    docker0_ip: str
    outside: StandInHost
    chain: str
    market_data_token: str


@pytest.fixture(scope="module")
def world(standin_world: StandinWorld) -> Iterator[World]:
    client = local_docker()
    resources = DockerResources(client)
    settings = standin_world.settings()
    runner = DockerJobRunner(settings, extra_labels=resources.labels)
    chain = f"FTA-T-{secrets.token_hex(3).upper()}"
    with ExitStack() as stack:
        stack.callback(client.close)
        stack.callback(runner.close)
        stack.callback(resources.cleanup)
        outside = stack.enter_context(stand_in_internet_host())
        stack.callback(firewall, "remove", chain, outside.address)
        firewall("apply", chain, outside.address)
        firewall("apply", chain, outside.address)  # idempotent: hooks are not doubled
        host_token = f"host-{secrets.token_hex(4)}"
        host_port = stack.enter_context(host_listener(host_token))

        tenant_a = new_tenant(runner, resources, settings)
        tenant_b = new_tenant(runner, resources, settings)
        b_token = f"tenant-b-{secrets.token_hex(4)}"
        b_spec = spec_with(
            tenant_b, image=PROXY_IMAGE, command=responder_command(PROBE_PORT, b_token)
        )
        b_id = runner.create(b_spec)
        runner.start(b_id)
        b_ip = client.api.inspect_container(b_id)["NetworkSettings"]["Networks"][tenant_b.network][
            "IPAddress"
        ]

        control_network = resources.add_network(f"fta-test-control-{resources.scope}")
        client.api.create_network(control_network, driver="bridge", labels=resources.labels)
        control_token = f"control-{secrets.token_hex(4)}"
        control = resources.run(
            PROXY_IMAGE, responder_command(PROBE_PORT, control_token), network=control_network
        )
        control.reload()
        control_ip = control.attrs["NetworkSettings"]["Networks"][control_network]["IPAddress"]

        a_network = client.api.inspect_network(tenant_a.network)
        yield World(
            runner=runner,
            resources=resources,
            tenant_a=tenant_a,
            tenant_a_bridge_ip=a_network["IPAM"]["Config"][0]["Gateway"],
            tenant_b_ip=b_ip,
            tenant_b_token=b_token,
            control_ip=control_ip,
            control_token=control_token,
            host_port=host_port,
            host_token=host_token,
            docker0_ip=default_bridge_address(client.api.inspect_network("bridge")),
            outside=outside,
            chain=chain,
            market_data_token=standin_world.gateway_token,
        )


def default_bridge_address(network: dict[str, Any]) -> str:
    """docker0's address on the host (the default bridge's IPAM names no gateway)."""
    device = network["Options"]["com.docker.network.bridge.name"]
    shown = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "dev", device],
        check=True,
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout
    match = re.search(r"inet (\S+)/", shown)
    assert match, shown
    return match[1]


def probe_script(targets: dict[str, tuple[str, int]]) -> str:
    """Bash that tries every target at once (3 s each) and prints `PROBE name rc last-line`."""
    lines = []
    for name, (host, port) in targets.items():
        connect = (
            f"exec 3<>/dev/tcp/{host}/{port}; printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3"
        )
        lines.append(
            f'(out=$(timeout 3 bash -c "{connect}" 2>&1); rc=$?; '
            f'echo "PROBE {name} $rc $(printf %s "$out" | tr -d "\\r" | tail -n 1)") &'
        )
    lines.append("wait")
    return "\n".join(lines)


def parse_probes(lines: list[str]) -> dict[str, tuple[int, str]]:
    results = {}
    for line in lines:
        match = re.fullmatch(r"PROBE (\S+) (\d+) ?(.*)", line)
        if match:
            results[match[1]] = (int(match[2]), match[3])
    return results


def run_job(world: World, spec: ContainerSpec, timeout_s: float = 60) -> list[str]:
    container_id = world.runner.create(spec)
    try:
        world.runner.start(container_id)
        world.runner.wait(container_id, timeout_s)
        # Once the container has stopped, following its logs returns all of them and ends.
        return list(world.runner.follow_logs(container_id))
    finally:
        world.runner.remove(container_id)


def run_on_default_bridge(world: World, script: str) -> list[str]:
    """The same hardened container, made directly on the default bridge (the proxy refuses
    that network): the control that shows a probe can succeed."""
    spec = spec_with(
        world.tenant_a, network="bridge", extra_hosts={}, dns=[], command=["bash", "-c", script]
    )
    api = world.resources.client.api
    body = container_create_body(
        spec,
        cgroup_parent=f"/{TEST_CGROUP_ROOT}/{spec.tenant_id}",
        extra_labels=world.resources.labels,
    )
    container_id = world.resources.add_container(api.create_container_from_config(body)["Id"])
    api.start(container_id)
    api.wait(container_id, timeout=60)
    output: bytes = api.logs(container_id)
    return output.decode(errors="replace").splitlines()


def chain_counters(chain: str) -> list[tuple[int, str]]:
    listing = subprocess.run(
        ["iptables", "-w", "-n", "-v", "-x", "-L", chain],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout.splitlines()[2:]
    return [(int(line.split()[0]), line) for line in listing if line.strip()]


def test_a_tenant_reaches_its_gateway_and_nothing_else(world: World) -> None:
    targets = {
        "market-data": ("market-data", STANDIN_GATEWAY_PORT),
        "tenant-b": (world.tenant_b_ip, PROBE_PORT),
        "control-network": (world.control_ip, PROBE_PORT),
        "host-via-bridge": (world.tenant_a_bridge_ip, world.host_port),
        "host-via-docker0": (world.docker0_ip, world.host_port),
        "outside": (world.outside.address, world.outside.port),
    }
    script = probe_script(targets) + "\nout=$(timeout 3 getent hosts example.com); "
    script += (
        'echo "PROBE dns $? $out"\nout=$(getent hosts market-data); echo "PROBE hosts $? $out"'
    )
    results = parse_probes(
        run_job(world, spec_with(world.tenant_a, command=["bash", "-c", script]))
    )

    assert world.market_data_token in results["market-data"][1], results
    assert results["hosts"][0] == 0
    assert results["hosts"][1].split()[0] == world.tenant_a.extra_hosts["market-data"]
    for name, token in [
        ("tenant-b", world.tenant_b_token),
        ("control-network", world.control_token),
        ("host-via-bridge", world.host_token),
        ("host-via-docker0", world.host_token),
        ("outside", world.outside.token),
    ]:
        rc, text = results[name]
        assert rc != 0 and token not in text, (name, results[name])
    assert results["dns"][0] != 0 and results["dns"][1] == "", results["dns"]

    # The metadata rule (aimed at the stand-in) and the catch-all both saw the attempts.
    counters = chain_counters(world.chain)
    metadata = [n for n, rule in counters if world.outside.address in rule]
    assert metadata and metadata[0] > 0, counters
    assert counters[-1][0] > 0, counters


def test_the_controls_on_the_default_bridge_get_through(world: World) -> None:
    targets = {
        "outside": (world.outside.address, world.outside.port),
        "host-via-docker0": (world.docker0_ip, world.host_port),
    }
    results = parse_probes(run_on_default_bridge(world, probe_script(targets)))
    assert world.outside.token in results["outside"][1], results
    assert world.host_token in results["host-via-docker0"][1], results


def test_the_firewall_is_what_closes_the_bridge_gateway(world: World) -> None:
    script = probe_script({"host": (world.tenant_a_bridge_ip, world.host_port)})
    spec = spec_with(world.tenant_a, command=["bash", "-c", script])
    firewall("remove", world.chain, world.outside.address)
    try:
        opened = parse_probes(run_job(world, spec))
    finally:
        firewall("apply", world.chain, world.outside.address)
    closed = parse_probes(run_job(world, spec))
    assert world.host_token in opened["host"][1], opened
    assert world.host_token not in closed["host"][1], closed


def test_firewall_hooks_are_applied_once(world: World) -> None:
    rules = subprocess.run(
        ["iptables", "-w", "-S"], check=True, capture_output=True, text=True, timeout=30
    ).stdout.splitlines()
    hooks = [rule for rule in rules if rule.endswith(f"-j {world.chain}")]
    assert sorted(hooks) == sorted(
        [f"-A INPUT -j {world.chain}", f"-A DOCKER-USER -j {world.chain}"]
    )


def test_a_running_job_container_is_hardened(world: World) -> None:
    spec = spec_with(world.tenant_a, command=["sleep", "60"])
    container_id = world.runner.create(spec)
    try:
        world.runner.start(container_id)
        inspect = world.resources.client.api.inspect_container(container_id)
    finally:
        world.runner.remove(container_id)
    parent = f"/{TEST_CGROUP_ROOT}/{spec.tenant_id}"
    assert inspect["State"]["Running"] is True
    assert (
        verify_hardening(spec, inspect, cgroup_parent=parent, extra_labels=world.resources.labels)
        == []
    )
    host = inspect["HostConfig"]
    assert host["Privileged"] is False
    assert host["CapAdd"] in (None, [])
    assert host["CapDrop"] == ["ALL"]
    assert host["SecurityOpt"] == ["no-new-privileges", security_opt()]
    assert host["ReadonlyRootfs"] is True
    assert host["Memory"] == host["MemorySwap"] == spec.limits.memory_bytes
    assert host["NanoCpus"] == spec.limits.nano_cpus
    assert host["PidsLimit"] == spec.limits.pids
    assert host["NetworkMode"] == spec.network
    assert not host["PortBindings"]
    assert host["PublishAllPorts"] is False
    assert not host["Binds"]
    assert [m["Type"] for m in host["Mounts"]] == ["volume"]
    assert [(m["Type"], m["Name"], m["RW"]) for m in inspect["Mounts"]] == [
        ("volume", f"fta-data-{spec.tenant_id}", True)
    ]
    assert not host["Devices"]
    assert host["PidMode"] == ""
    assert host["IpcMode"] == "private"
    assert host["UsernsMode"] == ""
    assert host["CgroupParent"] == parent
    assert inspect["Config"]["User"] == "10000:10000"
    assert host["Tmpfs"] == {"/tmp": f"rw,nosuid,nodev,size={spec.limits.tmpfs_bytes}"}
    assert host["LogConfig"]["Type"] == "json-file"
    assert host["LogConfig"]["Config"]["max-size"]
    assert inspect["Config"]["Labels"]["fta.tenant"] == spec.tenant_id
    assert inspect["Config"]["Labels"]["fta.managed"] == "1"
    assert host["Dns"] == spec.dns
    assert inspect["NetworkSettings"]["Ports"] in ({}, None)


def test_inside_a_job_container(world: World) -> None:
    cap_mib = 8
    limits = Limits(
        nano_cpus=500_000_000, memory_bytes=128 << 20, pids=64, tmpfs_bytes=cap_mib << 20
    )
    script = "\n".join(
        [
            "grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status",
            'echo "ids $(id -u) $(id -g) $(id -G)"',
            'touch /probe 2>/dev/null; echo "rootfs $?"',
            f'dd if=/dev/zero of=/tmp/fill bs=1M count={2 * cap_mib} 2>/dev/null; echo "fill $?"',
            'echo "filled $(stat -c %s /tmp/fill)"',
        ]
    )
    lines = run_job(world, spec_with(world.tenant_a, limits=limits, command=["bash", "-c", script]))
    fields = dict(line.split(maxsplit=1) for line in lines if line.strip())
    assert int(fields["CapEff:"], 16) == 0
    assert int(fields["CapPrm:"], 16) == 0
    assert int(fields["CapBnd:"], 16) == 0
    assert fields["NoNewPrivs:"] == "1"
    assert fields["Seccomp:"] == "2"  # Docker's default profile is in force
    assert fields["ids"] == "10000 10000 10000"
    assert fields["rootfs"] != "0"
    assert fields["fill"] != "0"
    assert int(fields["filled"]) <= cap_mib << 20


def test_a_fork_loop_is_stopped_by_the_pids_limit(world: World) -> None:
    limits = Limits(nano_cpus=500_000_000, memory_bytes=128 << 20, pids=32, tmpfs_bytes=8 << 20)
    bomb = 'timeout 10 bash -c "for i in \\$(seq 1 200); do sleep 30 & done; echo spawned-all"'
    lines = run_job(world, spec_with(world.tenant_a, limits=limits, command=["bash", "-c", bomb]))
    text = "\n".join(lines)
    assert "spawned-all" not in text
    assert "Resource temporarily unavailable" in text
