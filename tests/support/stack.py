"""The whole stack booted by `scripts/up.sh` (what `make up` runs) and taken down again.

A stack already on this host (an operator's or a developer's) is left alone: the caller is
skipped. Whatever the run creates (.env, Compose's volumes, the tenants' containers, networks
and volumes, the tenant disks' directories) is removed afterwards."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
from docker.errors import NotFound

from tests.support.docker_resources import local_docker
from tests.support.tenant_disks import unmount_all

REPO = Path(__file__).resolve().parents[2]
PROJECT = "fta"
# The stack's FTA_INSTANCE (the default), which labels what its worker makes.
INSTANCE = "fta"
PORTAL = "http://127.0.0.1:8080"
CONTROL_NETWORK = "fta-control"
# The control network's gateway: the host, as the stack's containers reach it.
CONTROL_GATEWAY = "10.209.0.1"
DATA_VOLUME = "fta-pgdata"
METADATA_STAND_IN = "198.51.100.254"
# Services that run to completion at every `up` (the migrations, as the schema's owner).
ONE_SHOTS = {"migrate"}


def clean_environment(**extra: str) -> dict[str, str]:
    """The caller's environment without the stack's variables: Compose prefers the shell's
    values to the env file's, and test fixtures export FTA_* for themselves."""
    prefixes = ("FTA_", "POSTGRES_", "COMPOSE_", "DOCKER_NETWORK", "DOCKER_GID")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update(extra)
    return env


def exists(getter: Any, name: str) -> bool:
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


