"""The worker's world for one test session: gateway container, worker thread, cleanup.

Docker is reached through the real socket proxy; everything created is labelled and removed.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import docker
import httpx

from tests.support.docker_resources import DockerResources, local_docker
from tests.support.socket_proxy import GATEWAY_CONTAINER

APP_IMAGE = os.environ.get("FTA_TEST_APP_IMAGE", "fta/app:dev")
GATEWAY_PORT = 8090
# The gateway's relay to bots' APIs (fta.gateway.relay), which the portal reaches.
RELAY_PORT = 8091
# Candidate /16 pools for the test tenants' subnets, outside Docker's default pools.
TEST_POOL_CANDIDATES = [f"10.{octet}.0.0/16" for octet in range(211, 251)]


def _free_pool(engine: docker.DockerClient) -> str:
    """A /16 no existing network overlaps: two test sessions may share one engine."""
    taken = [
        ipaddress.ip_network(config["Subnet"])
        for network in engine.api.networks()
        for config in (network.get("IPAM") or {}).get("Config") or []
        if config.get("Subnet")
    ]
    for pool in TEST_POOL_CANDIDATES:
        if not any(ipaddress.ip_network(pool).overlaps(subnet) for subnet in taken):
            return pool
    raise RuntimeError("no free /16 left for test tenant networks")


@dataclass
class Sandbox:
    gateway_name: str
    candle_volume: str
    # Carried by everything the sandbox's runner creates; its reconciler sees nothing else.
    labels: dict[str, str]
    # The tenants whose jobs and bots the sandbox's worker runs, and whose leftovers
    # (cgroups) it removes at the end.
    tenants: set[str] = field(default_factory=set)
    # The gateway's relay to bots' APIs, as the portal reaches it (FTA_BOT_RELAY_URL).
    relay_url: str = ""
    # The worker's measure of the tenant disks, now rather than at its next round.
    measure_disks: Callable[[], None] = lambda: None

    def forget_tenant(self, tenant_id: str) -> None:
        """Hands the tenant to the sandbox: its worker serves it, and cleans up after it."""
        self.tenants.add(tenant_id)


def _wait_gateway(engine: docker.DockerClient, name: str) -> str:
    """Waits for the gateway's health check to answer; its address."""
    container = engine.containers.get(name)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        container.reload()
        networks = container.attrs["NetworkSettings"]["Networks"]
        address = next((n["IPAddress"] for n in networks.values() if n["IPAddress"]), None)
        if address:
            try:
                response = httpx.get(f"http://{address}:{GATEWAY_PORT}/healthz")
                if response.status_code == 200:
                    return str(address)
            except httpx.HTTPError:
                pass
        if container.status == "exited":
            raise RuntimeError(f"gateway exited: {container.logs().decode()[-2000:]}")
        time.sleep(0.5)
    raise RuntimeError("the market-data gateway did not answer within 60 s")


@contextmanager
def running_sandbox(proxy_url: str) -> Iterator[Sandbox]:
    """Starts a gateway and a worker (in a thread) configured for tests; removes all after."""
    from fta.db import get_engine, get_sessionmaker
    from fta.runtime import DockerJobRunner
    from fta.settings import get_settings
    from tests.support.scoped_worker import ScopedWorker

    engine = local_docker()
    resources = DockerResources(engine)
    sandbox = Sandbox(
        gateway_name=GATEWAY_CONTAINER,
        candle_volume=f"fta-candles-test-{resources.scope}",
        labels=resources.labels,
    )
    worker = None
    thread = None
    try:
        control = engine.networks.create(
            f"fta-test-control-{resources.scope}", labels=resources.labels
        )
        resources.add_network(control.name)
        pool = _free_pool(engine)
        relay_key = os.environ.get("FTA_BOT_RELAY_KEY") or secrets.token_hex(32)
        resources.run(
            APP_IMAGE,
            ["fta", "gateway"],
            name=sandbox.gateway_name,
            network=control.name,
            environment={
                "FTA_MODE": "test",
                "FTA_MARKET_DATA_MODE": "replay",
                "FTA_GATEWAY_PORT": str(GATEWAY_PORT),
                "FTA_BOT_RELAY_KEY": relay_key,
                "FTA_BOT_RELAY_PORT": str(RELAY_PORT),
                "FTA_TENANT_SUBNET_POOL": pool,
            },
            read_only=True,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
        )
        gateway_ip = _wait_gateway(engine, sandbox.gateway_name)
        sandbox.relay_url = f"http://{gateway_ip}:{RELAY_PORT}"
        os.environ.update(
            FTA_DOCKER_HOST=proxy_url,
            FTA_GATEWAY_CONTAINER=sandbox.gateway_name,
            FTA_GATEWAY_PORT=str(GATEWAY_PORT),
            # This worker runs on the host: the gateway's name resolves on Docker's networks.
            FTA_GATEWAY_URL=f"http://{gateway_ip}:{GATEWAY_PORT}",
            FTA_BOT_RELAY_KEY=relay_key,
            FTA_BOT_RELAY_URL=sandbox.relay_url,
            FTA_CANDLE_VOLUME=sandbox.candle_volume,
            FTA_TENANT_SUBNET_POOL=pool,
            FTA_WORKER_POLL_SECONDS="0.5",
            FTA_BOT_CONVERGE_SECONDS="1",
            FTA_BOT_REPORT_SECONDS="3",
            FTA_BOT_STOP_TIMEOUT_SECONDS="10",
            # Reconciling at start only: tests that plant orphans reconcile explicitly.
            FTA_RECONCILE_INTERVAL_SECONDS="86400",
        )
        for cached in (get_settings, get_engine, get_sessionmaker):
            cached.cache_clear()
        settings = get_settings()
        # The labels keep this worker to its own containers, networks and volumes, and let
        # the tracker remove them all afterwards.
        runner = DockerJobRunner(settings, extra_labels=sandbox.labels)
        # It keeps to the sandbox's tenants' jobs and bots: other tests play the worker's
        # part for their own in the same database.
        worker = ScopedWorker(runner, settings, max_parallel=2, tenants=sandbox.tenants)
        sandbox.measure_disks = worker.measure_disks
        thread = threading.Thread(target=worker.run_forever, name="worker", daemon=True)
        thread.start()
        yield sandbox
    finally:
        if worker is not None and thread is not None:
            worker.stopping.set()
            thread.join(timeout=120)
        # Containers go first (the gateway among them), then the networks they were on.
        for tenant_id in sandbox.tenants:
            resources.add_tenant_cgroups("fta", tenant_id)
        resources.cleanup()
        engine.close()
