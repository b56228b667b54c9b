"""The baseline of the backtest benchmark: the same bundle, run by the same container entry
script with bare freqtrade on the host (the venv of scripts/ft-host-venv.sh), against the
market-data gateway in replay mode under uvicorn on a loopback port. No container, no CPU
limit; the bundle's container paths point at a temporary directory.
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from fta.jobs.freqtrade_config import (
    ContainerPaths,
    build_job_bundle,
    encode_bundle,
    parse_job_config,
)

REPO = Path(__file__).resolve().parents[1]
ENTRY = REPO / "images" / "freqtrade" / "fta_job_entry.py"


@dataclass(frozen=True)
class HostRun:
    wall_seconds: float
    cpu_seconds: float  # user + system of the entry and everything it ran
    stdout: str
    stderr: str


@dataclass(frozen=True)
class HostFreqtrade:
    venv: Path
    gateway_url: str
    root: Path

    @property
    def paths(self) -> ContainerPaths:
        return ContainerPaths(
            user_data=str(self.root / "user_data"),
            candles=str(self.root / "candles"),
            job=str(self.root / "job"),
        )

    def run(
        self,
        kind: str,
        config: dict[str, Any],
        strategy: tuple[str, str] | None = None,
        *,
        timeout: float,
    ) -> HostRun:
        """Runs one job through the entry script; raises unless it succeeded."""
        run_id = uuid.uuid4().hex[:12]
        paths = self.paths
        # Each run gets its own job directory, like a container's private tmpfs.
        paths = ContainerPaths(paths.user_data, paths.candles, f"{paths.job}-{run_id}")
        name, code = strategy if strategy else (None, None)
        bundle = build_job_bundle(
            kind,
            parse_job_config(kind, config),
            name,
            code,
            self.gateway_url,
            run_id=run_id,
            paths=paths,
        )
        env = {
            "PATH": f"{self.venv / 'bin'}:/usr/bin:/bin",
            "HOME": str(self.root / "home"),
            "LANG": "C.UTF-8",
            "TZ": "UTC",
            **encode_bundle(bundle),
        }
        command = [str(self.venv / "bin" / "python"), str(ENTRY)]
        cpu_before = _children_cpu_seconds()
        started = time.monotonic()
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
        wall = time.monotonic() - started
        cpu = _children_cpu_seconds() - cpu_before
        if done.returncode != 0:
            raise RuntimeError(f"host {kind} exited {done.returncode}:\n{done.stderr[-3000:]}")
        return HostRun(wall, cpu, done.stdout, done.stderr)


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def freqtrade_venv() -> Path:
    made = subprocess.run(
        ["bash", str(REPO / "scripts" / "ft-host-venv.sh")],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if made.returncode != 0:
        raise RuntimeError(f"cannot create the freqtrade host venv: {made.stderr[-1000:]}")
    return Path(made.stdout.strip().splitlines()[-1])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def running_host_gateway(log: Path) -> Iterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        "FTA_MARKET_DATA_MODE": "replay",
        "FTA_GATEWAY_HOST": "127.0.0.1",
        "FTA_GATEWAY_PORT": str(port),
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
                raise RuntimeError(f"host gateway did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@contextmanager
def host_freqtrade() -> Iterator[HostFreqtrade]:
    venv = freqtrade_venv()
    with tempfile.TemporaryDirectory(prefix="fta-bench-host-") as directory:
        root = Path(directory)
        for name in ("user_data", "candles", "home"):
            (root / name).mkdir()
        with running_host_gateway(root / "gateway.log") as url:
            yield HostFreqtrade(venv, url, root)