def host_listeners() -> set[str]:
    """The host's listening TCP and UDP sockets as `ss` shows them: "tcp 127.0.0.1:8080"."""
    listed = subprocess.run(
        ["ss", "-Hlntu"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    return {f"{f[0]} {f[4]}" for f in (line.split() for line in listed.splitlines()) if len(f) > 4}


@dataclass
class Stack:
    docker: docker.DockerClient
    # The stack's variables for this run (stand-ins' addresses, say), on top of .env.
    env: dict[str, str]
    disks: str
    # What listened on the host before the stack started (host_listeners).
    listeners_before: set[str] = field(default_factory=set)

    @property
    def imports(self) -> str:
        return f"{self.disks}-imports"

    def script(self, name: str) -> subprocess.CompletedProcess[str]:
        return self.run(f"scripts/{name}")

    def run(self, path: str, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        """The repository's shell script at `path`, as an operator runs it on this stack."""
        return subprocess.run(
            ["bash", str(REPO / path), *args],
            cwd=REPO,
            # The host firewall's metadata rule aims at a stand-in address on test machines;
            # the tenant disks live in a directory of the run's, never an installation's.
            env=clean_environment(
                FTA_METADATA_ADDRESS=METADATA_STAND_IN,
                FTA_TENANT_DISK_ROOT=self.disks,
                FTA_TENANT_DISK_RUN_DIR=f"{self.disks}-run",
                FTA_MARKET_DATA_IMPORT_DIR=self.imports,
                **self.env,
                **extra,
            ),
            capture_output=True,
            text=True,
            timeout=1200,
        )

    def empty_host(self) -> None:
        """Everything removed, as on a new host: the stack, its volumes, the tenants'
        containers, networks and disks, and .env."""
        down = self.script("down.sh")
        assert down.returncode == 0, down.stdout + down.stderr
        mine = {"label": f"fta.instance={INSTANCE}"}
        for container in self.docker.containers.list(all=True, filters=mine):
            container.remove(force=True)
        for network in self.docker.networks.list(filters=mine):
            network.remove()
        for volume in self.docker.volumes.list(filters=mine):
            volume.remove(force=True)
        for name in (DATA_VOLUME, "fta-market-data"):
            self.docker.volumes.get(name).remove(force=True)
        unmount_all(self.disks)
        shutil.rmtree(self.disks)
        (REPO / ".env").unlink()

    def tenant_ids(self) -> set[str]:
        """The tenants this stack's worker made a network or a data volume for (those of
        other installations on the host, a test session's say, carry another instance)."""
        mine = {"label": f"fta.instance={INSTANCE}"}
        resources = [*self.docker.networks.list(filters=mine)]
        resources += self.docker.volumes.list(filters=mine)
        return {
            r.attrs["Labels"]["fta.tenant"] for r in resources if "fta.tenant" in r.attrs["Labels"]
        }

    def containers(self, *, one_shots: bool = False) -> dict[str, Any]:
        """The stack's containers by Compose service name (the long-running ones unless
        asked)."""
        found = self.docker.containers.list(
            all=True, filters={"label": f"com.docker.compose.project={PROJECT}"}
        )
        services = {c.labels["com.docker.compose.service"]: c for c in found}
        return {k: c for k, c in services.items() if one_shots or k not in ONE_SHOTS}


@contextmanager
def running_stack(**env: str) -> Iterator[Stack]:
    """`scripts/up.sh` with `env` on top of the generated .env; down and cleaned up after."""
    client = local_docker()
    stack = Stack(client, env, f"/tmp/fta-e2e-disks-{secrets.token_hex(4)}")
    if (
        stack.containers()
        or exists(client.networks.get, CONTROL_NETWORK)
        or exists(client.containers.get, "fta-market-data")
        or _port_8080_taken()
    ):
        client.close()
        pytest.skip("a stack is already running on this host: left alone")
    env_file = REPO / ".env"
    created_env = not env_file.exists()
    before = _stack_resources(client)
    stack.listeners_before = host_listeners()
    try:
        up = stack.script("up.sh")
        assert up.returncode == 0, up.stdout + up.stderr
        assert "fta is up: http://127.0.0.1:8080/" in up.stdout
        yield stack
    finally:
        with ExitStack() as cleanup:
            # Once the stack is down, in reverse order; each runs even if another failed.
            cleanup.callback(client.close)
            if created_env:
                cleanup.callback(env_file.unlink, missing_ok=True)
            for directory in (stack.disks, f"{stack.disks}-run", stack.imports):
                cleanup.callback(shutil.rmtree, directory, ignore_errors=True)
            cleanup.callback(unmount_all, stack.disks)
            cleanup.callback(_remove_new, client, before)
            down = stack.script("down.sh")
        assert down.returncode == 0, down.stdout + down.stderr


@contextmanager
def operator_key(home: Path) -> Iterator[Path]:
    """A GnuPG key pair of the operator's in `home` (deploy/backup.sh encrypts for it): its
    public half exported; the agents gpg started for `home` stopped afterwards."""
    try:
        yield _operator_key(home)
    finally:
        subprocess.run(
            ["gpgconf", "--homedir", str(home), "--kill", "all"], check=False, timeout=60
        )


def _operator_key(home: Path) -> Path:
    home.mkdir(mode=0o700)
    env = {**clean_environment(), "GNUPGHOME": str(home)}
    subprocess.run(
        ["gpg", "--batch", "--passphrase", "", "--quick-gen-key", "fta operator <ops@example.com>",
         "default", "default", "never"],
        env=env, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    exported = subprocess.run(
        ["gpg", "--armor", "--export", "ops@example.com"],
        env=env, check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    public = home / "operator.asc"
    public.write_bytes(exported.stdout)
    return public


def _belongs(labels: dict[str, str] | None) -> bool:
    labels = labels or {}
    return (
        labels.get("fta.instance") == INSTANCE
        or labels.get("com.docker.compose.project") == PROJECT
    )


def _stack_resources(client: docker.DockerClient) -> dict[str, set[str]]:
    """The ids of the stack's containers, networks and volumes (Compose's and those its
    worker makes for tenants) on the host now."""
    return {
        "containers": {c.id for c in client.containers.list(all=True) if _belongs(c.labels)},
        "networks": {n.id for n in client.networks.list() if _belongs(n.attrs["Labels"])},
        "volumes": {v.id for v in client.volumes.list() if _belongs(v.attrs["Labels"])},
    }


def _remove_new(client: docker.DockerClient, before: dict[str, set[str]]) -> None:
    """Removes what the stack made since `before`: tenants' containers, networks and volumes,
    and the volumes Compose created. Containers first: they hold the networks and volumes."""
    now = _stack_resources(client)
    for container_id in now["containers"] - before["containers"]:
        client.containers.get(container_id).remove(force=True)
    for network_id in now["networks"] - before["networks"]:
        client.networks.get(network_id).remove()
    for volume_id in now["volumes"] - before["volumes"]:
        client.volumes.get(volume_id).remove(force=True)
