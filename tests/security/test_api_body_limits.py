"""Request bodies over 1 MiB are refused with 413, declared or not (chunked transfer).

In process for every operation that takes a body, and once through a real HTTP server
(uvicorn on loopback), where chunked framing is real and no Content-Length exists.
"""

from __future__ import annotations

import json
import secrets
import select
import socket
import threading
import time
from collections.abc import Iterable, Iterator

import pytest
import uvicorn
from fastapi.testclient import TestClient

from fta.portal.app import MAX_BODY_BYTES, create_app
from tests.security.api_support import API, PROBLEM_JSON, unique_ip

OVER = MAX_BODY_BYTES + 1
CHUNK = 64 * 1024


@pytest.fixture(scope="module")
def operations_with_body(http: TestClient) -> list[tuple[str, str]]:
    paths = http.get(f"{API}/openapi.json").json()["paths"]
    sample_id = "00000000-0000-4000-8000-000000000000"
    return [
        (method.upper(), path.replace("{strategy_id}", sample_id).replace("{job_id}", sample_id))
        for path, item in paths.items()
        for method, operation in item.items()
        if "requestBody" in operation
    ]


def _assert_too_large(status: int, content_type: str, body: bytes) -> None:
    assert status == 413, body[:300]
    assert content_type == PROBLEM_JSON
    problem = json.loads(body)
    assert problem["status"] == 413 and str(MAX_BODY_BYTES) in problem["detail"]


def _chunks(total: int) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        size = min(CHUNK, total - sent)
        sent += size
        yield b" " * size


@pytest.mark.parametrize("framing", ["declared", "actual", "chunked"])
def test_every_body_over_the_limit_is_refused(
    http: TestClient, operations_with_body: list[tuple[str, str]], framing: str
) -> None:
    assert operations_with_body
    for method, path in operations_with_body:
        headers = {"content-type": "application/json"}
        if framing == "declared":
            headers["content-length"] = str(OVER)
            response = http.request(method, path, headers=headers)
        elif framing == "actual":
            response = http.request(method, path, content=b" " * OVER, headers=headers)
        else:  # a generator: httpx sends it chunked, with no Content-Length at all
            response = http.request(method, path, content=_chunks(2 * OVER), headers=headers)
        _assert_too_large(response.status_code, response.headers["content-type"], response.content)


def test_a_body_of_exactly_the_limit_is_read(http: TestClient) -> None:
    body = json.dumps({"email": f"edge-{secrets.token_hex(4)}@example.com", "password": "x"})
    padded = body.encode().ljust(MAX_BODY_BYTES, b" ")
    headers = {"content-type": "application/json", "X-Real-IP": unique_ip()}
    response = http.post(f"{API}/auth/token", content=padded, headers=headers)
    assert response.status_code == 401, response.text  # parsed, and simply wrong credentials
    streamed = http.post(f"{API}/auth/token", content=iter([padded]), headers=headers)
    assert streamed.status_code == 401, streamed.text


def test_a_malformed_content_length_is_refused(http: TestClient) -> None:
    for value in (b"-1", b"1e9", b"\xb2", b"12 34"):
        response = http.post(f"{API}/auth/token", headers={"content-length": value})
        assert response.status_code == 400, (value, response.text)
        assert response.headers["content-type"] == PROBLEM_JSON
        assert "Content-Length" in response.json()["detail"]


# --- through a real HTTP server ------------------------------------------------------------


@pytest.fixture(scope="module")
def live_portal(app_settings: None) -> Iterator[tuple[str, int]]:
    """The portal served by uvicorn on a free loopback port, in a thread of this process."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(), lifespan="off", log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start within 15 s"
        time.sleep(0.05)
    host, port = listener.getsockname()[:2]
    yield host, port
    server.should_exit = True
    thread.join(timeout=15)
    listener.close()


def _exchange(address: tuple[str, int], head: bytes, body: Iterable[bytes]) -> bytes:
    """Sends a request, stopping as soon as the server answers; returns the raw answer."""
    with socket.create_connection(address, timeout=10) as connection:
        connection.sendall(head)
        for piece in body:
            answered, _, _ = select.select([connection], [], [], 0)
            if answered:
                break
            try:
                connection.sendall(piece)
            except OSError:  # the server answered and closed while we were still sending
                break
        answer = b""
        while b"\r\n\r\n" not in answer or not _complete(answer):
            try:
                data = connection.recv(65536)
            except OSError:
                break
            if not data:
                break
            answer += data
        return answer


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def _parse(answer: bytes) -> tuple[int, str, bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    content_type = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
    return int(lines[0].split()[1]), content_type, body


def _request_head(extra: str) -> bytes:
    return (
        f"POST {API}/auth/signup HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\n{extra}\r\n"
    ).encode()


def test_a_chunked_body_is_capped_by_the_real_server(live_portal: tuple[str, int]) -> None:
    def chunked() -> Iterator[bytes]:
        for piece in _chunks(4 * MAX_BODY_BYTES):
            yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        yield b"0\r\n\r\n"

    answer = _exchange(live_portal, _request_head("Transfer-Encoding: chunked\r\n"), chunked())
    _assert_too_large(*_parse(answer))


def test_a_declared_length_is_refused_before_the_body(live_portal: tuple[str, int]) -> None:
    answer = _exchange(live_portal, _request_head(f"Content-Length: {50 * OVER}\r\n"), [])
    _assert_too_large(*_parse(answer))
