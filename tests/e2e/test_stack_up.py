"""`make up` for real: the whole stack boots from this repository, serves the portal on
127.0.0.1:8080 only, runs hardened, and `make down` keeps the data volume.

Skipped when a stack is already there (an operator's or a developer's): it must not be
touched. Whatever this test creates (.env, the data volume) it removes again."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
from docker.errors import NotFound

from tests.e2e.test_stack_up_config import (
    ONE_SHOTS,
    REPO,
    SERVICES,
    clean_environment,
    parse_env,
)
from tests.support.docker_resources import local_docker
from tests.support.tenant_disks import unmount_all

pytestmark = pytest.mark.docker

PROJECT = "fta"
CONTROL_NETWORK = "fta-control"
DOCKER_API_NETWORK = "fta-docker-api"
DATA_VOLUME = "fta-pgdata"
PORTAL = "http://127.0.0.1:8080"
CANDLE_VOLUME = "fta-candles"
METADATA_STAND_IN = "198.51.100.254"
# The stack's tenant disks live here during the test, never in an installation's directory.
E2E_DISKS = f"/tmp/fta-e2e-disks-{secrets.token_hex(4)}"
E2E_IMPORTS = f"{E2E_DISKS}-imports"
# Tenants the README sequence signed up: their networks and volumes outlive the stack.
README_TENANTS: list[str] = []


def _containers(client: docker.DockerClient, *, one_shots: bool = False) -> dict[str, Any]:
    """The stack's containers by Compose service name (the long-running ones unless asked)."""
    found = client.containers.list(
        all=True, filters={"label": f"com.docker.compose.project={PROJECT}"}
    )
    services = {c.labels["com.docker.compose.service"]: c for c in found}
    return {k: c for k, c in services.items() if one_shots or k not in ONE_SHOTS}


def _exists(getter: Any, name: str) -> bool:
    try:
        getter(name)
    except NotFound:
        return False
    return True


def _port_8080_taken() -> bool:
    try:
        httpx.get(PORTAL, timeout=1)
    except httpx.TransportError:
        return False
    return True


def _script(name: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(REPO / "scripts" / name)],
        cwd=REPO,
        # The host firewall's metadata rule aims at a stand-in address on test machines.
        env=clean_environment(
            FTA_METADATA_ADDRESS=METADATA_STAND_IN,
            FTA_TENANT_DISK_ROOT=E2E_DISKS,
            FTA_TENANT_DISK_RUN_DIR=f"{E2E_DISKS}-run",
            FTA_MARKET_DATA_IMPORT_DIR=E2E_IMPORTS,
        ),
        capture_output=True,
        text=True,
        timeout=1200,
    )


@pytest.fixture(scope="module")
def stack() -> Iterator[docker.DockerClient]:
    client = local_docker()
    if (
        _containers(client)
        or _exists(client.networks.get, CONTROL_NETWORK)
        or _exists(client.containers.get, "fta-market-data")
        or _port_8080_taken()
    ):
        client.close()
        pytest.skip("a stack is already running on this host: left alone")
    env_file = REPO / ".env"
    created_env = not env_file.exists()
    created_volume = not _exists(client.volumes.get, DATA_VOLUME)
    created_candles = not _exists(client.volumes.get, CANDLE_VOLUME)
    try:
        up = _script("up.sh")
        assert up.returncode == 0, up.stdout + up.stderr
        assert "fta is up: http://127.0.0.1:8080/" in up.stdout
        yield client
    finally:
        down = _script("down.sh")
        assert down.returncode == 0, down.stdout + down.stderr
        if created_volume:
            client.volumes.get(DATA_VOLUME).remove(force=True)
        if created_env:
            env_file.unlink()
        _remove_tenants(client, README_TENANTS, remove_candles=created_candles)
        unmount_all(E2E_DISKS)
        shutil.rmtree(E2E_DISKS, ignore_errors=True)
        shutil.rmtree(f"{E2E_DISKS}-run", ignore_errors=True)
        shutil.rmtree(E2E_IMPORTS, ignore_errors=True)
        client.close()


