"""The hand-off exec through the real proxy and engine: on a warm job container (labelled
fta.handoff=1) the worker's exec passes; on any other container, and for any other exec,
the proxy refuses."""

from __future__ import annotations

import io
import secrets
import time
from collections.abc import Iterator
from typing import Any

import docker
import pytest
import requests
from docker.errors import APIError

from fta.runtime import ContainerSpec
from fta.runtime.cgroup import cgroup_parent
from fta.runtime.spec import HANDOFF_COMMAND, JOB_USER, LABEL_INSTANCE, container_create_body
from tests.support.docker_resources import (
    API_VERSION,
    BASE_IMAGE,
    TEST_INSTANCE,
    DockerResources,
)
from tests.support.socket_proxy import TEST_CGROUP_ROOT, StandinWorld, http_url, spec_with

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]

JOB_IMAGE = "fta/freqtrade:2026.9"
# Not a bundle the entry could decode: the hand-off ends without a job ever running.
BUNDLE = {"FTA_BUNDLE_0": "not-a-bundle"}


@pytest.fixture
def proxy_api(standin_world: StandinWorld) -> Iterator[docker.APIClient]:
    """docker-py's low-level client through the proxy, as the worker's."""
    api = docker.APIClient(base_url=standin_world.proxy_url, version=API_VERSION)
    yield api
    api.close()


@pytest.fixture
def sleeping_job_image(docker_resources: DockerResources) -> str:
    """The job image, but sleeping rather than running its entry: a container that waits."""
    tag = docker_resources.add_image(f"fta-test/sleeping-job:{docker_resources.scope}")
    dockerfile = f"FROM {JOB_IMAGE}\nENTRYPOINT []\n".encode()
    docker_resources.client.images.build(fileobj=io.BytesIO(dockerfile), tag=tag, rm=True)
    return tag


def _running_job_container(
    standin_world: StandinWorld,
    proxied_tenant: ContainerSpec,
    docker_resources: DockerResources,
    image: str,
    labels: dict[str, str],
) -> str:
    """A hardened job container, created and started through the proxy."""
    base = f"{http_url(standin_world.proxy_url)}/v{API_VERSION}"
    tenant = proxied_tenant.tenant_id
    driver = docker_resources.client.api.info()["CgroupDriver"]
    body = container_create_body(
        spec_with(proxied_tenant, image=image, command=["sleep", "300"]),
        cgroup_parent=cgroup_parent(tenant, driver=driver, root=TEST_CGROUP_ROOT),
        extra_labels={**docker_resources.labels, LABEL_INSTANCE: TEST_INSTANCE, **labels},
    )
    name = f"fta-{tenant}-job-1-{secrets.token_hex(3)}"
    created = requests.post(f"{base}/containers/create?name={name}", json=body, timeout=30)
    assert created.status_code == 201, created.text
    container_id = docker_resources.add_container(created.json()["Id"])
    started = requests.post(f"{base}/containers/{container_id}/start", timeout=30)
    assert started.status_code == 204, started.text
    return container_id


def _hand_off(api: docker.APIClient, container_id: str) -> str:
    """The worker's exec_create, exactly."""
    created: dict[str, Any] = api.exec_create(
        container_id,
        list(HANDOFF_COMMAND),
        stdout=False,
        stderr=False,
        user=JOB_USER,
        environment=BUNDLE,
    )
    return str(created["Id"])


def _ended(api: docker.APIClient, exec_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while True:
        found: dict[str, Any] = api.exec_inspect(exec_id)
        if not found["Running"] and found["ExitCode"] is not None:
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.2)


def test_a_managed_container_that_waits_for_no_job_takes_no_exec(
    proxy_api: docker.APIClient,
    standin_world: StandinWorld,
    proxied_tenant: ContainerSpec,
    docker_resources: DockerResources,
    sleeping_job_image: str,
) -> None:
    container_id = _running_job_container(
        standin_world, proxied_tenant, docker_resources, sleeping_job_image, {}
    )
    with pytest.raises(APIError) as refused:
        _hand_off(proxy_api, container_id)
    assert refused.value.status_code == 403
    assert "fta.handoff=1" in str(refused.value)
    assert not docker_resources.client.api.inspect_container(container_id)["ExecIDs"]


