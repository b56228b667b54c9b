"""The socket proxy, for tests that drive Docker the way the worker does: through it.

The image is built from images/socket-proxy (images/build.sh skips an unchanged build) and
run as in production: its own non-root user with the socket's group, read-only root, no
capabilities, the socket mounted read-only, published on 127.0.0.1 only.

Registered as a pytest plugin, this module gives:
  docker_proxy_url      (session) a proxy that lets the container named GATEWAY_CONTAINER
                        join tenant networks: the worker tests run their gateway under it;
  standin_world         (session) a second proxy, with a stand-in gateway of its own (a
                        small HTTP server answering a token) and its own tenant bridge
                        prefix and cgroup root, for the runtime
                        tests: they never wait on the real gateway, nor clash with it;
  proxied_job_runner    a DockerJobRunner through that second proxy, whose objects the
                        test's `docker_resources` tracker removes;
  proxied_tenant        a fresh tenant's network and volume, as a ContainerSpec template.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from fta.runtime import ContainerSpec, DockerJobRunner, Limits, Mount
from fta.settings import Settings
from tests.support.docker_resources import (
    API_VERSION,
    BASE_IMAGE,
    RUN_ID,
    TEST_INSTANCE,
    DockerResources,
    ensure_base_image,
    free_subnet_index,
    local_docker,
    random_tenant_id,
    responder_command,
)
from tests.support.tenant_disks import TEST_DISK_ROOT, TenantDiskHelper

REPO = Path(__file__).resolve().parents[2]
PROXY_IMAGE = "fta/socket-proxy:dev"
# The only container the shared proxy lets join tenant networks during the test session: the
# worker tests' market-data gateway must carry this name.
GATEWAY_CONTAINER = f"fta-test-market-data-{RUN_ID}"
STANDIN_GATEWAY = f"fta-test-standin-gateway-{RUN_ID}"
# The runtime tests' tenant bridges: outside a real installation's firewall (ftab-), so the
# isolation tests judge their own copy of it alone. Their parent cgroups stay apart too.
TEST_BRIDGE_PREFIX = "ftat-"
TEST_SUBNET_POOL = "10.210.0.0/16"
STANDIN_GATEWAY_PORT = 8090
TEST_CGROUP_ROOT = "ftatest"
TEST_DISK_BYTES = 32 << 20
TEST_LIMITS = Limits(nano_cpus=500_000_000, memory_bytes=128 << 20, pids=64, tmpfs_bytes=16 << 20)


def build_socket_proxy_image() -> None:
    subprocess.run(
        ["bash", str(REPO / "images" / "build.sh"), "socket-proxy"], check=True, timeout=900
    )


def docker_socket_path() -> str:
    host = os.environ.get("DOCKER_HOST", "")
    return host.removeprefix("unix://") if host.startswith("unix://") else "/var/run/docker.sock"


def http_url(docker_url: str) -> str:
    """The proxy's docker-py URL (tcp://host:port) as a plain HTTP base URL."""
    return "http://" + docker_url.removeprefix("tcp://")


@contextmanager
def running_socket_proxy(
    resources: DockerResources,
    *,
    gateway_container: str,
    bridge_prefix: str = "ftab-",
    cgroup_root: str = "fta",
) -> Iterator[str]:
    """Starts a proxy container and yields its URL for docker-py (tcp://127.0.0.1:PORT)."""
    socket_path = docker_socket_path()
    container = resources.run(
        PROXY_IMAGE,
        None,
        name=f"fta-test-socket-proxy-{resources.scope}",
        read_only=True,
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        group_add=[str(os.stat(socket_path).st_gid)],
        volumes={socket_path: {"bind": "/var/run/docker.sock", "mode": "ro"}},
        ports={"2375/tcp": ("127.0.0.1", None)},
        environment={
            "FTA_INSTANCE": TEST_INSTANCE,
            "FTA_GATEWAY_CONTAINER": gateway_container,
            "FTA_TENANT_CGROUP_ROOT": cgroup_root,
            "FTA_TENANT_BRIDGE_PREFIX": bridge_prefix,
            "FTA_TENANT_DISK_ROOT": TEST_DISK_ROOT,
        },
    )
    container.reload()
    port = container.attrs["NetworkSettings"]["Ports"]["2375/tcp"][0]["HostPort"]
    url = f"tcp://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if requests.get(f"{http_url(url)}/v{API_VERSION}/info", timeout=2).ok:
                break
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"socket proxy never answered: {container.logs()!r}")
        time.sleep(0.2)
    yield url