def _remove_tenants(
    client: docker.DockerClient, tenants: list[str], *, remove_candles: bool
) -> None:
    """Removes exactly what the stack made for these tenants (names compared in full:
    Docker's name filters match substrings)."""
    for tenant in tenants:
        for container in client.containers.list(
            all=True, filters={"label": f"fta.tenant={tenant}"}
        ):
            container.remove(force=True)
    networks = {f"fta-client-{tenant}" for tenant in tenants}
    volumes = {f"fta-data-{tenant}" for tenant in tenants} | (
        {CANDLE_VOLUME} if remove_candles else set()
    )
    for network in client.networks.list():
        if network.name in networks:
            network.remove()
    for volume in client.volumes.list():
        if volume.name in volumes:
            volume.remove(force=True)


def _wait_until_healthy(client: docker.DockerClient, seconds: float = 120) -> dict[str, str]:
    deadline = time.monotonic() + seconds
    while True:
        health = {
            name: c.attrs["State"].get("Health", {}).get("Status", "none")
            for name, c in _containers(client).items()
        }
        if set(health.values()) == {"healthy"} or time.monotonic() > deadline:
            return health
        time.sleep(2)


def test_portal_answers_through_nginx_with_security_headers(stack: docker.DockerClient) -> None:
    response = httpx.get(f"{PORTAL}/healthz", timeout=5)
    assert response.status_code == 200
    assert response.headers["x-frame-options"] == "DENY"
    assert "content-security-policy" in response.headers
    assert response.headers["server"] == "nginx"


def test_every_service_runs_and_is_healthy(stack: docker.DockerClient) -> None:
    health = _wait_until_healthy(stack)
    assert set(health) == SERVICES
    assert health == dict.fromkeys(SERVICES, "healthy")


def test_every_container_is_hardened(stack: docker.DockerClient) -> None:
    for name, container in _containers(stack).items():
        host = container.attrs["HostConfig"]
        assert host["ReadonlyRootfs"], name
        assert host["CapDrop"] == ["ALL"] and not host["CapAdd"], name
        assert "no-new-privileges:true" in host["SecurityOpt"], name
        assert not host["Privileged"], name
        assert host["Memory"] > 0 and host["NanoCpus"] > 0 and host["PidsLimit"] > 0, name
        assert host["RestartPolicy"]["Name"] == "unless-stopped", name
        assert host["LogConfig"]["Config"].get("max-size"), name
        user = container.attrs["Config"]["User"]
        assert user and user.split(":")[0] not in ("0", "root"), name


def test_migrations_ran_as_the_owner_and_the_services_connect_as_the_runtime_role(
    stack: docker.DockerClient,
) -> None:
    containers = _containers(stack, one_shots=True)
    migrate = containers["migrate"]
    assert migrate.attrs["State"]["Status"] == "exited"
    assert migrate.attrs["State"]["ExitCode"] == 0
    host = migrate.attrs["HostConfig"]
    assert host["ReadonlyRootfs"] and host["CapDrop"] == ["ALL"]
    assert "no-new-privileges:true" in host["SecurityOpt"]

    def environment(name: str) -> dict[str, str]:
        pairs = containers[name].attrs["Config"]["Env"]
        return dict(pair.split("=", 1) for pair in pairs)

    assert environment("migrate")["FTA_DATABASE_URL"].startswith("postgresql+psycopg://fta_owner:")
    owner_password = parse_env(REPO / ".env")["FTA_DATABASE_OWNER_PASSWORD"]
    for name in ("portal", "worker"):
        assert environment(name)["FTA_DATABASE_URL"].startswith("postgresql+psycopg://fta_app:")
    for name in set(containers) - {"migrate", "postgres"}:
        assert owner_password not in str(environment(name)), name


def test_only_nginx_is_published_and_only_on_loopback(stack: docker.DockerClient) -> None:
    for name, container in _containers(stack).items():
        bindings = container.attrs["HostConfig"]["PortBindings"] or {}
        if name == "nginx":
            assert bindings == {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}
        else:
            assert not bindings, name


def test_only_the_socket_proxy_sees_the_docker_socket(stack: docker.DockerClient) -> None:
    for name, container in _containers(stack).items():
        sockets = [m for m in container.attrs["Mounts"] if "docker.sock" in m["Source"]]
        if name == "socket-proxy":
            assert [m["RW"] for m in sockets] == [False]
        else:
            assert not sockets, name


