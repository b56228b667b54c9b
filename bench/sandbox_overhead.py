"""Sandbox overhead: what the platform adds to a freqtrade job, against a baseline taken in
the same run. Prints a Markdown report to stdout (progress goes to stderr).

1. Launch: API submit -> freqtrade's first log line, versus a bare `docker run` of the same
   hardened container -> its first log line. Both ends are read on the same clock: the host's
   UTC time just before the submit / the `docker run`, and freqtrade's own log time stamp.
2. Backtest wall time: submit -> `succeeded` (polled), versus the same bundle run by the same
   entry script with bare freqtrade on the host.

Run from the repository root with a throwaway Postgres (bench/run.sh does it all):
    .venv/bin/python -m bench.sandbox_overhead [--launch-runs 5] [--backtest-runs 3]
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType
from typing import Any, TypeVar

import docker
from tests.integration.strategies import source
from tests.support.docker_resources import DockerResources, local_docker

from bench.bare_docker import run_bare
from bench.host_freqtrade import HostFreqtrade, backtest_trades, host_freqtrade
from bench.measure import (
    first_freqtrade_log_time,
    load_average,
    machine_facts,
    markdown_table,
    median,
    samples,
    seconds,
)
from bench.platform_under_test import STRATEGY, PlatformUnderTest, running_platform, utc_now
from fta.jobs.freqtrade_config import build_job_bundle, encode_bundle, parse_job_config

PAIRS = ["BTC/USDT", "ETH/USDT"]
JOB_TIMEOUT = 1800.0
LAUNCH_TARGET = 1.3
BACKTEST_TARGET = 1.10
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


@dataclass(frozen=True)
class LaunchSample:
    to_container_start: float  # submit / `docker run` -> the container was started
    to_first_log: float  # submit / `docker run` -> freqtrade's first log line


@dataclass(frozen=True)
class BacktestSample:
    wall: float
    job_run: float | None  # the job's own started_at -> finished_at (sandbox only)
    trades: int


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def sandbox_launch(under_test: PlatformUnderTest, config: dict[str, Any]) -> LaunchSample:
    before = utc_now()
    job_id = under_test.submit_backtest(config)
    job = under_test.wait_succeeded(job_id, poll=0.2, timeout=JOB_TIMEOUT)
    first_log = first_freqtrade_log_time(under_test.logs(job_id))
    started = _parse_time(job["started_at"])
    return LaunchSample((started - before).total_seconds(), (first_log - before).total_seconds())


def bare_launch(
    under_test: PlatformUnderTest,
    engine: docker.DockerClient,
    bare: DockerResources,
    config: dict[str, Any],
) -> LaunchSample:
    """The worker's bundle for this job (its own run id), in a container started by hand."""
    bundle = build_job_bundle(
        "backtest",
        parse_job_config("backtest", config),
        STRATEGY,
        source(STRATEGY),
        f"http://market-data:{under_test.settings.gateway_port}",
        run_id=str(uuid.uuid4()),
    )
    target = under_test.tenant_sandbox(engine)
    run = run_bare(engine, target, encode_bundle(bundle), bare.labels, timeout=JOB_TIMEOUT)
    return LaunchSample(
        (run.started_at - run.before_run).total_seconds(),
        (run.first_log - run.before_run).total_seconds(),
    )


def sandbox_backtest(under_test: PlatformUnderTest, config: dict[str, Any]) -> BacktestSample:
    started = time.monotonic()
    job_id = under_test.submit_backtest(config)
    job = under_test.wait_succeeded(job_id, poll=0.2, timeout=JOB_TIMEOUT)
    wall = time.monotonic() - started
    job_run = (_parse_time(job["finished_at"]) - _parse_time(job["started_at"])).total_seconds()
    return BacktestSample(wall, job_run, under_test.trades(job_id))


def host_backtest(host: HostFreqtrade, config: dict[str, Any]) -> BacktestSample:
    run = host.run("backtest", config, (STRATEGY, source(STRATEGY)), timeout=JOB_TIMEOUT)
    return BacktestSample(run.wall_seconds, None, backtest_trades(run))


def interleaved(
    runs: int, first: Callable[[], T], second: Callable[[], T], label: str
) -> tuple[list[T], list[T]]:
    """`runs` samples of each; the order alternates so that neither side always goes first."""
    a: list[T] = []
    b: list[T] = []
    for index in range(runs):
        order = [(first, a), (second, b)] if index % 2 == 0 else [(second, b), (first, a)]
        for measure, sink in order:
            sink.append(measure())
        progress(f"{label} {index + 1}/{runs}: sandbox {a[-1]}, baseline {b[-1]}")
    return a, b