def test_the_hand_off_runs_in_a_warm_container_and_nothing_else_does(
    proxy_api: docker.APIClient,
    standin_world: StandinWorld,
    proxied_tenant: ContainerSpec,
    docker_resources: DockerResources,
    sleeping_job_image: str,
) -> None:
    container_id = _running_job_container(
        standin_world, proxied_tenant, docker_resources, sleeping_job_image, {"fta.handoff": "1"}
    )
    exec_id = _hand_off(proxy_api, container_id)
    proxy_api.exec_start(exec_id, detach=True)
    ended = _ended(proxy_api, exec_id)
    assert ended["ContainerID"] == container_id
    assert isinstance(ended["ExitCode"], int)
    assert ended["ProcessConfig"]["user"] == JOB_USER
    assert ended["ProcessConfig"]["privileged"] is False
    with pytest.raises(APIError):
        proxy_api.exec_start(exec_id, detach=True)  # the engine's: an exec runs once

    # Anything but the worker's exec is refused before the engine sees it.
    for changes in (
        {"cmd": ["sh", "-c", "id"]},
        {"user": "0"},
        {"user": ""},
        {"privileged": True},
        {"tty": True},
        {"stdout": True},
        {"workdir": "/"},
        {"environment": {"LD_PRELOAD": "/tmp/x.so"}},
    ):
        arguments: dict[str, Any] = {
            "cmd": list(HANDOFF_COMMAND),
            "stdout": False,
            "stderr": False,
            "user": JOB_USER,
            "environment": BUNDLE,
            **changes,
        }
        with pytest.raises(APIError) as refused:
            proxy_api.exec_create(container_id, **arguments)
        assert refused.value.status_code == 403, changes

    # A start that would hijack the connection is refused; asked for by headers alone, the
    # start stays detached (the proxy sends the engine headers of its own).
    second = _hand_off(proxy_api, container_id)
    with pytest.raises(APIError) as refused:
        proxy_api.exec_start(second, detach=False)
    assert refused.value.status_code == 403
    started = requests.post(
        f"{http_url(standin_world.proxy_url)}/v{API_VERSION}/exec/{second}/start",
        json={"Detach": True, "Tty": False},
        headers={"Connection": "Upgrade", "Upgrade": "tcp"},
        timeout=30,
    )
    assert started.status_code == 200, started.text
    assert "upgrade" not in {key.lower() for key in started.headers}
    assert isinstance(_ended(proxy_api, second)["ExitCode"], int)

    # An exec made past the proxy, in that same warm container, is not started through it.
    engine = docker_resources.client.api
    foreign = engine.exec_create(container_id, ["id"], user=JOB_USER)["Id"]
    with pytest.raises(APIError) as refused:
        proxy_api.exec_start(foreign, detach=True)
    assert refused.value.status_code == 403
    assert engine.exec_inspect(foreign)["Running"] is False
    assert engine.exec_inspect(foreign)["ExitCode"] is None  # never started


def test_an_exec_of_another_container_is_out_of_reach(
    proxy_api: docker.APIClient, docker_resources: DockerResources
) -> None:
    engine = docker_resources.client.api
    other = docker_resources.run(BASE_IMAGE, ["sleep", "300"]).id
    foreign = engine.exec_create(other, ["id"])["Id"]
    for call in (
        lambda: proxy_api.exec_start(foreign, detach=True),
        lambda: proxy_api.exec_inspect(foreign),
    ):
        with pytest.raises(APIError) as refused:
            call()
        assert refused.value.status_code == 403
    assert engine.exec_inspect(foreign)["ExitCode"] is None  # never started
    with pytest.raises(APIError) as refused:
        proxy_api.exec_inspect("f" * 64)
    assert refused.value.status_code == 404