def test_the_worker_holds_only_the_disk_helpers_socket_and_read_only_cgroups_and_imports(
    stack: docker.DockerClient,
) -> None:
    worker = _containers(stack)["worker"]
    binds = {
        (m["Source"], m["Destination"], m["RW"])
        for m in worker.attrs["Mounts"]
        if m["Type"] == "bind"
    }
    assert binds == {
        ("/sys/fs/cgroup", "/host/cgroup", False),
        (f"{E2E_DISKS}-run", "/run/fta-tenant-disk", True),
        (E2E_IMPORTS, "/import", False),  # the operator's recorded candle files
    }


def test_networks_keep_the_portal_away_from_docker(stack: docker.DockerClient) -> None:
    networks = {
        name: set(c.attrs["NetworkSettings"]["Networks"]) for name, c in _containers(stack).items()
    }
    assert networks["portal"] == {CONTROL_NETWORK}
    assert networks["worker"] == {CONTROL_NETWORK, DOCKER_API_NETWORK}
    assert networks["socket-proxy"] == {DOCKER_API_NETWORK}
    assert stack.networks.get(DOCKER_API_NETWORK).attrs["Internal"] is True
    assert _containers(stack)["market-data"].name == "fta-market-data"

    probe = "import socket; socket.create_connection(('socket-proxy', 2375), 3)"
    result = _containers(stack)["portal"].exec_run(["python3", "-c", probe])
    assert result.exit_code != 0, "the portal reached the socket proxy"


def test_logs_carry_no_secret(stack: docker.DockerClient) -> None:
    secrets = parse_env(REPO / ".env")
    for name, container in _containers(stack, one_shots=True).items():
        logs = container.logs().decode(errors="replace")
        for key in ("FTA_SECRET_KEY", "FTA_AUDIT_KEY", "POSTGRES_PASSWORD"):
            assert secrets[key] not in logs, f"{key} in the logs of {name}"


def test_down_keeps_the_data_volume(stack: docker.DockerClient) -> None:
    down = _script("down.sh")
    assert down.returncode == 0, down.stdout + down.stderr
    assert not _containers(stack)
    assert not _exists(stack.networks.get, CONTROL_NETWORK)
    assert _exists(stack.volumes.get, DATA_VOLUME)
    # And the stack comes back on the same data (the generated password still opens it).
    up = _script("up.sh")
    assert up.returncode == 0, up.stdout + up.stderr
    assert httpx.get(f"{PORTAL}/healthz", timeout=5).status_code == 200


def _readme_curl_blocks() -> str:
    """The shell blocks of the README's curl section, in order (the bot's uses the job's
    variables)."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Try it with curl") :]
    section = section[: section.index("\n## ", 1)]
    blocks = section.split("```sh\n")[1:]
    return "".join(block[: block.index("```")] for block in blocks)


def test_the_readme_curl_sequence_runs_a_backtest_and_a_bot(
    stack: docker.DockerClient, tmp_path: Path
) -> None:
    email = f"readme-{secrets.token_hex(4)}@example.com"
    script = tmp_path / "readme.sh"
    # The block runs from the repository (it reads docs/examples); the archive lands in tmp.
    script.write_text(
        "set -euo pipefail\n"
        + _readme_curl_blocks().replace("-o result.zip", f"-o {tmp_path}/r.zip")
    )
    run = subprocess.run(
        ["timeout", "600", "bash", str(script)],
        cwd=REPO,
        env={**clean_environment(), "EMAIL": email, "PASSWORD": secrets.token_urlsafe(16)},
        capture_output=True,
        text=True,
        timeout=660,
    )
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    # Noted before anything is checked: whatever the sequence made is removed even if it failed.
    if lines:
        README_TENANTS.append(json.loads(lines[0])["tenant_id"])
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    _, verified, job, result, started, seen, stopped = (json.loads(line) for line in lines[:7])
    assert verified == {"email": email, "verified": True}
    assert job["status"] == "succeeded", job
    assert result["trades"] > 0
    assert zipfile.is_zipfile(tmp_path / "r.zip")
    assert started["desired_state"] == "running" and seen["id"] == started["id"]
    assert seen["actual_state"] == "running", seen
    assert stopped["desired_state"] == "stopped"
