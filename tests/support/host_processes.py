"""Processes the tests and benchmarks run on the host: the market-data gateway on a free
loopback port, and the virtualenv holding the real freqtrade (scripts/ft-host-venv.sh)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def gateway_process(
    mode: str, log: Path, *, upstream: str | None = None, **settings: str
) -> Iterator[str]:
    """``python -m fta.gateway`` on a free loopback port; yields its base URL.

    `settings` are extra FTA_* variables, e.g. ``MARKET_DATA_WEIGHT_BUDGET="100"``.
    """
    port = free_port()
    env = {
        **os.environ,
        "FTA_MARKET_DATA_MODE": mode,
        "FTA_GATEWAY_HOST": "127.0.0.1",
        "FTA_GATEWAY_PORT": str(port),
        **({"FTA_MARKET_DATA_UPSTREAM": upstream} if upstream else {}),
        **{f"FTA_{name}": value for name, value in settings.items()},
    }
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "fta.gateway"], env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError(f"gateway did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def freqtrade_host_venv() -> Path:
    """The host virtualenv with freqtrade (created once, offline from the wheel cache)."""
    made = subprocess.run(
        ["bash", str(REPO / "scripts" / "ft-host-venv.sh")],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if made.returncode != 0:
        raise RuntimeError(f"cannot create the freqtrade host venv: {made.stderr.strip()[-600:]}")
    return Path(made.stdout.strip().splitlines()[-1])
