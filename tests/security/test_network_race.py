"""A new tenant's first jobs, started at once, share one network: the worker's threads no
longer race on creating it.

The attack as it was done: a new tenant submitted two jobs at once; both threads of the
worker created the tenant's network, and the one that lost got the engine's 403 for the
address pool the winner held before the network showed, so its job failed. Through the real
socket proxy and engine.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from fta.runtime import DockerJobRunner
from tests.support.docker_resources import DockerResources, free_subnet_index, random_tenant_id
from tests.support.socket_proxy import STANDIN_GATEWAY, TEST_DISK_BYTES, StandinWorld

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]


def test_a_new_tenants_first_concurrent_jobs_share_one_network_and_volume(
    standin_world: StandinWorld, docker_resources: DockerResources
) -> None:
    """Two jobs of a tenant that has never run anything start at once, each in its own
    thread and runner (as the worker's job threads do): both get the same network, volume and
    gateway attachment, and neither fails."""
    settings = standin_world.settings()
    tenant_id = random_tenant_id()
    index = free_subnet_index(
        docker_resources.client, settings.tenant_subnet_pool, settings.tenant_subnet_prefix
    )
    docker_resources.add_network(f"fta-client-{tenant_id}")
    docker_resources.add_volume(f"fta-data-{tenant_id}")
    start = threading.Barrier(4)

    def set_up() -> tuple[str, str]:
        runner = DockerJobRunner(settings, extra_labels=docker_resources.labels)
        try:
            start.wait(timeout=30)
            network = runner.ensure_tenant_network(tenant_id, index)
            volume = runner.ensure_tenant_volume(tenant_id, TEST_DISK_BYTES)
            return network.name, volume
        finally:
            runner.close()

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = [f.result(timeout=120) for f in [pool.submit(set_up) for _ in range(4)]]
    assert set(results) == {(f"fta-client-{tenant_id}", f"fta-data-{tenant_id}")}
    api = docker_resources.client.api
    assert len(api.networks(names=[f"fta-client-{tenant_id}"])) == 1
    attached = api.inspect_container(STANDIN_GATEWAY)["NetworkSettings"]["Networks"]
    assert f"fta-client-{tenant_id}" in attached