@pytest.fixture(scope="session")
def socket_proxy_image() -> None:
    client = local_docker()
    try:
        ensure_base_image(client)
    finally:
        client.close()
    build_socket_proxy_image()


@pytest.fixture(scope="session")
def docker_proxy_url(
    socket_proxy_image: None, tenant_disk_helper: TenantDiskHelper
) -> Iterator[str]:
    client = local_docker()
    resources = DockerResources(client)
    try:
        with running_socket_proxy(resources, gateway_container=GATEWAY_CONTAINER) as url:
            yield url
    finally:
        resources.cleanup()
        client.close()


@dataclass(frozen=True)
class StandinWorld:
    proxy_url: str
    gateway_token: str
    disks: TenantDiskHelper

    def settings(self) -> Settings:
        return Settings(
            instance=TEST_INSTANCE,
            docker_host=self.proxy_url,
            gateway_container=STANDIN_GATEWAY,
            gateway_port=STANDIN_GATEWAY_PORT,
            tenant_subnet_pool=TEST_SUBNET_POOL,
            tenant_bridge_prefix=TEST_BRIDGE_PREFIX,
            tenant_cgroup_root=TEST_CGROUP_ROOT,
            tenant_disk_root=self.disks.root,
            tenant_disk_socket=self.disks.socket,
        )


@pytest.fixture(scope="session")
def standin_world(
    socket_proxy_image: None, tenant_disk_helper: TenantDiskHelper
) -> Iterator[StandinWorld]:
    client = local_docker()
    resources = DockerResources(client)
    token = f"market-data-{RUN_ID}"
    try:
        with running_socket_proxy(
            resources,
            gateway_container=STANDIN_GATEWAY,
            bridge_prefix=TEST_BRIDGE_PREFIX,
            cgroup_root=TEST_CGROUP_ROOT,
        ) as url:
            command = responder_command(STANDIN_GATEWAY_PORT, token)
            resources.run(PROXY_IMAGE, command, name=STANDIN_GATEWAY)
            yield StandinWorld(url, token, tenant_disk_helper)
    finally:
        resources.cleanup()
        client.close()


@pytest.fixture
def proxied_job_runner(
    standin_world: StandinWorld, docker_resources: DockerResources
) -> Iterator[DockerJobRunner]:
    runner = DockerJobRunner(standin_world.settings(), extra_labels=docker_resources.labels)
    yield runner
    runner.close()


def new_tenant(
    runner: DockerJobRunner, resources: DockerResources, settings: Settings
) -> ContainerSpec:
    """A fresh tenant's network and volume, as a spec template for its containers."""
    tenant_id = random_tenant_id()
    index = free_subnet_index(
        resources.client, settings.tenant_subnet_pool, settings.tenant_subnet_prefix
    )
    resources.add_tenant_cgroups(settings.tenant_cgroup_root, tenant_id)
    network = runner.ensure_tenant_network(tenant_id, index)
    volume = runner.ensure_tenant_volume(tenant_id, TEST_DISK_BYTES)
    return ContainerSpec(
        tenant_id=tenant_id,
        owner_kind="job",
        owner_id="1",
        image=BASE_IMAGE,
        command=["true"],
        env={},
        limits=TEST_LIMITS,
        mounts=[Mount(volume, "/data", read_only=False)],
        network=network.name,
        extra_hosts=network.extra_hosts,
        dns=network.dns,
    )


@pytest.fixture
def proxied_tenant(
    proxied_job_runner: DockerJobRunner,
    docker_resources: DockerResources,
    standin_world: StandinWorld,
) -> ContainerSpec:
    return new_tenant(proxied_job_runner, docker_resources, standin_world.settings())


def spec_with(template: ContainerSpec, **changes: Any) -> ContainerSpec:
    return dataclasses.replace(template, **changes)
