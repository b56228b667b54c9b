"""Attacks on the socket proxy as a compromised worker would make them, through the real proxy
container in front of the real engine.

The engine decodes request bodies with Go's `encoding/json`: struct fields match keys
case-insensitively with Unicode simple folding (`ſ` U+017F folds to `s`, the Kelvin sign
U+212A to `k`) and the last of duplicate keys wins. A filter that reads raw bytes cannot follow
that; the proxy decodes every body itself, refuses any key it does not know exactly, and sends
the engine its own canonical encoding. It also keeps to this installation's objects: nothing
else on the engine (the portal's or Postgres's containers, with their secrets in their
environment) can be inspected, read, stopped or removed through it.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from docker.errors import NotFound

from fta.runtime import ContainerRuntimeError, ContainerSpec, DockerJobRunner
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
    STANDIN_GATEWAY,
    TEST_CGROUP_ROOT,
    StandinWorld,
    http_url,
)

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]

LONG_S = "\u017f"  # ſ, folds to s
KELVIN = "\u212a"  # K, folds to k
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def host_folder(tmp_path: Path) -> Path:
    """A folder of the host that no container may ever see."""
    folder = tmp_path / "host-only"
    folder.mkdir()
    (folder / "canary").write_text(secrets.token_hex(8))
    return folder


@pytest.fixture
def api(standin_world: StandinWorld) -> str:
    return f"{http_url(standin_world.proxy_url)}/v{API_VERSION}"


@pytest.fixture
def good_body(proxied_tenant: ContainerSpec, docker_resources: DockerResources) -> dict[str, Any]:
    """The create body the worker sends for a tenant's container (this installation's)."""
    info = docker_resources.client.api.info()
    parent = cgroup_parent(
        proxied_tenant.tenant_id, driver=info["CgroupDriver"], root=TEST_CGROUP_ROOT
    )
    docker_resources.add_tenant_cgroups(TEST_CGROUP_ROOT, proxied_tenant.tenant_id)
    labels = {**docker_resources.labels, LABEL_INSTANCE: TEST_INSTANCE}
    return container_create_body(proxied_tenant, cgroup_parent=parent, extra_labels=labels)


def _create_url(api: str, body: dict[str, Any]) -> str:
    """The create URL with the container name the worker would give (fta.runtime)."""
    labels = body["Labels"]
    owner = f"{labels['fta.tenant']}-{labels['fta.kind']}-{labels['fta.job']}"
    name = f"fta-{owner}-{secrets.token_hex(3)}"
    return f"{api}/containers/create?name={name}"


def _post_raw(url: str, body: str) -> requests.Response:
    """Sends `body` as raw UTF-8 bytes, exactly as written (no escaping of non-ASCII)."""
    return requests.post(url, data=body.encode(), headers=JSON, timeout=10)


def _with_member(body: dict[str, Any], path: tuple[str, ...], key: str, value: Any) -> str:
    """`body` as JSON with one more member `key` (written raw) at the end of the object at
    `path`: after the genuine member it folds onto, so Go's decoder would keep it."""
    target = body
    for step in path:
        target = target[step]
    marker = "__fta_injected__"
    target[marker] = value
    try:
        text = json.dumps(body)
    finally:
        del target[marker]
    return text.replace(json.dumps(marker), json.dumps(key, ensure_ascii=False))


def _scope_containers(docker_resources: DockerResources) -> list[dict[str, Any]]:
    selector = {"label": [f"fta.test.scope={docker_resources.scope}"]}
    found: list[dict[str, Any]] = docker_resources.client.api.containers(all=True, filters=selector)
    return found


def _container_attacks(host_folder: Path) -> list[tuple[tuple[str, ...], str, Any]]:
    bind = {"Type": "bind", "Source": str(host_folder), "Target": "/host"}
    return [
        (("HostConfig",), f"Bind{LONG_S}", [f"{host_folder}:/host"]),
        ((), f"U{LONG_S}er", "0"),
        ((), "USER", "0"),
        (("HostConfig",), f"Mount{LONG_S}", [bind]),
        (("HostConfig",), f"{LONG_S}ecurityOpt", ["seccomp=unconfined"]),
        (("HostConfig",), f"Networ{KELVIN}Mode", "host"),
        (("HostConfig",), "privileged", True),
        (("HostConfig",), f"CapDrop{LONG_S}", []),
    ]


@pytest.mark.parametrize("attack", range(8), ids=lambda i: f"attack-{i}")
def test_folded_and_duplicate_keys_in_a_create_are_refused(
    api: str,
    good_body: dict[str, Any],
    docker_resources: DockerResources,
    host_folder: Path,
    attack: int,
) -> None:
    path, key, value = _container_attacks(host_folder)[attack]
    body = _with_member(good_body, path, key, value)
    response = _post_raw(_create_url(api, good_body), body)
    created = _scope_containers(docker_resources)
    # Should the engine have taken it, say what it made.
    made = [docker_resources.client.api.inspect_container(c["Id"])["HostConfig"] for c in created]
    assert response.status_code == 403, (response.status_code, made)
    assert created == []
    # Refused for the key itself, not for anything else in the body.
    assert repr(key) in response.json()["message"]


