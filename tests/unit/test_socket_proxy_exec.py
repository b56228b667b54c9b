"""The hand-off exec through the socket proxy, without an engine: exactly the worker's
exec_create and detached exec_start pass, on a container labelled fta.handoff=1 only."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import gzip
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest

from fta.runtime.spec import ENV_VALUE_MAX_CHARS, HANDOFF_COMMAND, JOB_USER
from fta.socketproxy import bodies
from fta.socketproxy.config import ProxyConfig
from fta.socketproxy.errors import Refused
from fta.socketproxy.routes import Forward, judge
from fta.socketproxy.scope import scoped
from fta.socketproxy.server import SocketProxy

# What a bundle chunk looks like: base64 of gzipped JSON.
SAMPLE_BUNDLE = base64.b64encode(gzip.compress(b'{"version":1}', mtime=0)).decode("ascii")
CONFIG = ProxyConfig(
    instance="prod",
    gateway_container="fta-market-data",
    bridge_prefix="ftab-",
    cgroup_root="fta",
    disk_root="/var/lib/fta/tenant-disks",
)
CONTAINER = "c0ffee" + "0" * 58
EXEC = "e1ec" + "0" * 60
CREATE = "/v1.41/containers/c0ffee/exec"
START = f"/v1.41/exec/{EXEC[:12]}/start"
# The engine's inspect of the hand-off exec (the parts the proxy reads).
PROCESS = {
    "privileged": False,
    "user": "10000:10000",
    "tty": False,
    "entrypoint": "python3",
    "arguments": ["/opt/fta/fta_job_entry.py", "--hand-off"],
}
HAND_OFF = {"ID": EXEC, "ContainerID": CONTAINER, "ProcessConfig": PROCESS}


def _create_body(**changes: Any) -> dict[str, Any]:
    """What docker-py's exec_create sends for the worker's hand-off."""
    body = {
        "Container": "c0ffee",
        "User": "10000:10000",
        "Privileged": False,
        "Tty": False,
        "AttachStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
        "Cmd": ["python3", "/opt/fta/fta_job_entry.py", "--hand-off"],
        "Env": [
            "FTA_BUNDLE_0=" + SAMPLE_BUNDLE,
            "FTA_BUNDLE_1=x",
        ],
    }
    body.update(changes)
    return body


def _judge(target: str, body: dict[str, Any]) -> Forward:
    return judge("POST", target, json.dumps(body).encode(), CONFIG)


def test_the_proxys_copies_are_the_runtimes_constants() -> None:
    assert bodies.JOB_USER == JOB_USER
    assert bodies.HANDOFF_COMMAND == HANDOFF_COMMAND
    assert f"{{0,{ENV_VALUE_MAX_CHARS}}}" in bodies.BUNDLE_ENV


def test_the_hand_off_passes_without_the_container_it_names() -> None:
    forward = _judge(CREATE, _create_body())
    assert forward.path == CREATE and not forward.query
    assert forward.owner is not None and forward.owner.kind == "container"
    assert forward.owner.required_labels == (("fta.handoff", "1"),)
    assert not forward.owner.gateway_may_pass
    assert forward.body is not None
    expected = _create_body()
    del expected["Container"]
    assert json.loads(forward.body) == expected
    assert _judge("/containers/c0ffee/exec", {**expected, "Env": ["FTA_BUNDLE_63=y"]}).body


@pytest.mark.parametrize(
    "changes",
    [
        {"Cmd": ["sh", "-c", "id"]},
        {"Cmd": ["python3", "/opt/fta/fta_job_entry.py"]},
        {"Cmd": ["python3", "/opt/fta/fta_job_entry.py", "--hand-off", "--x"]},
        {"Cmd": "python3 /opt/fta/fta_job_entry.py --hand-off"},
        {"User": "0"},
        {"User": "root"},
        {"User": ""},
        {"User": "10000"},
        {"Privileged": True},
        {"Privileged": 0},
        {"Tty": True},
        {"AttachStdin": True},
        {"AttachStdout": True},
        {"AttachStderr": True},
        {"WorkingDir": "/"},
        {"detachKeys": "ctrl-p"},
        {"Detach": True},
        {"Container": ["c0ffee"]},
        {"Env": []},
        {"Env": ["LD_PRELOAD=/tmp/x.so"]},
        {"Env": ["PATH=/tmp"]},
        {"Env": ["FTA_BUNDLE_0x=y"]},
        {"Env": ["FTA_BUNDLE_01=y"]},
        {"Env": ["FTA_BUNDLE_0=a\nb"]},
        {"Env": ["FTA_BUNDLE_0=a\x1bb"]},
        {"Env": ["FTA_BUNDLE_0=a\x7fb"]},
        {"Env": ["FTA_BUNDLE_0=\u00e9"]},
        {"Env": ["FTA_BUNDLE_0=a", "FTA_BUNDLE_0=b"]},
        {"Env": ["FTA_BUNDLE_0=" + "x" * (ENV_VALUE_MAX_CHARS + 1)]},
        {"Env": [f"FTA_BUNDLE_{n}=x" for n in range(65)]},
        {"Env": {"FTA_BUNDLE_0": "x"}},
    ],
    ids=lambda c: f"{next(iter(c))}={str(next(iter(c.values())))[:30]!r}",
)
def test_any_other_exec_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(Refused) as refused:
        _judge(CREATE, _create_body(**changes))
    assert refused.value.status == 403


@pytest.mark.parametrize("key", ["User", "Privileged", "Cmd", "Env", "AttachStdout", "Tty"])
def test_every_field_of_the_hand_off_is_required(key: str) -> None:
    body = _create_body()
    del body[key]
    with pytest.raises(Refused, match=key):
        _judge(CREATE, body)


def test_an_exec_create_takes_no_query_and_a_plain_container_id() -> None:
    body = _create_body()
    for target in (CREATE + "?detach=1", "/v1.41/containers/../exec", "/v1.41/containers/exec"):
        with pytest.raises(Refused):
            _judge(target, body)


def test_only_a_detached_start_passes() -> None:
    forward = _judge(START, {"Detach": True, "Tty": False})
    assert forward.owner is not None and forward.owner.kind == "exec"
    assert forward.owner.required_labels == (("fta.handoff", "1"),)
    assert forward.body is not None and json.loads(forward.body) == {"Detach": True, "Tty": False}
    assert not forward.long_lived
    for body in (
        {"Detach": False, "Tty": False},
        {"Detach": 1, "Tty": False},
        {"Detach": True, "Tty": True},
        {"Detach": True},
        {"Detach": True, "Tty": False, "ConsoleSize": [24, 80]},
        {"Detach": True, "Tty": False, "detach": False},
        {},
    ):
        with pytest.raises(Refused):
            _judge(START, body)
    with pytest.raises(Refused):
        judge("POST", START, b"", CONFIG)
    with pytest.raises(Refused):
        judge("POST", START + "?h=24", b'{"Detach": true, "Tty": false}', CONFIG)


def test_an_exec_inspect_passes_and_nothing_else_of_exec() -> None:
    forward = judge("GET", f"/exec/{EXEC}/json", b"", CONFIG)
    assert forward.owner is not None and forward.owner.kind == "exec"
    for method, target in (
        ("POST", f"/v1.41/exec/{EXEC}/resize?h=1&w=1"),
        ("GET", f"/v1.41/exec/{EXEC}/json?x=1"),
        ("DELETE", f"/v1.41/exec/{EXEC}"),
        ("POST", "/v1.41/containers/c0ffee/attach"),
    ):
        with pytest.raises(Refused):
            judge(method, target, b"", CONFIG)


def _container(**labels: str) -> dict[str, Any]:
    return {"Id": CONTAINER, "Name": "/fta-abc-job-1-0a1b2c", "Config": {"Labels": labels}}


WARM = {"fta.instance": "prod", "fta.managed": "1", "fta.handoff": "1"}


class Engine:
    def __init__(self, objects: dict[str, Any]) -> None:
        self.objects = objects
        self.asked: list[str] = []

    async def inspect(self, path: str) -> tuple[int, Any]:
        self.asked.append(path)
        found = self.objects.get(path)
        return (200, found) if found is not None else (404, {"message": "no such object"})


def _scoped(forward: Forward, engine: Engine) -> Forward:
    return asyncio.run(scoped(forward, CONFIG, engine.inspect))


def test_an_exec_is_judged_by_its_containers_labels_and_sent_with_its_full_id() -> None:
    exec_inspect = {**HAND_OFF, "Running": False, "ExitCode": 0}
    engine = Engine(
        {
            f"/v1.41/exec/{EXEC[:12]}/json": exec_inspect,
            f"/v1.41/containers/{CONTAINER}/json": _container(**WARM),
        }
    )
    forward = _scoped(_judge(START, {"Detach": True, "Tty": False}), engine)
    assert forward.path == f"/v1.41/exec/{EXEC}/start"
    assert engine.asked == [f"/v1.41/exec/{EXEC[:12]}/json", f"/v1.41/containers/{CONTAINER}/json"]
    engine.objects[f"/exec/{EXEC[:12]}/json"] = exec_inspect
    engine.objects[f"/containers/{CONTAINER}/json"] = _container(**WARM)
    inspect = _scoped(judge("GET", f"/exec/{EXEC[:12]}/json", b"", CONFIG), engine)
    assert inspect.path == f"/exec/{EXEC}/json"


@pytest.mark.parametrize(
    ("labels", "why"),
    [
        ({"fta.instance": "prod", "fta.managed": "1"}, "fta.handoff=1"),
        ({**WARM, "fta.handoff": "true"}, "fta.handoff=1"),
        ({**WARM, "fta.instance": "other"}, "not this installation's"),
        ({"fta.handoff": "1"}, "not this installation's"),
    ],
)
def test_an_exec_on_another_container_is_refused(labels: dict[str, str], why: str) -> None:
    engine = Engine(
        {
            f"/v1.41/exec/{EXEC}/json": HAND_OFF,
            f"/v1.41/containers/{CONTAINER}/json": _container(**labels),
            f"/v1.41/containers/{CONTAINER[:6]}/json": _container(**labels),
        }
    )
    for forward in (
        _judge(f"/v1.41/exec/{EXEC}/start", {"Detach": True, "Tty": False}),
        judge("GET", f"/v1.41/exec/{EXEC}/json", b"", CONFIG),
        _judge(CREATE, _create_body()),
    ):
        with pytest.raises(Refused, match=why) as refused:
            _scoped(forward, engine)
        assert refused.value.status == 403


@pytest.mark.parametrize(
    "process",
    [
        {**PROCESS, "entrypoint": "sh", "arguments": ["-c", "id"]},
        {**PROCESS, "arguments": ["/opt/fta/fta_job_entry.py"]},
        {**PROCESS, "arguments": None},
        {**PROCESS, "user": ""},
        {**PROCESS, "user": "0"},
        {**PROCESS, "privileged": True},
        {**PROCESS, "tty": True},
        {key: value for key, value in PROCESS.items() if key != "privileged"},
        None,
    ],
)
def test_an_exec_made_past_the_proxy_is_not_started(process: dict[str, Any] | None) -> None:
    engine = Engine(
        {
            f"/v1.41/exec/{EXEC[:12]}/json": {**HAND_OFF, "ProcessConfig": process},
            f"/v1.41/containers/{CONTAINER}/json": _container(**WARM),
        }
    )
    with pytest.raises(Refused, match="not the hand-off") as refused:
        _scoped(_judge(START, {"Detach": True, "Tty": False}), engine)
    assert refused.value.status == 403


def test_the_gateway_takes_no_exec() -> None:
    gateway = {**_container(), "Name": "/fta-market-data"}
    engine = Engine({f"/v1.41/containers/{CONTAINER[:6]}/json": gateway})
    with pytest.raises(Refused) as refused:
        _scoped(_judge(CREATE, _create_body()), engine)
    assert refused.value.status == 403


def test_a_missing_exec_or_container_answers_404_and_a_malformed_inspect_502() -> None:
    start = _judge(START, {"Detach": True, "Tty": False})
    with pytest.raises(Refused) as refused:
        _scoped(start, Engine({}))
    assert refused.value.status == 404
    orphan = Engine({f"/v1.41/exec/{EXEC[:12]}/json": HAND_OFF})
    with pytest.raises(Refused) as refused:
        _scoped(start, orphan)
    assert refused.value.status == 404
    for exec_inspect in (
        {**HAND_OFF, "ContainerID": None},
        {**HAND_OFF, "ContainerID": "../../volumes/x"},
        {**HAND_OFF, "ID": EXEC + "/../x"},
    ):
        engine = Engine(
            {
                f"/v1.41/exec/{EXEC[:12]}/json": exec_inspect,
                f"/v1.41/containers/{CONTAINER}/json": _container(**WARM),
            }
        )
        with pytest.raises(Refused) as refused:
            _scoped(start, engine)
        assert refused.value.status == 502


async def _through_the_server(raw_request: bytes, socket_dir: Path) -> tuple[bytes, list[bytes]]:
    """Sends one raw request to a SocketProxy whose engine is a stand-in on a Unix socket:
    (the client's answer, the requests the engine received)."""
    received: list[bytes] = []
    answers = {
        f"GET /v1.41/exec/{EXEC}/json": HAND_OFF,
        f"GET /v1.41/containers/{CONTAINER}/json": _container(**WARM),
    }

    async def engine(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        received.append(head + await reader.readexactly(length))
        found = answers.get(" ".join(head.decode().split(" ", 2)[:2]))
        body = json.dumps(found).encode() if found is not None else b""
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    socket_path = str(socket_dir / "engine.sock")
    engine_server = await asyncio.start_unix_server(engine, socket_path)
    proxy = SocketProxy(dataclasses.replace(CONFIG, docker_socket=socket_path))
    proxy_server = await asyncio.start_server(proxy._connection, "127.0.0.1", 0)
    port = proxy_server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(raw_request)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(65536), 10)
        writer.close()
        return answer, received
    finally:
        proxy_server.close()
        engine_server.close()


def test_the_engine_never_gets_an_upgrade_request() -> None:
    """The proxy sends headers of its own: a client's `Connection: Upgrade` never reaches the
    engine, so no exec start turns into a hijacked stream."""
    body = b'{"Detach": true, "Tty": false}'
    raw = (
        b"POST /v1.41/exec/%s/start HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\n"
        b"Upgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
    ) % (EXEC.encode(), len(body), body)
    with tempfile.TemporaryDirectory(dir="/tmp") as socket_dir:
        answer, received = asyncio.run(_through_the_server(raw, Path(socket_dir)))
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert b"upgrade" not in answer.lower()
    start = received[-1]
    assert start.startswith(b"POST /v1.41/exec/%s/start " % EXEC.encode())
    assert b"upgrade" not in start.lower()
    assert start.endswith(b'{"Detach":true,"Tty":false}')
