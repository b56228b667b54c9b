"""A stand-in for a host on the Internet, made and removed by the test.

A network namespace joined to this host by a veth pair, with 198.18.N.1/24 inside (the
benchmarking range, RFC 2544) routed through the host, and a TCP listener that answers a
token to each request. A container on an ordinary Docker bridge reaches it like any outside host; a
container on a tenant network must not. No packet leaves the machine.
"""

from __future__ import annotations

import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

LISTENER = r"""
import socket, sys, time
port, token, lifetime = int(sys.argv[1]), sys.argv[2].encode(), float(sys.argv[3])
server = socket.create_server(("0.0.0.0", port))
server.settimeout(1.0)
deadline = time.monotonic() + lifetime
while time.monotonic() < deadline:
    try:
        conn, _ = server.accept()
    except OSError:
        continue
    with conn:
        # Read the request first: closing on unread data would reset the connection.
        conn.settimeout(2.0)
        try:
            conn.recv(4096)
            conn.sendall(token + b"\n")
        except OSError:
            pass
"""


@dataclass(frozen=True)
class StandInHost:
    namespace: str
    address: str
    host_address: str
    port: int
    token: str


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def _free_subnet() -> int:
    for third in range(256):
        routes = subprocess.run(
            ["ip", "-4", "route", "show", "root", f"198.18.{third}.0/24"],
            check=True,
            capture_output=True,
            text=True,
            timeout=10,
        )
        if not routes.stdout.strip():
            return third
    raise RuntimeError("no free /24 left in 198.18.0.0/16")


def read_token(address: str, port: int, timeout_s: float = 2.0) -> str:
    with socket.create_connection((address, port), timeout=timeout_s) as conn:
        conn.sendall(b"ping\n")
        return conn.makefile().readline().strip()


@contextmanager
def stand_in_internet_host(port: int = 8080, lifetime_s: float = 900.0) -> Iterator[StandInHost]:
    suffix = secrets.token_hex(3)
    namespace = f"fta-test-out-{suffix}"
    host_veth, inner_veth = f"ftaoh{suffix}", f"ftaon{suffix}"
    third = _free_subnet()
    address, host_address = f"198.18.{third}.1", f"198.18.{third}.254"
    token = f"outside-{secrets.token_hex(4)}"
    listener: subprocess.Popen[bytes] | None = None
    try:
        _ip("netns", "add", namespace)
        _ip("link", "add", host_veth, "type", "veth", "peer", "name", inner_veth)
        _ip("link", "set", inner_veth, "netns", namespace)
        _ip("addr", "add", f"{host_address}/24", "dev", host_veth)
        _ip("link", "set", host_veth, "up")
        inside = ("netns", "exec", namespace, "ip")
        _ip(*inside, "link", "set", "lo", "up")
        _ip(*inside, "addr", "add", f"{address}/24", "dev", inner_veth)
        _ip(*inside, "link", "set", inner_veth, "up")
        _ip(*inside, "route", "add", "default", "via", host_address)
        command = ["ip", "netns", "exec", namespace, sys.executable, "-c", LISTENER]
        listener = subprocess.Popen([*command, str(port), token, str(lifetime_s)])
        _wait_until_answering(address, port, token)
        yield StandInHost(namespace, address, host_address, port, token)
    finally:
        if listener is not None:
            listener.terminate()
            listener.wait(timeout=10)
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=10)
        subprocess.run(["ip", "link", "del", host_veth], capture_output=True, timeout=10)


def _wait_until_answering(address: str, port: int, token: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if read_token(address, port, timeout_s=1.0) == token:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"stand-in host {address}:{port} does not answer")