def test_the_unchanged_body_is_created_as_sent(
    api: str, good_body: dict[str, Any], docker_resources: DockerResources
) -> None:
    """The refusals above come from the keys they add, not from the body around them."""
    response = requests.post(_create_url(api, good_body), json=good_body, timeout=10)
    assert response.status_code == 201, response.text
    container_id = docker_resources.add_container(response.json()["Id"])
    inspect = docker_resources.client.api.inspect_container(container_id)
    assert inspect["Config"]["User"] == "10000:10000"
    assert inspect["HostConfig"]["Binds"] in (None, [])
    assert inspect["HostConfig"]["SecurityOpt"] == good_body["HostConfig"]["SecurityOpt"]


@pytest.mark.parametrize(
    "body",
    [
        '{"Image": "x", "Image": "y"}',  # an exact duplicate
        '{"Image": NaN}',
        '["not", "an", "object"]',
        '{"Image": "x"} trailing',
        '{"Image": "x" /* comment */}',
        "\ufeff{}",  # a byte order mark
    ],
)
def test_bodies_that_are_not_plain_json_objects_are_refused(
    api: str, good_body: dict[str, Any], body: str
) -> None:
    assert _post_raw(_create_url(api, good_body), body).status_code in (400, 403)


def test_invalid_utf8_is_refused(api: str, good_body: dict[str, Any]) -> None:
    raw = b'{"Image": "\xff"}'
    response = requests.post(_create_url(api, good_body), data=raw, headers=JSON, timeout=10)
    assert response.status_code in (400, 403)


def test_a_volume_cannot_bind_a_host_folder_through_a_folded_key(
    api: str, docker_resources: DockerResources, host_folder: Path
) -> None:
    name = docker_resources.add_volume(f"fta-cache-{random_tenant_id()}")
    options = {"type": "none", "o": "bind", "device": str(host_folder)}
    labels = {**docker_resources.labels, LABEL_INSTANCE: TEST_INSTANCE, "fta.managed": "1"}
    body = json.dumps({"Name": name, "Driver": "local", "Labels": labels})[:-1]
    raw = body + f', "DriverOpt{LONG_S}": ' + json.dumps(options) + "}"
    response = _post_raw(f"{api}/volumes/create", raw)
    assert response.status_code in (400, 403), response.text
    volumes = docker_resources.client.api.volumes(filters={"name": name}).get("Volumes") or []
    assert [v for v in volumes if v["Name"] == name] == []


def test_a_network_create_with_a_folded_key_is_refused(
    api: str, docker_resources: DockerResources
) -> None:
    tenant = random_tenant_id()
    name = docker_resources.add_network(f"fta-client-{tenant}")
    labels = {**docker_resources.labels, LABEL_INSTANCE: TEST_INSTANCE}
    body = {
        "Name": name,
        "Driver": "bridge",
        "Options": {"com.docker.network.bridge.name": f"ftat-{tenant}"},
        "Internal": True,
        "Labels": labels,
    }
    raw = _with_member(body, (), f"Interna{chr(0x13F)}", False)  # a letter outside ASCII
    assert _post_raw(f"{api}/networks/create", raw).status_code in (400, 403)
    raw = _with_member(body, (), f"Option{LONG_S}", {"com.docker.network.bridge.name": "x0"})
    assert _post_raw(f"{api}/networks/create", raw).status_code in (400, 403)


@pytest.fixture
def foreign_container(docker_resources: DockerResources) -> Iterator[str]:
    """A container of the engine that is not this installation's job: like the portal, with a
    secret in its environment."""
    canary = secrets.token_hex(16)
    container = docker_resources.run(
        BASE_IMAGE,
        ["sleep", "300"],
        environment={"FTA_SECRET_KEY": canary},
        name=f"fta-test-foreign-{docker_resources.scope}",
    )
    yield container.id


FOREIGN_CALLS = [
    ("GET", "/containers/{id}/json"),
    ("GET", "/containers/{name}/json"),
    ("GET", "/containers/{id}/logs?stdout=1&stderr=1"),
    ("GET", "/containers/{id}/stats?stream=0"),
    ("POST", "/containers/{id}/wait"),
    ("POST", "/containers/{id}/kill"),
    ("POST", "/containers/{id}/stop?t=1"),
    ("POST", "/containers/{id}/start"),
    ("DELETE", "/containers/{id}?force=1"),
]


@pytest.mark.parametrize(("method", "path"), FOREIGN_CALLS)
def test_containers_of_other_installations_are_out_of_reach(
    api: str,
    docker_resources: DockerResources,
    foreign_container: str,
    method: str,
    path: str,
) -> None:
    name = f"fta-test-foreign-{docker_resources.scope}"
    url = api + path.replace("{id}", foreign_container).replace("{name}", name)
    response = requests.request(method, url, timeout=10)
    assert response.status_code == 403, response.text
    state = docker_resources.client.api.inspect_container(foreign_container)["State"]
    assert state["Running"] is True


