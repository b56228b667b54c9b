"""The socket proxy: the worker's calls pass, everything else is refused."""

from __future__ import annotations

import json
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from docker.errors import APIError, NotFound

from fta.runtime import ContainerSpec, DockerJobRunner
from fta.runtime.cgroup import cgroup_parent
from fta.runtime.spec import LABEL_INSTANCE, container_create_body
from tests.support.docker_resources import (
    API_VERSION,
    BASE_IMAGE,
    TEST_INSTANCE,
    DockerResources,
    random_tenant_id,
)
from tests.support.socket_proxy import (
    GATEWAY_CONTAINER,
    TEST_CGROUP_ROOT,
    StandinWorld,
    http_url,
    running_socket_proxy,
    spec_with,
)

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]


def test_worker_calls_pass_through_the_proxy(
    proxied_job_runner: DockerJobRunner,
    proxied_tenant: ContainerSpec,
    docker_resources: DockerResources,
) -> None:
    spec = spec_with(
        proxied_tenant,
        command=["bash", "-c", "echo out-line; echo err-line >&2; sleep 1; exit 3"],
        env={"FTA_BUNDLE_0": "payload"},
    )
    container_id = proxied_job_runner.create(spec)
    assert container_id in {c.id for c in proxied_job_runner.list_managed()}
    proxied_job_runner.start(container_id)
    assert proxied_job_runner.read_usage(container_id).memory_max_bytes > 0
    lines = list(proxied_job_runner.follow_logs(container_id))
    assert sorted(lines) == ["err-line", "out-line"]
    status = proxied_job_runner.wait(container_id, timeout_s=30)
    assert status.exit_code == 3
    assert status.oom_killed is False
    assert status.started_at is not None and status.finished_at is not None
    assert status.finished_at >= status.started_at
    proxied_job_runner.kill(container_id)  # not running any more: a no-op
    proxied_job_runner.remove(container_id)
    proxied_job_runner.remove(container_id)  # idempotent
    with pytest.raises(NotFound):
        docker_resources.client.api.inspect_container(container_id)


@pytest.fixture
def idle_container(docker_resources: DockerResources) -> str:
    """A created, never started container, as the target of refused calls."""
    container = docker_resources.client.api.create_container(
        BASE_IMAGE, ["true"], labels=docker_resources.labels
    )
    return docker_resources.add_container(container["Id"])


# A filter that matches nothing: should a prune ever pass, it removes nothing.
NOTHING = '{"label":["fta.test.never=1"]}'

FORBIDDEN = [
    ("POST", "/containers/{id}/exec", {"Cmd": ["id"]}),
    ("POST", "/containers/{id}/attach", None),
    ("GET", "/containers/{id}/archive?path=/etc", None),
    ("PUT", "/containers/{id}/archive?path=/tmp", None),
    ("HEAD", "/containers/{id}/archive?path=/etc", None),
    ("GET", "/containers/{id}/export", None),
    ("POST", "/containers/{id}/update", {"Memory": 1 << 30}),
    ("POST", "/containers/{id}/pause", None),
    ("POST", "/containers/{id}/rename?name=x", None),
    ("GET", "/containers/{id}/top", None),
    ("GET", "/containers/{id}/changes", None),
    ("POST", "/commit?container=fta-test-nonexistent&repo=fta-test-never", None),
    ("POST", "/build", None),
    ("POST", "/images/create?fromImage=fta-test-nonexistent&tag=never", None),
    ("GET", "/images/json", None),
    ("DELETE", "/images/fta-test-nonexistent:never", None),
    ("POST", "/images/load", None),
    ("GET", "/swarm", None),
    ("GET", "/services", None),
    ("GET", "/secrets", None),
    ("GET", "/nodes", None),
    ("GET", "/plugins", None),
    ("POST", "/volumes/prune?filters=" + NOTHING, None),
    ("POST", "/containers/prune?filters=" + NOTHING, None),
    ("POST", "/networks/prune?filters=" + NOTHING, None),
    ("POST", "/images/prune?filters=" + NOTHING, None),
    ("POST", "/build/prune?filters=" + NOTHING, None),
    ("GET", "/system/df", None),
    ("GET", "/events?until=1", None),
    ("POST", "/session", None),
    ("POST", "/grpc", None),
    ("GET", "/version", None),
    ("GET", "/networks", None),
    ("GET", "/networks/bridge", None),
    ("POST", "/networks/bridge/connect", {"Container": GATEWAY_CONTAINER}),
    ("DELETE", "/networks/bridge", None),
    ("GET", "/volumes", None),
    ("DELETE", "/volumes/fta-candles", None),
    ("DELETE", "/volumes/fta-data-abc?force=1", None),
    ("DELETE", "/volumes/fta-data-abc/../fta-candles", None),
    ("GET", "/volumes/other", None),
    ("POST", "/containers/{id}/start/../exec", {"Cmd": ["id"]}),
    ("GET", "//containers/json", None),
    ("GET", "/containers/%2e%2e/json", None),
]


