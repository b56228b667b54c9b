"""The whole job path, in-process, as the integration tests run it: a migrated throwaway
database, the REST API under a TestClient, the socket proxy, the market-data gateway and a
worker thread; one signed-up client with RsiQuick uploaded. Everything is removed on exit.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import docker
from docker.errors import ImageNotFound
from fastapi.testclient import TestClient
from tests.integration.strategies import source
from tests.support.api import Client, sign_up
from tests.support.database import migrated_database
from tests.support.docker_resources import TEST_INSTANCE, DockerResources
from tests.support.sandbox import APP_IMAGE, Sandbox, running_sandbox
from tests.support.socket_proxy import GATEWAY_CONTAINER, PROXY_IMAGE, running_socket_proxy
from tests.support.tenant_disks import TEST_DISK_ROOT, running_tenant_disk_helper

from fta.freqtrade.config import CONTAINER_PATHS, ContainerPaths
from fta.runtime import Limits
from fta.runtime.cgroup import cgroup_parent, read_tenant_usage
from fta.runtime.network import tenant_subnet
from fta.runtime.spec import (
    LABEL_PYTHON_ENV,
    python_env_record_name,
    tenant_network_name,
    tenant_volume_name,
)
from fta.settings import Settings

STRATEGY = "RsiQuick"
FINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled", "timed_out", "oom_killed"})


@dataclass(frozen=True)
class TenantSandbox:
    """What a tenant's job container gets, for a bare `docker run` of the same container."""

    image: str
    network: str
    gateway_ip: str
    dns_ip: str
    data_volume: str
    candle_volume: str
    cgroup_parent: str
    limits: Limits
    # The read-only volume with the job image's Python environment (jobs have it, bots not).
    python_env: str | None = None