def test_the_container_list_shows_this_installation_only(
    api: str, foreign_container: str, docker_resources: DockerResources
) -> None:
    everything = requests.get(f"{api}/containers/json?all=1", timeout=10)
    assert everything.status_code == 200
    asked = json.dumps({"label": [f"fta.test.scope={docker_resources.scope}"]})
    by_label = requests.get(f"{api}/containers/json", params={"filters": asked}, timeout=10)
    assert by_label.status_code == 200
    for listing in (everything.json(), by_label.json()):
        assert foreign_container not in {c["Id"] for c in listing}
        assert all((c.get("Labels") or {}).get(LABEL_INSTANCE) == TEST_INSTANCE for c in listing)


def test_networks_and_volumes_of_other_installations_are_out_of_reach(
    api: str, docker_resources: DockerResources
) -> None:
    tenant = random_tenant_id()
    network = docker_resources.client.api.create_network(
        f"fta-client-{tenant}", labels=docker_resources.labels
    )
    docker_resources.add_network(f"fta-client-{tenant}")
    volume = docker_resources.client.api.create_volume(
        f"fta-data-{tenant}", labels=docker_resources.labels
    )
    docker_resources.add_volume(volume["Name"])
    assert requests.get(f"{api}/networks/fta-client-{tenant}", timeout=10).status_code == 403
    connect = f"{api}/networks/fta-client-{tenant}/connect"
    assert requests.post(connect, json={"Container": STANDIN_GATEWAY}, timeout=10).status_code == (
        403
    )
    attached = docker_resources.client.api.inspect_network(network["Id"]).get("Containers")
    assert not attached
    assert requests.get(f"{api}/volumes/fta-data-{tenant}", timeout=10).status_code == 403
    # Nor removed, nor anything on it disconnected: the other installation's gateway included.
    docker_resources.client.api.connect_container_to_network(STANDIN_GATEWAY, network["Id"])
    disconnect = f"{api}/networks/fta-client-{tenant}/disconnect"
    refused = requests.post(disconnect, json={"Container": STANDIN_GATEWAY}, timeout=10)
    assert refused.status_code == 403, refused.text
    assert "not this installation's" in refused.json()["message"]
    refused = requests.delete(f"{api}/networks/fta-client-{tenant}", timeout=10)
    assert refused.status_code == 403, refused.text
    attached = docker_resources.client.api.inspect_network(network["Id"]).get("Containers")
    assert len(attached) == 1
    docker_resources.client.api.disconnect_container_from_network(STANDIN_GATEWAY, network["Id"])


def test_only_the_gateway_leaves_a_tenant_network_and_the_network_goes_through_the_runner(
    api: str,
    proxied_tenant: ContainerSpec,
    proxied_job_runner: DockerJobRunner,
    docker_resources: DockerResources,
    foreign_container: str,
) -> None:
    network = proxied_tenant.network
    engine = docker_resources.client.api
    engine.connect_container_to_network(foreign_container, network)
    for body in ({"Container": foreign_container}, {"Container": STANDIN_GATEWAY, "Force": True}):
        response = requests.post(f"{api}/networks/{network}/disconnect", json=body, timeout=10)
        assert response.status_code == 403, response.text
    attached = {
        c["Name"] for c in (engine.inspect_network(network).get("Containers") or {}).values()
    }
    assert attached == {STANDIN_GATEWAY, f"fta-test-foreign-{docker_resources.scope}"}
    # The engine keeps a network that a container is still on.
    with pytest.raises(ContainerRuntimeError):
        proxied_job_runner.remove_tenant_network(proxied_tenant.tenant_id)
    engine.disconnect_container_from_network(foreign_container, network)
    proxied_job_runner.remove_tenant_network(proxied_tenant.tenant_id)
    with pytest.raises(NotFound):
        engine.inspect_network(network)
    gateway = engine.inspect_container(STANDIN_GATEWAY)["NetworkSettings"]["Networks"]
    assert network not in gateway
    # Removing it again is a no-op.
    proxied_job_runner.remove_tenant_network(proxied_tenant.tenant_id)


def test_the_gateway_may_be_inspected_but_not_driven(api: str) -> None:
    assert requests.get(f"{api}/containers/{STANDIN_GATEWAY}/json", timeout=10).status_code == 200
    for method, action in (("POST", "kill"), ("POST", "stop"), ("GET", "logs?stdout=1")):
        url = f"{api}/containers/{STANDIN_GATEWAY}/{action}"
        assert requests.request(method, url, timeout=10).status_code == 403
    assert requests.delete(f"{api}/containers/{STANDIN_GATEWAY}", timeout=10).status_code == 403
