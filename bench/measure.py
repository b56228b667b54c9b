"""Small helpers shared by the benchmarks: log timestamps, statistics, machine facts, tables."""

from __future__ import annotations

import os
import platform
import re
import signal
import statistics
from collections.abc import Sequence
from datetime import UTC, datetime
from types import FrameType

import docker

from fta.jobs.summary import BacktestSummary, parse_result_line

# freqtrade's log lines: "2026-01-02 03:04:05,678 - freqtrade.<logger> - INFO - ...".
_FREQTRADE_LOG = re.compile(
    r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}) - freqtrade", re.MULTILINE
)


def first_freqtrade_log(text: str) -> tuple[datetime, str]:
    """The time stamp and the line of freqtrade's first log line. The time is read as UTC:
    the job image has no local time zone, so its containers log in UTC."""
    match = _FREQTRADE_LOG.search(text)
    if match is None:
        raise RuntimeError(f"no freqtrade log line in the output:\n{text[-2000:]}")
    line = text[match.start() :].split("\n", 1)[0]
    stamp = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC)
    return stamp, line


def backtest_trades(output: str) -> int:
    """The trade count in a backtest's `FTA-RESULT:` line."""
    lines = [line for line in output.splitlines() if line.startswith("FTA-RESULT:")]
    summary = parse_result_line(lines[-1] if lines else None, kind="backtest")
    if not isinstance(summary, BacktestSummary):
        raise RuntimeError(f"the backtest printed no valid result:\n{output[-2000:]}")
    return summary.trades


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def seconds(value: float) -> str:
    return f"{value:.2f}"


def samples(values: Sequence[float]) -> str:
    return ", ".join(seconds(value) for value in values)


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def machine_facts(engine: docker.DockerClient) -> list[tuple[str, str]]:
    info = engine.info()
    memory_gib = info["MemTotal"] / 2**30
    return [
        ("CPU", f"{info['NCPU']} cores ({_cpu_model()})"),
        ("RAM", f"{memory_gib:.1f} GiB"),
        ("kernel", platform.release()),
        ("OS", info.get("OperatingSystem", "?")),
        ("Docker engine", info["ServerVersion"]),
        ("storage driver", info["Driver"]),
        ("cgroup", f"v{info.get('CgroupVersion', '?')}, {info['CgroupDriver']} driver"),
        ("Python (host)", platform.python_version()),
    ]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown model"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def stop_on_sigterm() -> None:
    """SIGTERM unwinds the benchmark's context managers, so everything it made is removed."""

    def stop(signum: int, _: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
