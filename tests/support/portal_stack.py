"""The portal as Compose runs it: the app image under the Compose memory limit, on its own
bridge network with a Postgres container of the project's image, and the nginx image in
front when a test asks. Published on 127.0.0.1 only; the containers carry the caller's
DockerResources labels, which remove them afterwards.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy
from docker.models.containers import Container

from tests.support.docker_resources import DockerResources

APP_IMAGE = "fta/app:dev"
POSTGRES_IMAGE = "fta/postgres:dev"
NGINX_IMAGE = "fta/nginx:dev"
# docker-compose.yml's portal limit.
PORTAL_MEMORY_BYTES = 512 * 1024 * 1024
HARDENED: dict[str, Any] = {
    "read_only": True,
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges:true"],
    "tmpfs": {"/tmp": "size=64m"},
}
# cgroup v2 (container's own namespace) first, then v1.
PEAK_FILES = ("/sys/fs/cgroup/memory.peak", "/sys/fs/cgroup/memory/memory.max_usage_in_bytes")
USAGE_FILES = ("/sys/fs/cgroup/memory.current", "/sys/fs/cgroup/memory/memory.usage_in_bytes")


@dataclass(frozen=True)
class PortalStack:
    network: str
    portal: Container
    portal_url: str
    database_url: str

    def memory_peak(self) -> int:
        """The most memory the portal's cgroup has held since it started, in bytes."""
        return _read_first(self.portal, PEAK_FILES)

    def memory_usage(self) -> int:
        return _read_first(self.portal, USAGE_FILES)

    def reset_memory_peak(self) -> bool:
        """Starts the peak afresh (cgroup v1, cgroupfs driver, from the host); False when
        this engine's cgroups offer no reset, the peak then counts from the start."""
        counter = Path("/sys/fs/cgroup/memory/docker", self.portal.id, "memory.max_usage_in_bytes")
        try:
            counter.write_text("0")
        except OSError:
            return False
        return True

    def portal_state(self) -> dict[str, Any]:
        self.portal.reload()
        return dict(self.portal.attrs["State"])


def _read_first(container: Container, paths: tuple[str, ...]) -> int:
    for path in paths:
        result = container.exec_run(["cat", path])
        if result.exit_code == 0:
            return int(result.output.decode().strip())
    raise AssertionError(f"none of {paths} is readable in the container")


def wait_for(check: Callable[[], bool], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def _published(container: Container, port: int) -> str:
    container.reload()
    binding = container.attrs["NetworkSettings"]["Ports"][f"{port}/tcp"][0]
    return f"http://127.0.0.1:{binding['HostPort']}"


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=3).status_code == 200
    except httpx.TransportError:
        return False


def _start(
    resources: DockerResources,
    image: str,
    command: list[str] | None,
    network: str,
    alias: str,
    environment: Mapping[str, str],
    **options: Any,
) -> Container:
    """A hardened container joined to `network` as `alias` before it starts."""
    container = resources.client.containers.create(
        image,
        command,
        labels=resources.labels,
        environment=dict(environment),
        network=network,
        networking_config={network: resources.client.api.create_endpoint_config(aliases=[alias])},
        **HARDENED,
        **options,
    )
    resources.add_container(container.id)
    container.start()
    return container


