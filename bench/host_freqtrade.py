"""The baseline of the backtest benchmark: the same bundle, run by the same container entry
script with bare freqtrade on the host (the venv of scripts/ft-host-venv.sh), against the
market-data gateway in replay mode under uvicorn on a loopback port. No container, no CPU
limit; the bundle's container paths point at a temporary directory.
"""

from __future__ import annotations

import resource
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.host_processes import freqtrade_host_venv, gateway_process

from fta.freqtrade.bundle import build_job_bundle, encode_bundle
from fta.freqtrade.config import ContainerPaths
from fta.freqtrade.options import parse_job_config

REPO = Path(__file__).resolve().parents[1]
ENTRY = REPO / "src" / "fta" / "freqtrade" / "entry.py"


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


@contextmanager
def host_freqtrade() -> Iterator[HostFreqtrade]:
    venv = freqtrade_host_venv()
    with tempfile.TemporaryDirectory(prefix="fta-bench-host-") as directory:
        root = Path(directory)
        for name in ("user_data", "candles", "home"):
            (root / name).mkdir()
        with gateway_process("replay", root / "gateway.log") as url:
            yield HostFreqtrade(venv, url, root)