@dataclass
class Report:
    command: str
    started: datetime
    facts: list[tuple[str, str]]
    loads: list[tuple[str, str]]
    launch: tuple[list[LaunchSample], list[LaunchSample]] | None = None
    backtest: tuple[list[BacktestSample], list[BacktestSample]] | None = None

    def markdown(self, args: argparse.Namespace) -> str:
        parts = [
            f"## Sandbox overhead — {self.started:%Y-%m-%d %H:%M} UTC",
            "",
            f"Command: `{self.command}`",
            "",
            markdown_table(["machine", ""], self.facts),
            "",
            markdown_table(["load average (1/5/15 min)", ""], self.loads),
        ]
        if self.launch:
            parts += ["", *self._launch_section(args)]
        if self.backtest:
            parts += ["", *self._backtest_section(args)]
        return "\n".join(parts) + "\n"

    def _launch_section(self, args: argparse.Namespace) -> list[str]:
        assert self.launch is not None
        sandbox, bare = self.launch
        rows = []
        for name, runs in (("sandbox (API submit)", sandbox), ("bare `docker run`", bare)):
            first_log = [run.to_first_log for run in runs]
            to_start = [run.to_container_start for run in runs]
            rows.append(
                [
                    name,
                    seconds(median(first_log)),
                    seconds(min(first_log)),
                    seconds(median(to_start)),
                    samples(first_log),
                ]
            )
        ratio = median([r.to_first_log for r in sandbox]) / median([r.to_first_log for r in bare])
        verdict = "met" if ratio <= LAUNCH_TARGET else "missed"
        return [
            f"### Launch: start -> freqtrade's first log line ({args.launch_runs} runs each, "
            f"backtest {args.launch_timerange})",
            "",
            markdown_table(
                [
                    "path",
                    "median (s)",
                    "min (s)",
                    "median to container started (s)",
                    "samples (s)",
                ],
                rows,
            ),
            "",
            f"Ratio sandbox/bare of medians: **{ratio:.2f}** (target ≤ {LAUNCH_TARGET}: "
            f"{verdict}).",
        ]

    def _backtest_section(self, args: argparse.Namespace) -> list[str]:
        assert self.backtest is not None
        sandbox, host = self.backtest
        job_runs = [run.job_run for run in sandbox if run.job_run is not None]
        rows = [
            [
                "sandbox: submit -> succeeded (1 CPU)",
                seconds(median([r.wall for r in sandbox])),
                seconds(min(r.wall for r in sandbox)),
                samples([r.wall for r in sandbox]),
                str(sandbox[0].trades),
            ],
            [
                "sandbox: job started_at -> finished_at",
                seconds(median(job_runs)),
                seconds(min(job_runs)),
                samples(job_runs),
                "",
            ],
            [
                "host: bare freqtrade, same entry (no CPU limit)",
                seconds(median([r.wall for r in host])),
                seconds(min(r.wall for r in host)),
                samples([r.wall for r in host]),
                str(host[0].trades),
            ],
        ]
        ratio = median([r.wall for r in sandbox]) / median([r.wall for r in host])
        verdict = "met" if ratio <= BACKTEST_TARGET else "missed"
        return [
            f"### Backtest wall time: RsiQuick, {', '.join(PAIRS)}, 5m, "
            f"{args.backtest_timerange} ({args.backtest_runs} runs each)",
            "",
            markdown_table(["path", "median (s)", "min (s)", "samples (s)", "trades"], rows),
            "",
            f"Ratio sandbox/host of medians: **{ratio:.2f}** (target ≤ {BACKTEST_TARGET}: "
            f"{verdict}).",
        ]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--launch-runs", type=int, default=5)
    parser.add_argument("--backtest-runs", type=int, default=3)
    parser.add_argument("--launch-timerange", default="20240101-20240115")
    parser.add_argument("--backtest-timerange", default="20240101-20240401")
    parser.add_argument("--skip-launch", action="store_true")
    parser.add_argument("--skip-backtest", action="store_true")
    return parser.parse_args()


def _stop_on_sigterm() -> None:
    def stop(signum: int, _: FrameType | None) -> None:
        raise SystemExit(128 + signum)  # unwinds the context managers: everything is removed

    signal.signal(signal.SIGTERM, stop)


def main() -> None:
    args = parse_args()
    _stop_on_sigterm()
    engine = local_docker()
    report = Report(
        command=shlex.join([".venv/bin/python", "-m", "bench.sandbox_overhead", *sys.argv[1:]]),
        started=datetime.now(UTC),
        facts=machine_facts(engine),
        loads=[("at start", load_average())],
    )
    launch_config = backtest_config(args.launch_timerange)
    long_config = backtest_config(args.backtest_timerange)
    try:
        with running_platform(engine) as under_test:
            progress("warm-up: a sandbox backtest (it fills the candle cache)")
            sandbox_backtest(under_test, long_config)
            if not args.skip_launch:
                report.launch = measure_launch(under_test, engine, launch_config, args, report)
            if not args.skip_backtest:
                report.backtest = measure_backtest(under_test, long_config, args, report)
    finally:
        engine.close()
    print(report.markdown(args))


def measure_launch(
    under_test: PlatformUnderTest,
    engine: docker.DockerClient,
    config: dict[str, Any],
    args: argparse.Namespace,
    report: Report,
) -> tuple[list[LaunchSample], list[LaunchSample]]:
    bare = DockerResources(engine)
    try:
        progress("warm-up: a bare docker run")
        bare_launch(under_test, engine, bare, config)
        report.loads.append(("launch runs start", load_average()))
        result = interleaved(
            args.launch_runs,
            lambda: sandbox_launch(under_test, config),
            lambda: bare_launch(under_test, engine, bare, config),
            "launch",
        )
        report.loads.append(("launch runs end", load_average()))
        return result
    finally:
        bare.cleanup()  # before the sandbox removes the tenant's network


def measure_backtest(
    under_test: PlatformUnderTest,
    config: dict[str, Any],
    args: argparse.Namespace,
    report: Report,
) -> tuple[list[BacktestSample], list[BacktestSample]]:
    with host_freqtrade() as host:
        progress("host: a cache fill, then a warm-up backtest")
        data_options = ("exchange", "pairs", "timeframe", "timerange")
        host.run("cache-fill", {k: config[k] for k in data_options}, timeout=JOB_TIMEOUT)
        host_backtest(host, config)
        report.loads.append(("backtest runs start", load_average()))
        result = interleaved(
            args.backtest_runs,
            lambda: sandbox_backtest(under_test, config),
            lambda: host_backtest(host, config),
            "backtest",
        )
        report.loads.append(("backtest runs end", load_average()))
        return result


if __name__ == "__main__":
    main()
