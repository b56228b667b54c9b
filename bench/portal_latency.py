"""Latency and throughput of the portal's dashboard page and of `GET /api/v1/jobs` for a
client with 1,000 jobs, under 50 concurrent clients, through nginx, next to a bare FastAPI
"hello" served the same way in the same run.

Everything runs in containers of the locally built images, as Compose runs them: Postgres,
the portal (1 CPU, 512 MiB, read-only root) and nginx in front; the baseline is a one-route
FastAPI app in a container of the same image and limits, behind its own nginx. The load
comes from this host over 50 keep-alive connections, two ways: paced, each connection sending
one request a second (50 people on their dashboards; asyncio and httpx), and saturated, each
sending its next request as soon as the last is answered (wrk, Debian's package, installed
when missing). Prints a Markdown report to stdout, progress to stderr.

Run from the repository root (images built by images/build.sh):
    .venv/bin/python -m bench.portal_latency [--seconds 20] [--clients 50] [--rounds 3] [--pace 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import secrets
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import sqlalchemy
from tests.support.docker_resources import DockerResources, local_docker
from tests.support.portal_stack import (
    APP_IMAGE,
    HARDENED,
    PORTAL_MEMORY_BYTES,
    PortalStack,
    nginx_in_front,
    portal_stack,
    wait_for,
)

JOBS = 1000
# Paced first: people at their pace; then saturated: as many requests as the portal answers.
MODES = ("paced", "saturated")
HELLO_APP = """
import uvicorn
from fastapi import FastAPI

app = FastAPI()


@app.get("/")
@app.get("/healthz")
def hello() -> dict[str, str]:
    return {"hello": "world"}


