"""The baseline of the launch benchmark: the tenant's job container started by a plain
`docker run` on the engine itself (no API, no queue, no worker, no socket proxy, no checks).

The container is the one the worker creates, flag for flag: same image, limits, read-only
root, tmpfs, user, capabilities, network, DNS, gateway host entry, volumes, cgroup parent,
init and log driver; the bundle travels in the same environment variables.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import docker

from bench.measure import first_freqtrade_log
from bench.platform_under_test import TenantSandbox, utc_now
from fta.runtime.docker_output import parse_docker_time
from fta.runtime.spec import (
    DNS_OPTIONS,
    JOB_USER,
    LOG_MAX_FILE,
    LOG_MAX_SIZE,
    MARKET_DATA_HOSTNAME,
    PYTHON_ENV_TARGET,
    TMPFS_TARGET,
    tmpfs_options,
)


@dataclass(frozen=True)
class BareRun:
    before_run: datetime  # host UTC time just before `docker run`
    started_at: datetime  # the engine's State.StartedAt
    first_log: datetime  # the time stamp of freqtrade's first log line
    first_line: str
    wall_seconds: float  # `docker run` -> the container exited
    output: str


def docker_run_args(
    target: TenantSandbox, env_names: list[str], labels: Mapping[str, str], *, cpu_limit: bool
) -> list[str]:
    limits = target.limits
    args = ["docker", "run", "--detach"]
    if cpu_limit:
        args.append(f"--cpus={limits.nano_cpus / 1e9:g}")
    args += [
        f"--memory={limits.memory_bytes}",
        f"--memory-swap={limits.memory_bytes}",
        f"--pids-limit={limits.pids}",
        "--read-only",
        f"--tmpfs={TMPFS_TARGET}:{tmpfs_options(limits)}",
        f"--user={JOB_USER}",
        "--cap-drop=ALL",
        "--security-opt=no-new-privileges",
        "--init",
        "--ipc=private",
        "--cgroupns=private",
        f"--cgroup-parent={target.cgroup_parent}",
        f"--network={target.network}",
        f"--dns={target.dns_ip}",
        *(f"--dns-option={option}" for option in DNS_OPTIONS),
        f"--add-host={MARKET_DATA_HOSTNAME}:{target.gateway_ip}",
        f"--mount=type=volume,source={target.data_volume},target=/freqtrade/user_data",
        f"--mount=type=volume,source={target.candle_volume},target=/candles,readonly",
        *(
            [f"--mount=type=volume,source={target.python_env},target={PYTHON_ENV_TARGET},readonly"]
            if target.python_env
            else []
        ),
        "--log-driver=json-file",
        f"--log-opt=max-size={LOG_MAX_SIZE}",
        f"--log-opt=max-file={LOG_MAX_FILE}",
    ]
    args += [f"--label={key}={value}" for key, value in labels.items()]
    # Names only: the CLI takes the values from its environment (they are up to 100 kB).
    args += [f"--env={name}" for name in env_names]
    return [*args, target.image]


def run_bare(
    engine: docker.DockerClient,
    target: TenantSandbox,
    bundle_env: Mapping[str, str],
    labels: Mapping[str, str],
    *,
    cpu_limit: bool = True,
    timeout: float,
) -> BareRun:
    """Runs the container to its end and removes it; `cpu_limit=False` leaves out the
    plan's CPU limit (and nothing else)."""
    command = docker_run_args(target, sorted(bundle_env), labels, cpu_limit=cpu_limit)
    before = utc_now()
    started = time.monotonic()
    done = subprocess.run(
        command,
        env={**os.environ, **bundle_env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"docker run failed: {done.stderr.strip()}")
    container = engine.containers.get(done.stdout.strip())
    try:
        status = container.wait(timeout=timeout)
        wall = time.monotonic() - started
        container.reload()
        output = container.logs(stdout=True, stderr=True).decode(errors="replace")
        if status["StatusCode"] != 0 or "FTA-RESULT:" not in output:
            raise RuntimeError(f"bare run exited {status['StatusCode']}:\n{output[-3000:]}")
        started_at = parse_docker_time(container.attrs["State"]["StartedAt"])
        assert started_at is not None
        first_log, first_line = first_freqtrade_log(output)
        return BareRun(before, started_at, first_log, first_line, wall, output)
    finally:
        container.remove(force=True, v=True)
