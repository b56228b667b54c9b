"""The samples of the sandbox overhead benchmark and their Markdown report."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bench.measure import markdown_table, median, samples, seconds

LAUNCH_TARGET = 1.3
# Backtest wall time against bare freqtrade on the host: up to a month, and longer.
SHORT_BACKTEST_DAYS = 45
SHORT_BACKTEST_TARGET = 1.3
BACKTEST_TARGET = 1.10


@dataclass(frozen=True)
class LaunchSample:
    to_container_start: float  # submit / `docker run` -> the container was started
    to_first_log: float  # submit / `docker run` -> freqtrade's first log line


@dataclass(frozen=True)
class BacktestSample:
    wall: float
    cpu: float  # user + system CPU time of the job's processes
    trades: int
    job_run: float | None = None  # the job's own started_at -> finished_at (sandbox only)


@dataclass(frozen=True)
class LaunchResult:
    timerange: str
    sandbox: list[LaunchSample]
    bare: list[LaunchSample]
    first_line: str  # freqtrade's first log line, as seen in a bare run


@dataclass(frozen=True)
class BacktestResult:
    timerange: str
    pairs: list[str]
    sandbox: list[BacktestSample]  # in the warm container waiting for the job
    sandbox_cold: list[BacktestSample]  # in a container created for the job
    bare: list[BacktestSample]
    bare_unlimited: list[BacktestSample]
    host: list[BacktestSample]


@dataclass
class Report:
    command: str
    started: datetime
    facts: list[tuple[str, str]]
    loads: list[tuple[str, str]] = field(default_factory=list)
    launch: LaunchResult | None = None
    backtest: BacktestResult | None = None

    def markdown(self) -> str:
        parts = [
            f"## Sandbox overhead — {self.started:%Y-%m-%d %H:%M} UTC",
            "",
            f"Command: `{self.command}`",
            "",
            markdown_table(["machine", ""], self.facts),
            "",
            markdown_table(["load average (1 / 5 / 15 min)", ""], self.loads),
        ]
        if self.launch:
            parts += ["", *launch_section(self.launch)]
        if self.backtest:
            parts += ["", *backtest_section(self.backtest)]
        return "\n".join(parts) + "\n"


def _verdict(ratio: float, target: float) -> str:
    return f"**{ratio:.2f}** (target ≤ {target}: {'met' if ratio <= target else 'missed'})"


def launch_section(result: LaunchResult) -> list[str]:
    rows = []
    for name, runs in (("sandbox: API submit", result.sandbox), ("bare `docker run`", result.bare)):
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
    ratio = median([r.to_first_log for r in result.sandbox]) / median(
        [r.to_first_log for r in result.bare]
    )
    header = ["path", "median (s)", "min (s)", "median to container started (s)", "samples (s)"]
    return [
        f"### Launch: start -> freqtrade's first log line "
        f"({len(result.sandbox)} runs each, backtest {result.timerange})",
        "",
        f"The line timed: `{result.first_line}`",
        "",
        markdown_table(header, rows),
        "",
        f"Ratio sandbox/bare of medians: {_verdict(ratio, LAUNCH_TARGET)}.",
    ]


def backtest_section(result: BacktestResult) -> list[str]:
    def row(name: str, walls: list[float], cpus: list[float] | None) -> list[str]:
        cpu = seconds(median(cpus)) if cpus else ""
        return [name, seconds(median(walls)), seconds(min(walls)), cpu, samples(walls)]

    sandbox, bare, unlimited, host = result.sandbox, result.bare, result.bare_unlimited, result.host
    cold = result.sandbox_cold
    job_runs = [run.job_run for run in sandbox if run.job_run is not None]
    rows = [
        row(
            "sandbox, warm container: submit -> `succeeded` (1 CPU)",
            [r.wall for r in sandbox],
            [r.cpu for r in sandbox],
        ),
        row("sandbox, warm container: the job's started_at -> finished_at", job_runs, None),
        row(
            "sandbox, container of its own: submit -> `succeeded` (1 CPU)",
            [r.wall for r in cold],
            [r.cpu for r in cold],
        ),
        row(
            "bare `docker run` of the same container -> exit (1 CPU)",
            [r.wall for r in bare],
            [r.cpu for r in bare],
        ),
        row(
            "bare `docker run`, same container without the CPU limit -> exit",
            [r.wall for r in unlimited],
            [r.cpu for r in unlimited],
        ),
        row(
            "host: bare freqtrade, same entry script (no CPU limit)",
            [r.wall for r in host],
            [r.cpu for r in host],
        ),
    ]
    trades = {r.trades for r in [*sandbox, *cold, *bare, *unlimited, *host]}
    same = "the same on every path" if len(trades) == 1 else "DIFFERENT: not the same work"
    sandbox_wall = median([r.wall for r in sandbox])
    cold_wall = median([r.wall for r in cold])
    start, end = (datetime.strptime(day, "%Y%m%d") for day in result.timerange.split("-"))
    short = (end - start).days <= SHORT_BACKTEST_DAYS
    target = SHORT_BACKTEST_TARGET if short else BACKTEST_TARGET
    bare_wall = median([r.wall for r in bare])
    unlimited_wall = median([r.wall for r in unlimited])
    host_wall = median([r.wall for r in host])
    header = ["path", "median (s)", "min (s)", "median CPU time (s)", "samples (s)"]
    return [
        f"### Backtest wall time: RsiQuick, {', '.join(result.pairs)}, 5m, {result.timerange} "
        f"({len(sandbox)} runs each)",
        "",
        markdown_table(header, rows),
        "",
        f"Trades per run: {', '.join(map(str, sorted(trades)))} ({same}).",
        "",
        "Ratio sandbox (warm container)/host of medians: "
        f"{_verdict(sandbox_wall / host_wall, target)}.",
        f"Ratio sandbox (container of its own)/host of medians: **{cold_wall / host_wall:.2f}**.",
        "Split (ratios of medians): the container without CPU limit/host "
        f"{unlimited_wall / host_wall:.2f}, with/without the CPU limit "
        f"{bare_wall / unlimited_wall:.2f}, sandbox (own container)/bare container "
        f"{cold_wall / bare_wall:.2f}.",
    ]