uvicorn.run(app, host="0.0.0.0", port=8000, log_level="warning")
"""


@dataclass(frozen=True)
class Measure:
    p50_ms: float
    p99_ms: float
    per_second: float
    failures: int


_WRK_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
_WRK_PERCENTILE = re.compile(r"^\s*(50|99)(?:\.0+)?%\s+([0-9.]+)(us|ms|s)\s*$", re.MULTILINE)


def _load(url: str, headers: dict[str, str], seconds: int, clients: int) -> Measure:
    """`clients` keep-alive connections sending requests back to back for `seconds`, from
    wrk (C, two threads): the load generator costs far less than what it measures."""
    header_args = [arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")]
    command = [
        "wrk",
        "-t",
        "2",
        "-c",
        str(clients),
        "-d",
        f"{seconds}s",
        "--latency",
        "--timeout",
        "30s",
    ]
    # Warm-up: connections open, the portal's first requests done.
    subprocess.run([*command[:5], "-d", "3s", *header_args, url], check=True, capture_output=True)
    out = subprocess.run(
        [*command, *header_args, url], check=True, capture_output=True, text=True
    ).stdout
    percentiles = {
        int(found[0]): float(found[1]) * _WRK_UNITS_MS[found[2]]
        for found in _WRK_PERCENTILE.findall(out)
    }
    rate = re.search(r"^Requests/sec:\s+([0-9.]+)", out, re.MULTILINE)
    failed = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if rate is None or set(percentiles) != {50, 99}:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    failures = int(failed.group(1)) if failed else 0
    failures += sum(int(n) for n in errors.groups()) if errors else 0
    return Measure(percentiles[50], percentiles[99], float(rate.group(1)), failures)


def _paced(url: str, headers: dict[str, str], seconds: int, clients: int, pace: float) -> Measure:
    """`clients` keep-alive connections each sending one request every `pace` seconds, spread
    evenly: people on their dashboards rather than a load generator."""

    async def run() -> Measure:
        latencies: list[float] = []
        failures = 0
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(headers=headers, limits=limits, timeout=30) as http:
            await asyncio.gather(*(http.get(url) for _ in range(clients)))  # warm-up
            loop = asyncio.get_running_loop()
            start = loop.time()

            async def one_client(offset: float) -> None:
                nonlocal failures
                due = start + offset
                while due < start + seconds:
                    await asyncio.sleep(max(0.0, due - loop.time()))
                    sent = loop.time()
                    try:
                        answered = (await http.get(url)).status_code == 200
                    except httpx.HTTPError:
                        answered = False
                    if answered:
                        latencies.append(loop.time() - sent)
                    else:
                        failures += 1
                    due += pace

            await asyncio.gather(*(one_client(pace * i / clients) for i in range(clients)))
        p99 = statistics.quantiles(latencies, n=100)[98]
        return Measure(
            statistics.median(latencies) * 1000, p99 * 1000, len(latencies) / seconds, failures
        )

    return asyncio.run(run())


def _client_with_jobs(stack: PortalStack, nginx: str) -> str:
    """A client (signed up through the API) with JOBS finished backtests; its token, which
    the pages also accept as their session cookie."""
    email = f"bench-{secrets.token_hex(4)}@example.com"
    password = secrets.token_urlsafe(16)
    signup = httpx.post(
        f"{stack.portal_url}/api/v1/auth/signup",
        json={"email": email, "password": password, "display_name": "Bench"},
        timeout=60,
    )
    signup.raise_for_status()
    tenant = signup.json()["tenant_id"]
    engine = sqlalchemy.create_engine(stack.database_url)
    with engine.begin() as connection:
        connection.execute(
            sqlalchemy.text(
                """
        INSERT INTO jobs (id, tenant_id, kind, status, config, max_seconds, cancel_requested,
                          created_at, started_at, finished_at, exit_code, cpu_seconds,
                          memory_max_bytes)
        SELECT gen_random_uuid(), :tenant, 'backtest', 'succeeded',
               jsonb_build_object('exchange', 'binance', 'pairs', jsonb_build_array('BTC/USDT'),
                                  'timeframe', '5m', 'timerange', '20240101-20240201'),
               3600, false, now() - make_interval(mins => n), now() - make_interval(mins => n),
               now() - make_interval(mins => n) + interval '40 seconds', 0, 38.5, 300000000
        FROM generate_series(1, :jobs) AS n
        """
            ),
            {"tenant": tenant, "jobs": JOBS},
        )
    engine.dispose()
    token = httpx.post(
        f"{nginx}/api/v1/auth/token", json={"email": email, "password": password}, timeout=60
    )
    token.raise_for_status()
    access_token: str = token.json()["access_token"]
    return access_token


def _hello_stack(resources: DockerResources, network: str) -> PortalStack:
    """The baseline app, reachable as `portal` on its own network, limited as the portal."""
    container = resources.client.containers.create(
        APP_IMAGE,
        ["python3", "-c", HELLO_APP],
        labels=resources.labels,
        network=network,
        networking_config={
            network: resources.client.api.create_endpoint_config(aliases=["portal"])
        },
        **HARDENED,
        mem_limit=PORTAL_MEMORY_BYTES,
        nano_cpus=1_000_000_000,
    )
    resources.add_container(container.id)
    container.start()
    return PortalStack(network=network, portal=container, portal_url="", database_url="")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20, help="of load per measure")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--pace", type=float, default=1.0, help="seconds between a paced client's requests"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        subprocess.run(["bash", "scripts/ensure-apt.sh", "wrk"], check=True)
    client = local_docker()
    resources = DockerResources(client)
    results: dict[tuple[str, str], list[Measure]] = {
        (mode, name): [] for mode in MODES for name in ("hello", "dashboard", "jobs")
    }
    try:
        # Log-ins and sign-ups are rate-limited per address by nginx: the bench's few
        # calls stay below it; the measured routes are not limited.
        with portal_stack(resources, {"FTA_COOKIE_SECURE": "false"}) as stack:
            portal = nginx_in_front(resources, stack, "")
            token = _client_with_jobs(stack, portal)
            hello_network = f"fta-bench-hello-{secrets.token_hex(4)}"
            client.networks.create(hello_network, driver="bridge", labels=resources.labels)
            resources.add_network(hello_network)
            hello = nginx_in_front(resources, _hello_stack(resources, hello_network), "")
            wait_for(lambda: httpx.get(f"{hello}/").status_code == 200, "the baseline app")
            targets = {
                "hello": (f"{hello}/", {}),
                "dashboard": (f"{portal}/app", {"Cookie": f"fta_session={token}"}),
                "jobs": (f"{portal}/api/v1/jobs", {"Authorization": f"Bearer {token}"}),
            }
            for round_number in range(args.rounds):
                order = list(targets)
                if round_number % 2:
                    order.reverse()
                for mode in MODES:
                    for name in order:
                        url, headers = targets[name]
                        print(f"round {round_number + 1}: {mode} {name}", file=sys.stderr)
                        if mode == "paced":
                            measure = _paced(url, headers, args.seconds, args.clients, args.pace)
                        else:
                            measure = _load(url, headers, args.seconds, args.clients)
                        print(
                            f"  p50 {measure.p50_ms:.1f} ms, p99 {measure.p99_ms:.1f} ms, "
                            f"{measure.per_second:.0f}/s, failures {measure.failures}",
                            file=sys.stderr,
                        )
                        results[(mode, name)].append(measure)
    finally:
        resources.cleanup()
        client.close()
    _report(results, args)
    return 0


def _report(results: dict[tuple[str, str], list[Measure]], args: argparse.Namespace) -> None:
    print(
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} CPUs "
        f"({platform.machine()}, Linux {platform.release()}); {args.rounds} rounds of "
        f"{args.seconds} s per measure from {args.clients} keep-alive connections, through "
        f"nginx; medians over the rounds."
    )
    labels = {
        "hello": "bare FastAPI hello (baseline)",
        "dashboard": f"dashboard page `/app` ({JOBS} jobs)",
        "jobs": f"`GET /api/v1/jobs` ({JOBS} jobs, 100 listed)",
    }
    titles = {
        "paced": f"Paced: each connection sends one request every {args.pace:g} s",
        "saturated": "Saturated (wrk): each connection sends its next request at once",
    }
    for mode in MODES:
        hello = results[(mode, "hello")]
        hello_p99 = statistics.median(m.p99_ms for m in hello)
        hello_rate = statistics.median(m.per_second for m in hello)
        print(f"\n{titles[mode]}:\n")
        print(
            "| route | p50 (ms) | p99 (ms) | requests/s | p99 / hello's | rate / hello's | failed |"
        )
        print("|---|---|---|---|---|---|---|")
        for name, label in labels.items():
            measures = results[(mode, name)]
            p50 = statistics.median(m.p50_ms for m in measures)
            p99 = statistics.median(m.p99_ms for m in measures)
            rate = statistics.median(m.per_second for m in measures)
            failed = sum(m.failures for m in measures)
            print(
                f"| {label} | {p50:.1f} | {p99:.1f} | {rate:.0f} | {p99 / hello_p99:.2f} | "
                f"{rate / hello_rate:.2f} | {failed} |"
            )


if __name__ == "__main__":
    sys.exit(main())
