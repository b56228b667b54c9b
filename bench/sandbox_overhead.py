"""Sandbox overhead: what the platform adds to a freqtrade job, against baselines taken in
the same run. Prints a Markdown report to stdout (progress goes to stderr).

1. Launch: API submit -> freqtrade's first log line, versus a bare `docker run` of the same
   hardened container -> its first log line. Both are read on one clock: the host's UTC time
   just before the submit / the `docker run`, and freqtrade's own log time stamp.
2. Backtest wall time: submit -> `succeeded` (polled every 0.1 s), versus the same bundle run
   by the same entry script with bare freqtrade on the host; bare `docker run`s of the same
   container, with and without the plan's CPU limit, split the difference between the
   platform, the CPU limit and the container itself. The platform's jobs run in the warm
   container its worker started after the tenant's previous job (a tenant's next job), and,
   as a side of their own, in a container of their own (its warm container removed first:
   a tenant's first job after a pause).

After every platform job the bench waits until the next warm container has done its imports,
so that they never run beside the next measured run.

Samples are interleaved, the order rotating from one round to the next.
Run from the repository root with a throwaway Postgres (bench/run.sh does it all):
    .venv/bin/python -m bench.sandbox_overhead [--launch-runs 5] [--backtest-runs 3]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import docker
from tests.integration.strategies import source
from tests.support.docker_resources import DockerResources, local_docker

from bench.bare_docker import BareRun, run_bare
from bench.host_freqtrade import HostFreqtrade, host_freqtrade
from bench.measure import (
    backtest_trades,
    first_freqtrade_log,
    load_average,
    machine_facts,
    stop_on_sigterm,
)
from bench.overhead_report import (
    BacktestResult,
    BacktestSample,
    LaunchResult,
    LaunchSample,
    Report,
)
from bench.platform_under_test import STRATEGY, PlatformUnderTest, running_platform, utc_now
from fta.freqtrade.bundle import build_job_bundle, encode_bundle
from fta.freqtrade.options import first_startup_day, parse_job_config, parse_timerange
from fta.freqtrade.startup import declared_startup_candles
from fta.runtime.spec import LABEL_HANDOFF, LABEL_TENANT

PAIRS = ["BTC/USDT", "ETH/USDT"]
JOB_TIMEOUT = 1800.0
POLL_SECONDS = 0.1
SETTLE_SECONDS = 60.0
T = TypeVar("T")


def backtest_config(timerange: str) -> dict[str, Any]:
    return {
        "exchange": "binance",
        "pairs": PAIRS,
        "timeframe": "5m",
        "timerange": timerange,
        "stake_amount": 100,
        "max_open_trades": 2,
    }


def progress(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass
class Bench:
    under_test: PlatformUnderTest
    engine: docker.DockerClient
    bare_resources: DockerResources
    first_line: str = ""

    # --- the platform ------------------------------------------------------------------

    def sandbox_launch(self, config: dict[str, Any]) -> LaunchSample:
        self.settle()
        before = utc_now()
        job_id = self.under_test.submit_backtest(config)
        job = self.under_test.wait_succeeded(job_id, poll=POLL_SECONDS, timeout=JOB_TIMEOUT)
        self.settle()
        first_log, _ = first_freqtrade_log(self.under_test.logs(job_id))
        started = _parse_time(job["started_at"])
        return LaunchSample(
            (started - before).total_seconds(), (first_log - before).total_seconds()
        )

    def sandbox_backtest(self, config: dict[str, Any], *, warm: bool = True) -> BacktestSample:
        """One job through the API, in the warm container waiting for it, or (`warm` False)
        in a container of its own."""
        if warm:
            self.settle()
        else:
            self.drop_warm()
        cpu_before = self.under_test.tenant_cpu_seconds(self.engine)
        started = time.monotonic()
        job_id = self.under_test.submit_backtest(config)
        job = self.under_test.wait_succeeded(job_id, poll=POLL_SECONDS, timeout=JOB_TIMEOUT)
        wall = time.monotonic() - started
        cpu = self.under_test.tenant_cpu_seconds(self.engine) - cpu_before
        run = _parse_time(job["finished_at"]) - _parse_time(job["started_at"])
        self.settle()
        return BacktestSample(wall, cpu, self.under_test.trades(job_id), run.total_seconds())

    def _warm_ids(self) -> list[str]:
        tenant = self.under_test.client.tenant_id
        found = self.engine.api.containers(
            filters={"label": [f"{LABEL_HANDOFF}=1", f"{LABEL_TENANT}={tenant}"]}
        )
        return [str(container["Id"]) for container in found]

    def settle(self) -> None:
        """Waits until the tenant's warm container is started and idle (its CPU time stopped
        growing: freqtrade imported, waiting for its job)."""
        deadline = time.monotonic() + SETTLE_SECONDS
        previous = None
        while time.monotonic() < deadline:
            ids = self._warm_ids()
            if ids:
                stats = self.engine.api.stats(ids[0], stream=False)
                used = stats["cpu_stats"]["cpu_usage"]["total_usage"]
                if used and used == previous:
                    return
                previous = used
            time.sleep(0.5)
        raise RuntimeError(f"no idle warm container within {SETTLE_SECONDS} s")

    def drop_warm(self) -> None:
        for container_id in self._warm_ids():
            self.engine.api.remove_container(container_id, force=True)

    # --- the same container, started by hand ------------------------------------------

    def _bare_run(self, config: dict[str, Any], *, cpu_limit: bool = True) -> BareRun:
        """The worker's bundle for this job (with a run id of its own), in the container
        the worker would create, started by a plain `docker run`."""
        bundle = build_job_bundle(
            "backtest",
            parse_job_config("backtest", config),
            STRATEGY,
            source(STRATEGY),
            f"http://market-data:{self.under_test.settings.gateway_port}",
            run_id=str(uuid.uuid4()),
            paths=self.under_test.job_paths,
        )
        target = self.under_test.tenant_sandbox(self.engine, python_env=True)
        labels = self.bare_resources.labels
        return run_bare(
            self.engine,
            target,
            encode_bundle(bundle),
            labels,
            cpu_limit=cpu_limit,
            timeout=JOB_TIMEOUT,
        )

    def bare_launch(self, config: dict[str, Any]) -> LaunchSample:
        run = self._bare_run(config)
        self.first_line = run.first_line
        return LaunchSample(
            (run.started_at - run.before_run).total_seconds(),
            (run.first_log - run.before_run).total_seconds(),
        )

    def bare_backtest(self, config: dict[str, Any], *, cpu_limit: bool = True) -> BacktestSample:
        # The bare container runs in the tenant's parent cgroup too.
        cpu_before = self.under_test.tenant_cpu_seconds(self.engine)
        run = self._bare_run(config, cpu_limit=cpu_limit)
        cpu = self.under_test.tenant_cpu_seconds(self.engine) - cpu_before
        return BacktestSample(run.wall_seconds, cpu, backtest_trades(run.output))


def host_backtest(host: HostFreqtrade, config: dict[str, Any]) -> BacktestSample:
    run = host.run("backtest", config, (STRATEGY, source(STRATEGY)), timeout=JOB_TIMEOUT)
    return BacktestSample(run.wall_seconds, run.cpu_seconds, backtest_trades(run.stdout))


def interleaved(runs: int, sides: Sequence[Callable[[], T]], label: str) -> list[list[T]]:
    """`runs` samples of each side; round i starts with side i mod n, so that no side
    always runs first (or right after the same other one)."""
    results: list[list[T]] = [[] for _ in sides]
    for index in range(runs):
        for offset in range(len(sides)):
            side = (index + offset) % len(sides)
            results[side].append(sides[side]())
        progress(f"{label} {index + 1}/{runs}: " + "; ".join(str(r[-1]) for r in results))
    return results


def measure_launch(bench: Bench, timerange: str, runs: int, report: Report) -> LaunchResult:
    config = backtest_config(timerange)
    progress("launch warm-up: a bare docker run")
    bench.bare_launch(config)
    report.loads.append(("launch runs start", load_average()))
    sandbox, bare = interleaved(
        runs, [lambda: bench.sandbox_launch(config), lambda: bench.bare_launch(config)], "launch"
    )
    report.loads.append(("launch runs end", load_average()))
    return LaunchResult(timerange, sandbox, bare, bench.first_line)


def measure_backtest(
    bench: Bench, host: HostFreqtrade, timerange: str, runs: int, report: Report
) -> BacktestResult:
    config = backtest_config(timerange)
    progress("backtest warm-up: host cache fill and backtest, bare docker run")
    # The worker fills the strategy's startup candles before the range too: so does the host.
    start, end = parse_timerange(timerange)
    startup = declared_startup_candles(source(STRATEGY), STRATEGY)
    first = first_startup_day(start, config["timeframe"], startup)
    fill = {k: config[k] for k in ("exchange", "pairs", "timeframe")}
    fill["timerange"] = f"{first:%Y%m%d}-{end:%Y%m%d}"
    host.run("cache-fill", fill, timeout=JOB_TIMEOUT)
    host_backtest(host, config)
    bench.bare_backtest(config)
    report.loads.append(("backtest runs start", load_average()))
    sandbox, cold, bare, bare_unlimited, on_host = interleaved(
        runs,
        [
            lambda: bench.sandbox_backtest(config),
            lambda: bench.sandbox_backtest(config, warm=False),
            lambda: bench.bare_backtest(config),
            lambda: bench.bare_backtest(config, cpu_limit=False),
            lambda: host_backtest(host, config),
        ],
        "backtest",
    )
    report.loads.append(("backtest runs end", load_average()))
    return BacktestResult(timerange, PAIRS, sandbox, cold, bare, bare_unlimited, on_host)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Sandbox overhead benchmark (see the module).")
    parser.add_argument("--launch-runs", type=int, default=5, help="0 skips the launch part")
    parser.add_argument("--backtest-runs", type=int, default=3, help="0 skips the backtests")
    parser.add_argument("--launch-timerange", default="20240101-20240115")
    parser.add_argument("--backtest-timerange", default="20240101-20240401")
    args = parser.parse_args()
    launch_start, launch_end = parse_timerange(args.launch_timerange)
    backtest_start, backtest_end = parse_timerange(args.backtest_timerange)
    inside = backtest_start <= launch_start < launch_end <= backtest_end
    if args.launch_runs > 0 and not inside:
        # The warm-up fills the candle cache for the backtest timerange only.
        parser.error("--launch-timerange must lie within --backtest-timerange")
    return args


def main() -> None:
    args = parse_args()
    stop_on_sigterm()
    engine = local_docker()
    report = Report(
        command=shlex.join([".venv/bin/python", "-m", "bench.sandbox_overhead", *sys.argv[1:]]),
        started=datetime.now(UTC),
        facts=machine_facts(engine),
        loads=[("at start", load_average())],
    )
    try:
        with running_platform(engine) as under_test:
            bench = Bench(under_test, engine, DockerResources(engine))
            try:
                # Also fills the candle cache for both timeranges (the launch one is inside).
                progress("warm-up: a sandbox backtest")
                bench.sandbox_backtest(backtest_config(args.backtest_timerange), warm=False)
                if args.launch_runs > 0:
                    report.launch = measure_launch(
                        bench, args.launch_timerange, args.launch_runs, report
                    )
                if args.backtest_runs > 0:
                    with host_freqtrade() as host:
                        report.backtest = measure_backtest(
                            bench, host, args.backtest_timerange, args.backtest_runs, report
                        )
            finally:
                bench.bare_resources.cleanup()  # before the sandbox removes the tenant network
    finally:
        engine.close()
    print(report.markdown())


if __name__ == "__main__":
    main()
