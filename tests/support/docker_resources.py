"""Docker objects made by tests: labelled, tracked, and removed again.

Everything a test creates carries `fta.test=1`, the session's `fta.test.run` and its
tracker's `fta.test.scope` label; `DockerResources.cleanup` removes what carries its scope
label plus whatever was registered by hand, so parallel sessions never touch each other.
"""

from __future__ import annotations

import ipaddress
import random
import secrets
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest
from docker.errors import APIError, NotFound
from docker.models.containers import Container

API_VERSION = "1.41"
RUN_ID = secrets.token_hex(4)
# The installation the test session's workers and proxies belong to.
TEST_INSTANCE = f"test-{RUN_ID}"
BASE_IMAGE = "fta/base:bookworm"
BASE32 = "abcdefghijklmnopqrstuvwxyz234567"


def local_docker() -> docker.DockerClient:
    """The engine itself (DOCKER_HOST or its default socket): for test bookkeeping only;
    what is under test goes through the socket proxy."""
    return docker.from_env(version=API_VERSION)


def random_tenant_id() -> str:
    return "".join(secrets.choice(BASE32) for _ in range(8))


class DockerResources:
    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client
        self.scope = secrets.token_hex(6)
        self.labels = {"fta.test": "1", "fta.test.run": RUN_ID, "fta.test.scope": self.scope}
        self._containers: list[str] = []
        self._networks: list[str] = []
        self._volumes: list[str] = []
        self._cgroups: list[Path] = []
        self._images: list[str] = []

    def add_container(self, container_id: str) -> str:
        self._containers.append(container_id)
        return container_id

    def add_network(self, name: str) -> str:
        self._networks.append(name)
        return name

    def add_volume(self, name: str) -> str:
        self._volumes.append(name)
        return name

    def add_image(self, tag: str) -> str:
        self._images.append(tag)
        return tag

    def add_tenant_cgroups(self, root: str, tenant_id: str) -> None:
        """Parent cgroups that containers created under `root`/`tenant_id` leave behind
        (cgroupfs driver, cgroup v1 or v2)."""
        mount = Path("/sys/fs/cgroup")
        hierarchies = [p for p in mount.iterdir() if p.is_dir()] if mount.is_dir() else []
        for hierarchy in [mount, *hierarchies]:
            self._cgroups.append(hierarchy / root / tenant_id)

    def run(self, image: str, command: list[str] | None, **kwargs: object) -> Container:
        """A detached container started directly on the engine, tracked."""
        container = self.client.containers.run(
            image, command, detach=True, labels=self.labels, **kwargs
        )
        self.add_container(container.id)
        return container

    def cleanup(self) -> None:
        api = self.client.api
        selector = {"label": [f"fta.test.scope={self.scope}"]}
        containers = [c["Id"] for c in api.containers(all=True, filters=selector)]
        for container_id in [*reversed(self._containers), *containers]:
            _ignore_missing(api.remove_container, container_id, force=True, v=True)
        networks = [n["Name"] for n in api.networks(filters=selector)]
        for network in [*reversed(self._networks), *networks]:
            self._disconnect_all(network)
            _ignore_missing(api.remove_network, network)
        volumes = [v["Name"] for v in (api.volumes(filters=selector).get("Volumes") or [])]
        for volume in [*reversed(self._volumes), *volumes]:
            _ignore_missing(api.remove_volume, volume, force=True)
        for image in reversed(self._images):
            _ignore_missing(api.remove_image, image, force=True)
        for cgroup in self._cgroups:
            for directory in (cgroup, cgroup.parent):
                try:
                    directory.rmdir()  # only succeeds once empty: never removes a live one
                except OSError:
                    break
        self._containers.clear()
        self._networks.clear()
        self._volumes.clear()
        self._cgroups.clear()
        self._images.clear()

    def _disconnect_all(self, network: str) -> None:
        # A gateway that outlives the test may still be attached.
        try:
            attached = self.client.api.inspect_network(network).get("Containers") or {}
        except NotFound:
            return
        for container_id in attached:
            _ignore_missing(
                self.client.api.disconnect_container_from_network, container_id, network, force=True
            )


def _ignore_missing(remove: Callable[..., object], *args: object, **kwargs: object) -> None:
    try:
        remove(*args, **kwargs)
    except NotFound:
        pass
    except APIError as error:
        if error.status_code != 409:
            raise


def free_subnet_index(client: docker.DockerClient, pool: str, prefix: int) -> int:
    """A random subnet index of `pool` that overlaps no existing Docker network."""
    network = ipaddress.ip_network(pool)
    taken = []
    for existing in client.api.networks():
        for config in (existing.get("IPAM") or {}).get("Config") or []:
            if config.get("Subnet"):
                taken.append(ipaddress.ip_network(config["Subnet"]))
    count = 2 ** (prefix - network.prefixlen)
    for index in random.sample(range(count), min(count, 256)):
        subnet = ipaddress.ip_network(
            (int(network.network_address) + index * 2 ** (32 - prefix), prefix)
        )
        if not any(subnet.overlaps(other) for other in taken):
            return index
    raise RuntimeError(f"no free /{prefix} left in {pool}")


def responder_command(port: int, token: str) -> list[str]:
    """A command for the socket-proxy image (it has python3) that answers every HTTP GET on
    `port` with `token`: the base image has no listener of its own."""
    server = (
        "import http.server, sys\n"
        "class Answer(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        body = sys.argv[2].encode()\n"
        "        self.send_response(200)\n"
        "        self.send_header('Content-Type', 'text/plain')\n"
        "        self.send_header('Content-Length', str(len(body)))\n"
        "        self.end_headers()\n"
        "        self.wfile.write(body)\n"
        "http.server.ThreadingHTTPServer(('', int(sys.argv[1])), Answer).serve_forever()\n"
    )
    return ["python3", "-c", server, str(port), token]


def ensure_base_image(client: docker.DockerClient) -> None:
    try:
        client.images.get(BASE_IMAGE)
    except NotFound:
        repo = Path(__file__).resolve().parents[2]
        subprocess.run(["bash", str(repo / "images" / "build-base.sh")], check=True, timeout=600)
        client.images.get(BASE_IMAGE)


@pytest.fixture
def docker_resources() -> Iterator[DockerResources]:
    client = local_docker()
    resources = DockerResources(client)
    try:
        yield resources
    finally:
        resources.cleanup()
        client.close()
