"""The socket proxy's judgement, without an engine: what passes is exactly what the worker
sends (fta.runtime.spec), re-encoded; what the engine could read differently is refused."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

import pytest

from fta.runtime.spec import (
    LABEL_INSTANCE,
    ContainerSpec,
    Limits,
    Mount,
    container_create_body,
    tenant_volume_options,
)
from fta.socketproxy.config import ProxyConfig
from fta.socketproxy.errors import Refused
from fta.socketproxy.routes import judge

CONFIG = ProxyConfig(
    instance="prod",
    gateway_container="fta-market-data",
    bridge_prefix="ftab-",
    cgroup_root="fta",
    disk_root="/var/lib/fta/tenant-disks",
)
TENANT = "abcd2345"
CREATE = f"/v1.41/containers/create?name=fta-{TENANT}-job-7-0a1b2c"


def _body(**changes: Any) -> dict[str, Any]:
    spec = ContainerSpec(
        tenant_id=TENANT,
        owner_kind="job",
        owner_id="7",
        image="fta/freqtrade:2026.9",
        command=["fta-job", "--run"],
        env={"FTA_BUNDLE_0": "eyJ4IjogMX0="},
        limits=Limits(nano_cpus=10**9, memory_bytes=1 << 30, pids=256, tmpfs_bytes=64 << 20),
        mounts=[Mount(f"fta-data-{TENANT}", "/srv/data", read_only=False)],
        network=f"fta-client-{TENANT}",
        extra_hosts={"market-data": "10.210.0.2"},
        dns=["10.210.0.3"],
    )
    body = container_create_body(
        spec, cgroup_parent=f"/fta/{TENANT}", extra_labels={LABEL_INSTANCE: "prod"}
    )
    body["HostConfig"].update(changes)
    return body


def _judge_create(raw: str) -> bytes | None:
    return judge("POST", CREATE, raw.encode(), CONFIG).body


def test_the_workers_body_passes_and_is_re_encoded() -> None:
    body = _body()
    forwarded = _judge_create(json.dumps(body, indent=2))
    assert forwarded is not None
    assert json.loads(forwarded) == body
    assert forwarded.isascii() and b"\n" not in forwarded


@pytest.mark.parametrize(
    "key",
    ["Bind\u017f", "U\u017fer", "Networ\u212aMode", "USER", "user", "Privil\u0435ged"],
)
def test_keys_the_engine_would_fold_are_refused(key: str) -> None:
    raw = json.dumps(_body())[:-1] + ", " + json.dumps(key, ensure_ascii=False) + ': "0"}'
    with pytest.raises(Refused) as refused:
        _judge_create(raw)
    assert refused.value.status == 403
    assert repr(key) in refused.value.reason


def test_escaped_keys_are_judged_as_decoded() -> None:
    raw = json.dumps(_body()).replace('"Privileged": false', '"Privil\\u0065ged": true')
    with pytest.raises(Refused, match="Privileged"):
        _judge_create(raw)
    raw = json.dumps(_body())[:-1] + ', "\\u017fecurityOpt": []}'
    with pytest.raises(Refused, match="printable ASCII"):
        _judge_create(raw)


@pytest.mark.parametrize(
    "changes",
    [
        {"Privileged": True},
        {"Privileged": 0},
        {"ReadonlyRootfs": 1},
        {"Binds": ["/:/host"]},
        {"CapAdd": ["SYS_ADMIN"]},
        {"SecurityOpt": ["no-new-privileges", "seccomp=unconfined"]},
        {"NetworkMode": "host"},
        {"NetworkMode": "fta-client-other"},
        {"CgroupParent": "/fta/other"},
        {"MemorySwap": -1},
        {"PidsLimit": 0},
        {"Mounts": [{"Type": "bind", "Source": "/", "Target": "/host", "ReadOnly": False}]},
        {
            "Mounts": [
                {"Type": "volume", "Source": "fta-data-other", "Target": "/d", "ReadOnly": True}
            ]
        },
        {
            "Mounts": [
                {"Type": "volume", "Source": "fta-candles", "Target": "/c", "ReadOnly": False}
            ]
        },
    ],
    ids=lambda c: next(iter(c)),
)
def test_weakened_host_configs_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(Refused) as refused:
        _judge_create(json.dumps(_body(**changes)))
    assert refused.value.status == 403


def test_a_create_must_carry_this_installations_label() -> None:
    body = _body()
    body["Labels"][LABEL_INSTANCE] = "other"
    with pytest.raises(Refused, match=r"fta\.instance=prod"):
        _judge_create(json.dumps(body))


@pytest.mark.parametrize(
    "raw",
    ['{"a": 1} x', "[1]", '{"a": NaN}', "\ufeff{}", '{"a": 1, "a": 2}', "{"],
)
def test_bodies_that_are_not_one_plain_object_are_refused(raw: str) -> None:
    with pytest.raises(Refused):
        _judge_create(raw)


def test_invalid_utf8_is_refused() -> None:
    with pytest.raises(Refused, match="UTF-8"):
        judge("POST", CREATE, b'{"Image": "\xff"}', CONFIG)


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("POST", "/v1.41/containers/x/exec"),
        ("GET", "/v1.41/containers/x/logs?stdout=1&stdout=0"),
        ("GET", "/v1.41/containers/x/logs?details=1"),
        ("GET", "/v1.41/containers/x/logs?stdout=1;follow=1"),
        ("GET", "/v1.41/containers/%2e%2e/json"),
        ("GET", "//containers/json"),
        ("POST", "/v1.41/containers/create"),
        ("DELETE", "/v1.41/networks/bridge"),
        ("DELETE", "/v1.41/networks/fta-client-abc?force=1"),
        ("DELETE", "/v1.41/networks/prune"),
        ("POST", "/v1.41/networks/prune"),
    ],
)
def test_calls_off_the_allow_list_are_refused(method: str, target: str) -> None:
    with pytest.raises(Refused):
        judge(method, target, b"", CONFIG)


def test_only_an_image_inspect_passes_and_only_for_a_plain_reference() -> None:
    for image in ("fta/freqtrade:2026.9", "sha256:" + "a" * 64, "registry.example/a/b"):
        forward = judge("GET", f"/v1.41/images/{image}/json", b"", CONFIG)
        assert forward.path == f"/v1.41/images/{image}/json"
        assert forward.owner is None and not forward.query
    for target in (
        "/v1.41/images/json",
        "/v1.41/images/a/../../containers/x/json",
        "/v1.41/images/a//b/json",
        "/v1.41/images/fta/freqtrade:2026.9/history",
        "/v1.41/images/fta/freqtrade:2026.9/json?all=1",
        "/v1.41/images/%2e%2e/json",
    ):
        with pytest.raises(Refused):
            judge("GET", target, b"", CONFIG)
    with pytest.raises(Refused):
        judge("DELETE", "/v1.41/images/fta/freqtrade:2026.9", b"", CONFIG)


def test_the_container_list_is_narrowed_to_this_installation() -> None:
    asked = json.dumps({"label": ["fta.tenant=abc"]})
    forward = judge("GET", f"/v1.41/containers/json?all=1&filters={asked}", b"", CONFIG)
    filters = json.loads(parse_qs(forward.query)["filters"][0])
    assert filters["label"] == ["fta.tenant=abc", "fta.instance=prod", "fta.managed=1"]
    unfiltered = judge("GET", "/v1.41/containers/json?all=1", b"", CONFIG)
    assert json.loads(parse_qs(unfiltered.query)["filters"][0]) == {
        "label": ["fta.instance=prod", "fta.managed=1"]
    }
    with pytest.raises(Refused):
        judge("GET", "/v1.41/containers/json?filters=" + json.dumps({"name": ["x"]}), b"", CONFIG)


def test_a_tenant_volume_is_its_own_disk_or_nothing() -> None:
    labels = {LABEL_INSTANCE: "prod", "fta.managed": "1", "fta.tenant": TENANT}
    good = {
        "Name": f"fta-data-{TENANT}",
        "Driver": "local",
        "DriverOpts": tenant_volume_options(f"/var/lib/fta/tenant-disks/mounts/{TENANT}"),
        "Labels": labels,
    }
    assert judge("POST", "/v1.41/volumes/create", json.dumps(good).encode(), CONFIG).body
    for device in ("/", f"/var/lib/fta/tenant-disks/mounts/{TENANT}/..", "/var/lib/fta"):
        bad = {**good, "DriverOpts": {**good["DriverOpts"], "device": device}}
        with pytest.raises(Refused):
            judge("POST", "/v1.41/volumes/create", json.dumps(bad).encode(), CONFIG)
    shared = {"Name": "fta-candles", "Driver": "local", "Labels": {**labels, "fta.tenant": ""}}
    assert judge("POST", "/v1.41/volumes/create", json.dumps(shared).encode(), CONFIG).body


def test_only_a_tenant_data_volume_is_removed() -> None:
    removal = judge("DELETE", f"/v1.41/volumes/fta-data-{TENANT}", b"", CONFIG)
    assert removal.owner is not None and removal.owner.kind == "volume"
    assert removal.owner.name == f"fta-data-{TENANT}" and not removal.owner.missing_may_pass
    assert removal.query == "" and removal.body is None
    for path in (
        "/v1.41/volumes/fta-candles",
        "/v1.41/volumes/fta-pyenv-0123456789ab",
        f"/v1.41/volumes/fta-data-{TENANT}?force=1",
        f"/v1.41/volumes/fta-data-{TENANT}x0123456789",
        "/v1.41/volumes/other",
        "/v1.41/volumes/prune",
    ):
        with pytest.raises(Refused):
            judge("DELETE", path, b"", CONFIG)
    with pytest.raises(Refused):
        judge("DELETE", f"/v1.41/volumes/fta-data-{TENANT}", b'{"Force": true}', CONFIG)


def test_only_a_tenant_network_is_removed_and_only_the_gateway_disconnected() -> None:
    removal = judge("DELETE", f"/v1.41/networks/fta-client-{TENANT}", b"", CONFIG)
    assert removal.owner is not None and removal.owner.kind == "network"
    assert not removal.owner.missing_may_pass
    with pytest.raises(Refused):
        judge("DELETE", f"/v1.41/networks/fta-client-{TENANT}", b'{"Force": true}', CONFIG)
    disconnect = f"/v1.41/networks/fta-client-{TENANT}/disconnect"
    gateway = json.dumps({"Container": "fta-market-data"}).encode()
    forward = judge("POST", disconnect, gateway, CONFIG)
    assert forward.owner is not None and forward.owner.kind == "network"
    assert forward.body is not None and json.loads(forward.body) == json.loads(gateway)
    for body in (
        {"Container": "fta-portal"},
        {"Container": "fta-market-data", "Force": True},
        {"Container": "fta-market-data", "Containe\u017f": "fta-portal"},
        {},
    ):
        with pytest.raises(Refused):
            judge("POST", disconnect, json.dumps(body).encode(), CONFIG)
    with pytest.raises(Refused):
        judge("POST", "/v1.41/networks/bridge/disconnect", gateway, CONFIG)
