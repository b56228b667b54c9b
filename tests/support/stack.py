"""The whole stack booted by `scripts/up.sh` (what `make up` runs) and taken down again.

A stack already on this host (an operator's or a developer's) is left alone: the caller is
skipped. Whatever the boot creates (.env, the data and candle volumes, the tenants' networks
and volumes, the tenant disks' directories) is removed afterwards."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
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
CANDLE_VOLUME = "fta-candles"
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


@dataclass
class Stack:
    docker: docker.DockerClient
    # The stack's variables for this run (stand-ins' addresses, say), on top of .env.
    env: dict[str, str]
    disks: str
    # Tenants it made networks or volumes for: those outlive the stack.
    tenants: list[str] = field(default_factory=list)

    @property
    def imports(self) -> str:
        return f"{self.disks}-imports"

    def script(self, name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(REPO / "scripts" / name)],
            cwd=REPO,
            # The host firewall's metadata rule aims at a stand-in address on test machines;
            # the tenant disks live in a directory of the run's, never an installation's.
            env=clean_environment(
                FTA_METADATA_ADDRESS=METADATA_STAND_IN,
                FTA_TENANT_DISK_ROOT=self.disks,
                FTA_TENANT_DISK_RUN_DIR=f"{self.disks}-run",
                FTA_MARKET_DATA_IMPORT_DIR=self.imports,
                **self.env,
            ),
            capture_output=True,
            text=True,
            timeout=1200,
        )

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
    created_volume = not exists(client.volumes.get, DATA_VOLUME)
    created_candles = not exists(client.volumes.get, CANDLE_VOLUME)
    try:
        up = stack.script("up.sh")
        assert up.returncode == 0, up.stdout + up.stderr
        assert "fta is up: http://127.0.0.1:8080/" in up.stdout
        before = stack.tenant_ids()
        try:
            yield stack
        finally:
            stack.tenants.extend(stack.tenant_ids() - before - set(stack.tenants))
    finally:
        down = stack.script("down.sh")
        assert down.returncode == 0, down.stdout + down.stderr
        if created_volume:
            client.volumes.get(DATA_VOLUME).remove(force=True)
        if created_env:
            env_file.unlink()
        _remove_tenants(client, stack.tenants, remove_candles=created_candles)
        unmount_all(stack.disks)
        for directory in (stack.disks, f"{stack.disks}-run", stack.imports):
            shutil.rmtree(directory, ignore_errors=True)
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