@dataclass
class PlatformUnderTest:
    http: TestClient
    client: Client
    sandbox: Sandbox
    settings: Settings
    strategy_id: str

    def submit_backtest(self, config: dict[str, Any]) -> str:
        body = {"kind": "backtest", "strategy_id": self.strategy_id, "config": config}
        response = self.http.post("/api/v1/jobs", json=body, headers=self.client.auth)
        if response.status_code != 202:
            raise RuntimeError(f"submit refused: {response.status_code} {response.text}")
        return str(response.json()["id"])

    def job(self, job_id: str) -> dict[str, Any]:
        job: dict[str, Any] = self.http.get(
            f"/api/v1/jobs/{job_id}", headers=self.client.auth
        ).json()
        return job

    def wait_succeeded(self, job_id: str, *, poll: float, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if job["status"] == "succeeded":
                return job
            if job["status"] in FINAL_STATUSES:
                raise RuntimeError(f"job {job_id} ended {job['status']}: {job['error']}")
            time.sleep(poll)
        raise RuntimeError(f"job {job_id} did not finish within {timeout} s")

    def logs(self, job_id: str) -> str:
        response = self.http.get(f"/api/v1/jobs/{job_id}/logs", headers=self.client.auth)
        return str(response.text)

    def trades(self, job_id: str) -> int:
        result = self.http.get(f"/api/v1/jobs/{job_id}/result", headers=self.client.auth)
        return int(result.json()["trades"])

    def tenant_cpu_seconds(self, engine: docker.DockerClient) -> float:
        """CPU time of all the tenant's containers so far: their parent cgroup keeps the
        time of children that have exited."""
        info = engine.info()
        version: Literal[1, 2] = 2 if str(info.get("CgroupVersion")) == "2" else 1
        try:
            usage = read_tenant_usage(
                self.client.tenant_id,
                version=version,
                driver=info["CgroupDriver"],
                root=self.settings.tenant_cgroup_root,
            )
        except FileNotFoundError:  # made with the tenant's first container
            return 0.0
        return usage.cpu_seconds

    @property
    def job_paths(self) -> ContainerPaths:
        """The paths the worker's bundles give a job (JobHandler.container_paths): the
        candle cache's directory of the current market-data source."""
        candles = CONTAINER_PATHS.path(
            CONTAINER_PATHS.candles, self.settings.market_data_source.value
        )
        return dataclasses.replace(CONTAINER_PATHS, candles=candles)

    def tenant_sandbox(
        self, engine: docker.DockerClient, *, python_env: bool = False
    ) -> TenantSandbox:
        """The tenant's network, volumes, cgroup parent and plan limits, as the worker
        gives them to its jobs; with `python_env`, the job image's Python environment volume
        (made by the worker for the first job)."""
        from fta.accounts.models import Tenant
        from fta.db import session_scope, utcnow
        from fta.worker.network_slots import take_slot

        with session_scope() as session:
            tenant = session.get(Tenant, self.client.tenant_id)
            assert tenant is not None
            index = take_slot(session, tenant.id, self.settings, utcnow())
            plan = tenant.plan
            limits = Limits(
                nano_cpus=int(plan.cpu * 1_000_000_000),
                memory_bytes=plan.memory_mb * 1024 * 1024,
                pids=plan.pids,
                tmpfs_bytes=self.settings.job_tmpfs_bytes,
            )
        settings = self.settings
        layout = tenant_subnet(settings.tenant_subnet_pool, settings.tenant_subnet_prefix, index)
        return TenantSandbox(
            image=settings.job_image,
            network=tenant_network_name(self.client.tenant_id),
            gateway_ip=str(layout.gateway_ip),
            dns_ip=str(layout.dns_ip),
            data_volume=tenant_volume_name(self.client.tenant_id),
            candle_volume=settings.candle_volume,
            cgroup_parent=cgroup_parent(
                self.client.tenant_id,
                driver=engine.info()["CgroupDriver"],
                root=settings.tenant_cgroup_root,
            ),
            limits=limits,
            python_env=self._python_env(engine) if python_env else None,
        )

    def _python_env(self, engine: docker.DockerClient) -> str:
        image_id = str(engine.images.get(self.settings.job_image).id)
        record = engine.volumes.get(python_env_record_name(self.settings.instance, image_id))
        return str(record.attrs["Labels"][LABEL_PYTHON_ENV])


def utc_now() -> datetime:
    return datetime.now(UTC)


def check_images(engine: docker.DockerClient, job_image: str) -> None:
    missing = []
    for image in (APP_IMAGE, PROXY_IMAGE, job_image):
        try:
            engine.images.get(image)
        except ImageNotFound:
            missing.append(image)
    if missing:
        raise SystemExit(f"missing images {', '.join(missing)}: run `bash images/build.sh all`")


@contextmanager
def running_platform(engine: docker.DockerClient) -> Iterator[PlatformUnderTest]:
    """The platform with one client; on exit removes the client's containers, network and
    volume, the candle volume, the gateway, the proxy and the database."""
    from fta.db import get_engine, get_sessionmaker
    from fta.portal.app import create_app
    from fta.settings import get_settings

    if not os.environ.get("FTA_TEST_ADMIN_URL"):
        raise SystemExit("FTA_TEST_ADMIN_URL is not set: use bench/run.sh (a throwaway Postgres)")
    with ExitStack() as stack:
        database_url = stack.enter_context(migrated_database()).runtime_url
        os.environ.update(
            FTA_MODE="test",
            FTA_DATABASE_URL=database_url,
            FTA_SECRET_KEY=secrets.token_urlsafe(48),
            FTA_AUDIT_KEY=secrets.token_urlsafe(48),
            # The socket proxy serves this installation only.
            FTA_INSTANCE=TEST_INSTANCE,
        )
        for cached in (get_settings, get_engine, get_sessionmaker):
            cached.cache_clear()
        # Runs after the sandbox and the API are gone, before the database is dropped.
        stack.callback(lambda: get_engine().dispose())
        check_images(engine, get_settings().job_image)
        # Tenant volumes are binds of disks that this root helper mounts.
        disks = stack.enter_context(running_tenant_disk_helper(TEST_DISK_ROOT))
        os.environ.update(FTA_TENANT_DISK_ROOT=disks.root, FTA_TENANT_DISK_SOCKET=disks.socket)
        resources = DockerResources(engine)
        stack.callback(resources.cleanup)
        proxy_url = stack.enter_context(
            running_socket_proxy(resources, gateway_container=GATEWAY_CONTAINER)
        )
        sandbox = stack.enter_context(running_sandbox(proxy_url))
        http = stack.enter_context(TestClient(create_app(), raise_server_exceptions=False))
        client = sign_up(http, "Bench")
        sandbox.forget_tenant(client.tenant_id)
        response = http.post(
            "/api/v1/strategies",
            json={"name": STRATEGY, "source": source(STRATEGY)},
            headers=client.auth,
        )
        if response.status_code != 201:
            raise RuntimeError(f"strategy upload refused: {response.text}")
        yield PlatformUnderTest(
            http=http,
            client=client,
            sandbox=sandbox,
            settings=get_settings(),
            strategy_id=str(response.json()["id"]),
        )