@contextmanager
def portal_stack(
    resources: DockerResources, portal_env: Mapping[str, str] | None = None
) -> Iterator[PortalStack]:
    """Postgres and the portal (migrating first, as in Compose), published on 127.0.0.1;
    `database_url` is the owner's, for the test to read what the portal wrote."""
    network = f"fta-test-portal-{secrets.token_hex(4)}"
    resources.client.networks.create(network, driver="bridge", labels=resources.labels)
    resources.add_network(network)
    # The owner runs the migrations, the portal logs in as the runtime role (as in Compose).
    password, runtime_password = secrets.token_hex(16), secrets.token_hex(16)
    # The image's data directory, owned by its user, copied into a fresh volume (as in Compose).
    volume = resources.add_volume(f"fta-test-pgdata-{secrets.token_hex(4)}")
    resources.client.volumes.create(volume, labels=resources.labels)
    postgres = _start(
        resources,
        POSTGRES_IMAGE,
        None,
        network,
        "postgres",
        {
            "POSTGRES_PASSWORD": secrets.token_hex(16),
            "POSTGRES_OWNER_PASSWORD": password,
            "POSTGRES_RUNTIME_PASSWORD": runtime_password,
        },
        ports={"5432/tcp": ("127.0.0.1", None)},
        volumes={volume: {"bind": "/var/lib/postgresql/data", "mode": "rw"}},
        mem_limit="1g",
    )
    wait_for(
        lambda: postgres.exec_run(["pg_isready", "-q", "-h", "/tmp"]).exit_code == 0,
        "postgres to accept connections",
    )
    postgres.reload()
    pg_port = postgres.attrs["NetworkSettings"]["Ports"]["5432/tcp"][0]["HostPort"]
    environment = {
        "FTA_MODE": "development",
        "FTA_DATABASE_URL": f"postgresql+psycopg://fta_app:{runtime_password}@postgres:5432/fta",
        "FTA_OWNER_DATABASE_URL": f"postgresql+psycopg://fta_owner:{password}@postgres:5432/fta",
        "FTA_SECRET_KEY": secrets.token_urlsafe(48),
        "FTA_AUDIT_KEY": secrets.token_urlsafe(48),
        **(portal_env or {}),
    }
    portal = _start(
        resources,
        APP_IMAGE,
        [
            "sh",
            "-c",
            'FTA_DATABASE_URL="$FTA_OWNER_DATABASE_URL" fta migrate && exec fta portal',
        ],
        network,
        "portal",
        environment,
        ports={"8000/tcp": ("127.0.0.1", None)},
        mem_limit=PORTAL_MEMORY_BYTES,
        memswap_limit=PORTAL_MEMORY_BYTES,
        pids_limit=128,
        nano_cpus=1_000_000_000,
    )
    portal_url = _published(portal, 8000)
    try:
        wait_for(lambda: _answers(f"{portal_url}/healthz"), "the portal to answer")
    except AssertionError as late:
        raise AssertionError(portal.logs(tail=30).decode(errors="replace")) from late
    yield PortalStack(
        network=network,
        portal=portal,
        portal_url=portal_url,
        database_url=f"postgresql+psycopg://fta_owner:{password}@127.0.0.1:{pg_port}/fta",
    )


def nginx_in_front(resources: DockerResources, stack: PortalStack, trusted_proxies: str) -> str:
    """The nginx image in front of the stack's portal, started with FTA_TRUSTED_PROXIES set to
    `trusted_proxies`; its URL on 127.0.0.1."""
    nginx = _start(
        resources,
        NGINX_IMAGE,
        None,
        stack.network,
        f"nginx-{secrets.token_hex(2)}",
        {"FTA_TRUSTED_PROXIES": trusted_proxies},
        ports={"8080/tcp": ("127.0.0.1", None)},
        mem_limit="128m",
    )
    url = _published(nginx, 8080)
    wait_for(lambda: _answers(f"{url}/healthz"), "nginx to proxy to the portal")
    return url


def gateway_of(container: Container) -> str:
    """The bridge gateway: the address a connection from this host arrives from."""
    container.reload()
    networks = container.attrs["NetworkSettings"]["Networks"]
    return str(next(iter(networks.values()))["Gateway"])


def query(database_url: str, sql: str, **params: object) -> list[sqlalchemy.Row[Any]]:
    engine = sqlalchemy.create_engine(database_url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(sqlalchemy.text(sql), params))
    finally:
        engine.dispose()


def bad_login(url: str) -> httpx.Response:
    """A log-in to an unknown account: a full password check (against a dummy hash) all the
    same."""
    body = {"email": f"nobody-{secrets.token_hex(6)}@example.com", "password": "x" * 16}
    return httpx.post(f"{url}/api/v1/auth/token", json=body, timeout=120)


def concurrent_bad_logins(url: str, count: int) -> list[httpx.Response]:
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(lambda _: bad_login(url), range(count)))