@pytest.mark.parametrize(("method", "path", "body"), FORBIDDEN, ids=lambda v: str(v)[:40])
def test_forbidden_calls_get_403(
    docker_proxy_url: str,
    idle_container: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    target = path.replace("{id}", idle_container)
    url = f"{http_url(docker_proxy_url)}/v{API_VERSION}{target}"
    response = requests.request(method, url, json=body, timeout=10)
    assert response.status_code == 403, response.text


def test_unversioned_paths_are_filtered_too(docker_proxy_url: str, idle_container: str) -> None:
    base = http_url(docker_proxy_url)
    assert requests.get(f"{base}/info", timeout=10).status_code == 200
    exec_url = f"{base}/containers/{idle_container}/exec"
    assert requests.post(exec_url, json={"Cmd": ["id"]}, timeout=10).status_code == 403


def test_refused_creates(
    proxied_job_runner: DockerJobRunner,
    proxied_tenant: ContainerSpec,
    standin_world: StandinWorld,
    docker_resources: DockerResources,
) -> None:
    base = f"{http_url(standin_world.proxy_url)}/v{API_VERSION}"
    tenant = proxied_tenant.tenant_id
    driver = docker_resources.client.api.info()["CgroupDriver"]
    docker_resources.add_tenant_cgroups(TEST_CGROUP_ROOT, tenant)
    body = container_create_body(
        proxied_tenant,
        cgroup_parent=cgroup_parent(tenant, driver=driver, root=TEST_CGROUP_ROOT),
        extra_labels={**docker_resources.labels, LABEL_INSTANCE: TEST_INSTANCE},
    )
    create_url = f"{base}/containers/create?name=fta-{tenant}-job-1-{secrets.token_hex(3)}"

    def create(changed: dict[str, Any], raw: str | None = None) -> int:
        data = raw if raw is not None else json.dumps(changed)
        headers = {"Content-Type": "application/json"}
        return requests.post(create_url, data=data, headers=headers, timeout=10).status_code

    def host(**changes: Any) -> dict[str, Any]:
        return {**body, "HostConfig": {**body["HostConfig"], **changes}}

    assert create(host(Privileged=True)) == 403
    assert create(host(Binds=["/:/host"])) == 403
    assert create(host(Binds=["/var/run/docker.sock:/var/run/docker.sock"])) == 403
    bind_mount = {"Type": "bind", "Source": "/", "Target": "/host"}
    assert create(host(Mounts=[*body["HostConfig"]["Mounts"], bind_mount])) == 403
    assert create(host(CapAdd=["SYS_ADMIN"])) == 403
    assert create(host(SecurityOpt=["no-new-privileges", "seccomp=unconfined"])) == 403
    assert create(host(NetworkMode="host")) == 403
    assert create(host(NetworkMode="bridge")) == 403
    assert create(host(NetworkMode=f"container:{GATEWAY_CONTAINER}")) == 403
    assert create(host(PidMode="host")) == 403
    assert create(host(ReadonlyRootfs=False)) == 403
    assert create({**body, "User": "0"}) == 403
    assert create(host(PortBindings={"80/tcp": [{"HostPort": "8080"}]})) == 403
    escaped = json.dumps(host(Privileged=False)).replace(
        '"Privileged": false', '"Privil\\u0065ged": true'
    )
    assert create({}, raw=escaped) == 403
    shouted = json.dumps(host(Privileged=False)).replace(
        '"Privileged": false', '"PRIVILEGED" : true'
    )
    assert create({}, raw=shouted) == 403
    assert create({**body, "Env": ["PAD=" + "x" * 1_000_001]}) == 413

    # The same body unchanged passes: the refusals above are the body checks' doing.
    container_id = docker_resources.add_container(
        requests.post(create_url, json=body, timeout=10).json()["Id"]
    )
    assert (
        docker_resources.client.api.inspect_container(container_id)["HostConfig"]["Privileged"]
        is False
    )
    created = docker_resources.client.api.containers(
        all=True, filters={"label": [f"fta.test.scope={docker_resources.scope}"]}
    )
    assert [c["Id"] for c in created] == [container_id]

    # Through the runner, a job on the default bridge never reaches the engine.
    with pytest.raises(APIError) as refused:
        proxied_job_runner.create(
            spec_with(proxied_tenant, network="bridge", extra_hosts={}, dns=[])
        )
    assert refused.value.status_code == 403


def test_refused_network_and_volume_creates(docker_proxy_url: str) -> None:
    base = f"{http_url(docker_proxy_url)}/v{API_VERSION}"
    name = f"fta-client-{random_tenant_id()}"
    good_network = {
        "Name": name,
        "Driver": "bridge",
        "Internal": True,
        "Options": {"com.docker.network.bridge.name": "ftab-x"},
    }
    refused_networks = [
        {**good_network, "Internal": False},
        {key: value for key, value in good_network.items() if key != "Internal"},
        {**good_network, "Driver": "macvlan"},
        {**good_network, "Options": {"com.docker.network.bridge.name": "docker0"}},
        {**good_network, "Name": "fta-control"},
    ]
    for network in refused_networks:
        response = requests.post(f"{base}/networks/create", json=network, timeout=10)
        assert response.status_code == 403, network
    volume = {"Name": "fta-data-never", "Driver": "local"}
    refused_volumes = [
        volume,  # a tenant data volume is always the bind of its size-capped disk
        {**volume, "DriverOpts": {"type": "none", "o": "bind", "device": "/"}},
        {**volume, "Driver": "nfs"},
        {**volume, "Name": "other"},
    ]
    for body in refused_volumes:
        assert requests.post(f"{base}/volumes/create", json=body, timeout=10).status_code == 403
    connect = f"{base}/networks/{name}/connect"
    assert requests.post(connect, json={"Container": "intruder"}, timeout=10).status_code == 403


def test_only_this_installations_tenant_data_volumes_are_removed(
    docker_proxy_url: str, docker_resources: DockerResources
) -> None:
    """An erased account's data volume goes; another installation's, one made past the proxy
    and any volume that is no tenant's data stay."""
    base = f"{http_url(docker_proxy_url)}/v{API_VERSION}"
    ours = {LABEL_INSTANCE: TEST_INSTANCE, "fta.managed": "1", **docker_resources.labels}
    made = {
        "ours": (f"fta-data-{random_tenant_id()}", ours),
        "unlabelled": (f"fta-data-{random_tenant_id()}", docker_resources.labels),
        "elsewhere": (
            f"fta-data-{random_tenant_id()}",
            {**ours, LABEL_INSTANCE: "another-installation"},
        ),
        "shared": (f"fta-candles-{random_tenant_id()}", ours),
    }
    for name, labels in made.values():
        docker_resources.client.volumes.create(name, labels=labels)
        docker_resources.add_volume(name)
    for kind in ("unlabelled", "elsewhere", "shared"):
        name = made[kind][0]
        refused = requests.delete(f"{base}/volumes/{name}", timeout=10)
        assert refused.status_code == 403, (kind, refused.text)
        assert docker_resources.client.volumes.get(name).name == name
    name = made["ours"][0]
    assert requests.delete(f"{base}/volumes/{name}?force=1", timeout=10).status_code == 403
    assert requests.delete(f"{base}/volumes/{name}", timeout=10).status_code == 204
    with pytest.raises(NotFound):
        docker_resources.client.volumes.get(name)
    assert requests.delete(f"{base}/volumes/{name}", timeout=10).status_code == 404


def test_proxy_runs_unprivileged(docker_resources: DockerResources) -> None:
    with running_socket_proxy(docker_resources, gateway_container=GATEWAY_CONTAINER):
        (proxy,) = docker_resources.client.api.containers(
            filters={"label": [f"fta.test.scope={docker_resources.scope}"]}
        )
        inspect = docker_resources.client.api.inspect_container(proxy["Id"])
        status = Path(f"/proc/{inspect['State']['Pid']}/status").read_text()
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    assert fields["Uid"].split()[0] != "0"
    assert int(fields["CapEff"], 16) == 0
    assert fields["NoNewPrivs"].strip() == "1"
    assert inspect["HostConfig"]["ReadonlyRootfs"] is True


def test_long_waits_and_quiet_log_streams_pass(
    proxied_job_runner: DockerJobRunner,
    proxied_tenant: ContainerSpec,
    standin_world: StandinWorld,
) -> None:
    """Both outlast the proxy's default 60 s server timeout in one request each."""
    runner = proxied_job_runner
    spec = spec_with(proxied_tenant, command=["bash", "-c", "sleep 65; echo done"])
    container_id = runner.create(spec)
    runner.start(container_id)
    url = f"{http_url(standin_world.proxy_url)}/v{API_VERSION}/containers/{container_id}/wait"
    with ThreadPoolExecutor(max_workers=1) as pool:
        waited = pool.submit(requests.post, url, timeout=120)
        assert list(runner.follow_logs(container_id)) == ["done"]
        response = waited.result(timeout=120)
    assert response.status_code == 200
    assert response.json()["StatusCode"] == 0
    runner.remove(container_id)
