"""Dry-run bot footprint: memory per idle bot and time from `start` to its first heartbeat.

N clients on the default plan (1 CPU, 1024 MiB, one bot each) start one idle dry-run bot
each (BTC/USDT and ETH/USDT, 5m, a strategy that never trades), one after the other, through
the REST API. Each start is timed to the bot's first freqtrade heartbeat and, in the same
round (the order alternating), against a bare `docker run` of the same container with the
same bundle on the engine's own socket. Once all N bots run and have settled, their
containers' memory cgroups are sampled over a window that spans a candle close, with the
stack's own containers and processes, for how many such bots a 24 GiB host holds.

Prints a Markdown report to stdout (progress goes to stderr). Run from the repository root
with a throwaway Postgres (bench/run.sh does it all):
    FTA_BENCH=bot_footprint bash bench/run.sh [--bots 5] [--observe-seconds 330]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
from docker.models.containers import Container
from tests.support.api import Client, sign_up
from tests.support.docker_resources import RUN_ID, DockerResources, local_docker

from bench.bare_docker import docker_run_args
from bench.measure import load_average, machine_facts, markdown_table, stop_on_sigterm
from bench.platform_under_test import PlatformUnderTest, running_platform, utc_now
from fta.freqtrade.bundle import build_bot_bundle, encode_bundle
from fta.freqtrade.markers import STATUS_PREFIX
from fta.freqtrade.options import parse_bot_config
from fta.runtime.cgroup import tenant_cgroup_relpath
from fta.runtime.docker_output import parse_docker_time
from fta.runtime.spec import LABEL_BOT

STRATEGY = "DoNothing"
# Never enters a trade and computes nothing: the bot's cost is freqtrade's own.
STRATEGY_SOURCE = '''"""An idle strategy: it never enters a trade."""

from pandas import DataFrame

from freqtrade.strategy import IStrategy


class DoNothing(IStrategy):
    INTERFACE_VERSION = 3
    timeframe = "5m"
    minimal_roi = {"0": 0.01}
    stoploss = -0.05
    startup_candle_count = 0

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        return dataframe
'''
BOT_CONFIG: dict[str, Any] = {
    "exchange": "binance",
    "pairs": ["BTC/USDT", "ETH/USDT"],
    "timeframe": "5m",
    "stake_amount": 100,
    "max_open_trades": 2,
    "dry_run_wallet": 1000,
}
HOST_GIB = 24
START_TIMEOUT = 300.0
POLL_SECONDS = 1.0
SAMPLE_SECONDS = 10.0
MIB = 1 << 20
CGROUP_MOUNT = Path("/sys/fs/cgroup")


def progress(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def mib(value: float) -> str:
    return f"{value / MIB:.0f}"


# --- memory: the container's cgroup, the host's processes ------------------------------------


@dataclass(frozen=True)
class CgroupMemory:
    """One reading of a container's memory cgroup (v1 names; v2 has the same figures)."""

    usage: int  # v1 memory.usage_in_bytes, v2 memory.current
    cache: int  # page cache, tmpfs included: v1 total_cache, v2 file
    shmem: int  # tmpfs pages: in the cache, yet not reclaimable without swap
    rss: int  # anonymous memory: v1 total_rss, v2 anon
    peak: int  # since the container started: v1 max_usage_in_bytes, v2 memory.peak

    @property
    def charged(self) -> int:
        """Usage minus the page cache the kernel can reclaim: what the limit bites on."""
        return self.usage - self.cache + self.shmem


def _flat(path: Path) -> dict[str, int]:
    pairs = (line.split() for line in path.read_text().splitlines())
    return {p[0]: int(p[1]) for p in pairs if len(p) == 2 and p[1].isdigit()}


def _cgroup_dirs(pid: int) -> tuple[Path, Path, int]:
    """The memory and CPU accounting directories of a process, and the cgroup version."""
    v1: dict[str, str] = {}
    unified = None
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            unified = path
        for controller in controllers.split(","):
            v1[controller] = path
    if "memory" in v1:
        cpu = next(d for d in ("cpuacct", "cpu,cpuacct") if (CGROUP_MOUNT / d).is_dir())
        return (
            CGROUP_MOUNT / "memory" / v1["memory"].lstrip("/"),
            CGROUP_MOUNT / cpu / v1["cpuacct"].lstrip("/"),
            1,
        )
    assert unified is not None
    directory = CGROUP_MOUNT / unified.lstrip("/")
    return directory, directory, 2


@dataclass(frozen=True)
class ContainerCgroup:
    memory_dir: Path
    cpu_dir: Path
    version: int

    @classmethod
    def of(cls, container: Container) -> ContainerCgroup:
        container.reload()
        return cls(*_cgroup_dirs(int(container.attrs["State"]["Pid"])))

    def memory(self) -> CgroupMemory:
        stat = _flat(self.memory_dir / "memory.stat")
        if self.version == 1:
            return CgroupMemory(
                usage=int((self.memory_dir / "memory.usage_in_bytes").read_text()),
                cache=stat["total_cache"],
                shmem=stat["total_shmem"],
                rss=stat["total_rss"],
                peak=int((self.memory_dir / "memory.max_usage_in_bytes").read_text()),
            )
        current = int((self.memory_dir / "memory.current").read_text())
        peak_file = self.memory_dir / "memory.peak"
        return CgroupMemory(
            usage=current,
            cache=stat["file"],
            shmem=stat["shmem"],
            rss=stat["anon"],
            peak=int(peak_file.read_text()) if peak_file.exists() else current,
        )

    def cpu_seconds(self) -> float:
        if self.version == 1:
            return int((self.cpu_dir / "cpuacct.usage").read_text()) / 1e9
        return _flat(self.cpu_dir / "cpu.stat")["usage_usec"] / 1e6


def pss(pid: int) -> int:
    """Proportional set size: shared pages split between the processes that map them."""
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    kib = next(int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:"))
    return kib * 1024


def processes() -> Iterator[tuple[int, int, str]]:
    """(pid, parent pid, command line) of every process on the host."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        yield int(entry.name), ppid, cmdline


def engine_side_bytes(container: Container, table: Sequence[tuple[int, int, str]]) -> int:
    """Host memory a container costs outside its cgroup: its containerd shim and, with the
    fuse-overlayfs storage driver, the FUSE daemon serving its root file system."""
    container.reload()
    marks = [f"-id {container.id}"]
    upper = (container.attrs.get("GraphDriver") or {}).get("Data", {}).get("UpperDir")
    if upper:
        marks.append(f"upperdir={upper}")
    return sum(pss(pid) for pid, _, cmd in table if any(mark in cmd for mark in marks))


def process_tree_pss(root: int, table: Sequence[tuple[int, int, str]]) -> int:
    members, grew = {root}, True
    while grew:
        more = {pid for pid, ppid, _ in table if ppid in members} - members
        members |= more
        grew = bool(more)
    return sum(pss(pid) for pid in members)


# --- starting bots ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StartSample:
    to_container_started: float  # start call -> the engine's State.StartedAt
    to_heartbeat: float  # start call -> freqtrade's first heartbeat
    to_api_running: float | None  # start call -> the API reads freqtrade_state RUNNING

    @property
    def started_to_heartbeat(self) -> float:
        return self.to_heartbeat - self.to_container_started

    def __str__(self) -> str:
        return f"{self.to_heartbeat:.2f} s"


@dataclass
class BenchBot:
    client: Client
    bot_id: str
    container: Container | None = None
    start_peak: int = 0  # the highest charged memory sampled while it started


@dataclass
class Bench:
    under_test: PlatformUnderTest
    engine: docker.DockerClient
    bare_resources: DockerResources

    def api(self, method: str, path: str, client: Client, **kwargs: Any) -> Any:
        response = self.under_test.http.request(
            method, f"/api/v1{path}", headers=client.auth, **kwargs
        )
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    def create_bot(self, client: Client, name: str) -> BenchBot:
        strategy = self.api(
            "POST", "/strategies", client, json={"name": STRATEGY, "source": STRATEGY_SOURCE}
        )
        body = {"name": name, "strategy_id": strategy["id"], "config": BOT_CONFIG}
        return BenchBot(client, str(self.api("POST", "/bots", client, json=body)["id"]))

    def bot(self, bot: BenchBot) -> dict[str, Any]:
        state: dict[str, Any] = self.api("GET", f"/bots/{bot.bot_id}", bot.client)
        return state

    def _running_container(self, bot_id: str) -> Container | None:
        found = self.engine.containers.list(filters={"label": f"{LABEL_BOT}={bot_id}"})
        mine = [c for c in found if c.labels.get(LABEL_BOT) == bot_id and c.status == "running"]
        return mine[0] if mine else None

    def platform_start(self, bot: BenchBot) -> StartSample:
        """API `start` -> the API reads freqtrade_state RUNNING. From then on the API's
        last_heartbeat_at is the time the container's entry saw freqtrade's heartbeat line
        (before it, that field holds the time of the container's last status report).
        Meanwhile the container's charged memory is sampled at every poll."""
        before = utc_now()
        self.api("POST", f"/bots/{bot.bot_id}/start", bot.client)
        deadline = time.monotonic() + START_TIMEOUT
        cgroup = None
        while True:
            if cgroup is None and (container := self._running_container(bot.bot_id)):
                bot.container, cgroup = container, ContainerCgroup.of(container)
            if cgroup is not None:
                bot.start_peak = max(bot.start_peak, cgroup.memory().charged)
            state = self.bot(bot)
            if state["freqtrade_state"] == "RUNNING":
                seen = utc_now()
                break
            if state["actual_state"] == "crashed" or time.monotonic() > deadline:
                raise RuntimeError(f"bot {bot.bot_id} has no heartbeat: {state}")
            time.sleep(POLL_SECONDS)
        assert bot.container is not None
        started = parse_docker_time(bot.container.attrs["State"]["StartedAt"])
        assert started is not None
        heartbeat = _parse_time(state["last_heartbeat_at"])
        return StartSample(
            (started - before).total_seconds(),
            (heartbeat - before).total_seconds(),
            (seen - before).total_seconds(),
        )

    def bare_start(self) -> StartSample:
        """The same bot container, flag for flag, with the same bundle (a bot id of its own,
        on the baseline client's network and disk), started by a plain `docker run` on the
        engine's socket; timed to the heartbeat its entry reports, then removed."""
        settings = self.under_test.settings
        bundle = build_bot_bundle(
            parse_bot_config(BOT_CONFIG),
            bot_id=uuid.uuid4(),
            strategy_name=STRATEGY,
            strategy_source=STRATEGY_SOURCE,
            gateway_url=f"http://market-data:{settings.gateway_port}",
            report_interval_s=settings.bot_report_seconds,
        )
        env = encode_bundle(bundle)
        target = self.under_test.tenant_sandbox(self.engine)
        args = docker_run_args(target, sorted(env), self.bare_resources.labels, cpu_limit=True)
        # A bot mounts the tenant's disk only: no candle cache.
        args = [a for a in args if not a.endswith(",target=/candles,readonly")]
        before = utc_now()
        done = subprocess.run(
            args,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"docker run failed: {done.stderr.strip()}")
        container = self.engine.containers.get(done.stdout.strip())
        try:
            heartbeat = self._reported_heartbeat(container)
            container.reload()
            started = parse_docker_time(container.attrs["State"]["StartedAt"])
            assert started is not None
        finally:
            container.remove(force=True, v=True)
        return StartSample(
            (started - before).total_seconds(), (heartbeat - before).total_seconds(), None
        )

    @staticmethod
    def _reported_heartbeat(container: Container) -> datetime:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            for line in container.logs(stdout=True, stderr=False).decode().splitlines():
                if line.startswith(STATUS_PREFIX):
                    report = json.loads(line.removeprefix(STATUS_PREFIX))
                    if report["freqtrade"]["heartbeat_at"]:
                        return _parse_time(report["freqtrade"]["heartbeat_at"])
            container.reload()
            if container.status == "exited":
                break
            time.sleep(POLL_SECONDS)
        tail = container.logs().decode(errors="replace")[-3000:]
        raise RuntimeError(f"the bare bot reported no heartbeat:\n{tail}")


# --- the report ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BotFootprint:
    start_peak: int  # charged, sampled while it started
    charged: list[int]  # over the window
    last: CgroupMemory
    outside: int  # shim and storage daemon, outside its cgroup
    cpu_share: float  # of one core, over the window


@dataclass
class Footprint:
    """Memory of the idle bots over the observation window, and the stack's."""

    bots: list[BotFootprint] = field(default_factory=list)
    stack: list[tuple[str, int]] = field(default_factory=list)
    window_seconds: float = 0.0


@dataclass
class Report:
    command: str
    started: datetime
    facts: list[tuple[str, str]]
    report_seconds: int
    converge_seconds: float
    os_reserve_mib: int
    limit_bytes: int = 0
    loads: list[tuple[str, str]] = field(default_factory=list)
    platform: list[StartSample] = field(default_factory=list)
    bare: list[StartSample] = field(default_factory=list)
    footprint: Footprint = field(default_factory=Footprint)

    def markdown(self) -> str:
        lines = [
            f"## Dry-run bots — {self.started:%Y-%m-%d %H:%M} UTC",
            "",
            f"`{self.command}`",
            "",
            markdown_table(["", ""], self.facts),
            "",
            "Load average (1 / 5 / 15 min): "
            + "; ".join(f"{when}: {load}" for when, load in self.loads),
            "",
            *self._starts(),
            "",
            *self._memory(),
        ]
        return "\n".join(lines)

    def _starts(self) -> list[str]:
        def row(name: str, runs: list[StartSample]) -> list[str]:
            beats = [s.to_heartbeat for s in runs]
            api = [s.to_api_running for s in runs if s.to_api_running is not None]
            return [
                name,
                f"{statistics.median(beats):.2f}",
                f"{max(beats):.2f}",
                f"{statistics.median(s.to_container_started for s in runs):.2f}",
                f"{statistics.median(s.started_to_heartbeat for s in runs):.2f}",
                f"{statistics.median(api):.2f}" if api else "",
                ", ".join(f"{b:.2f}" for b in beats),
            ]

        header = [
            "path", "median (s)", "max (s)", "median to container started (s)",
            "median container started -> heartbeat (s)", "median to API RUNNING (s)",
            "samples (s)",
        ]  # fmt: skip
        ratio = statistics.median(s.to_heartbeat for s in self.platform) / statistics.median(
            s.to_heartbeat for s in self.bare
        )
        return [
            f"### Start -> first heartbeat, {len(self.platform)} bots",
            "",
            markdown_table(
                header,
                [row("platform: API `start`", self.platform), row("bare `docker run`", self.bare)],
            ),
            "",
            f"Ratio platform/bare of the medians: **{ratio:.2f}** (worker convergence every "
            f"{self.converge_seconds:g} s, status report every {self.report_seconds} s).",
        ]

    def _memory(self) -> list[str]:
        fp = self.footprint
        rows = [
            [
                f"bot {index + 1}",
                mib(bot.start_peak),
                mib(statistics.median(bot.charged)),
                mib(max(bot.charged)),
                mib(bot.last.rss),
                mib(bot.last.cache),
                mib(bot.last.shmem),
                mib(bot.last.peak),
                mib(bot.outside),
                f"{100 * bot.cpu_share:.1f}",
            ]
            for index, bot in enumerate(fp.bots)
        ]
        header = [
            "bot", "max charged while starting (MiB)", "median charged (MiB)",
            "max charged (MiB)", "rss (MiB)", "cache (MiB)",
            "shmem (MiB)", "peak usage since start (MiB)", "shim + storage daemon (MiB)",
            "CPU (% of a core)",
        ]  # fmt: skip
        per_bot = max(max(bot.charged) for bot in fp.bots)
        engine_side = max(bot.outside for bot in fp.bots)
        stack = sum(size for _, size in fp.stack)
        budget = HOST_GIB * 1024 * MIB - stack - self.os_reserve_mib * MIB
        limit = self.limit_bytes
        by_use = math.floor(budget / (per_bot + engine_side))
        by_limit = math.floor(budget / (limit + engine_side))
        stack_rows = [[name, mib(size)] for name, size in fp.stack]
        return [
            f"### Memory of an idle bot, {len(fp.bots)} bots, {fp.window_seconds:.0f} s window",
            "",
            markdown_table(header, rows),
            "",
            "Charged = usage - page cache + tmpfs (cgroup v1: memory.usage_in_bytes - "
            "total_cache + total_shmem; v2: memory.current - file + shmem), sampled every "
            f"{SAMPLE_SECONDS:g} s. Other columns: the last sample.",
            "",
            "The stack:",
            "",
            markdown_table(["part", "MiB"], [*stack_rows, ["total", mib(stack)]]),
            "",
            f"Fit in {HOST_GIB} GiB, less the stack ({mib(stack)} MiB) and "
            f"{self.os_reserve_mib} MiB for the OS: budget {mib(budget)} MiB.",
            f"- by measured use ({mib(per_bot)} MiB, the highest sample of any bot, + "
            f"{mib(engine_side)} MiB outside the cgroup): **{by_use} bots**",
            f"- by the reserved limit ({mib(limit)} MiB + {mib(engine_side)} MiB): "
            f"**{by_limit} bots**",
        ]


# --- the run ---------------------------------------------------------------------------------


def measure_starts(bench: Bench, bots: list[BenchBot], report: Report) -> None:
    """One platform start and one bare start per round, the first alternating."""
    report.loads.append(("starts begin", load_average()))
    for index, bot in enumerate(bots):
        platform_first = index % 2 == 0
        if platform_first:
            report.platform.append(bench.platform_start(bot))
        report.bare.append(bench.bare_start())
        if not platform_first:
            report.platform.append(bench.platform_start(bot))
        progress(
            f"round {index + 1}/{len(bots)}: platform {report.platform[-1]}, "
            f"bare {report.bare[-1]}; load {load_average()}"
        )
    report.loads.append(("starts end", load_average()))


def observe(
    bench: Bench, bots: list[BenchBot], seconds: float, postgres_pid: int | None
) -> Footprint:
    """Samples the running bots' cgroups over the window, then the stack once."""
    cgroups = []
    for bot in bots:
        assert bot.container is not None
        cgroups.append(ContainerCgroup.of(bot.container))
    cpu_before = [cgroup.cpu_seconds() for cgroup in cgroups]
    samples: list[list[CgroupMemory]] = [[] for _ in bots]
    began = time.monotonic()
    while True:
        for cgroup, taken in zip(cgroups, samples, strict=True):
            taken.append(cgroup.memory())
        if time.monotonic() - began >= seconds:
            break
        time.sleep(SAMPLE_SECONDS)
    window = time.monotonic() - began
    cpu = [c.cpu_seconds() - before for c, before in zip(cgroups, cpu_before, strict=True)]
    for bot in bots:
        state = bench.bot(bot)
        if state["actual_state"] != "running" or state["open_trades"]:
            raise RuntimeError(f"bot {bot.bot_id} is not an idle running bot: {state}")
    table = list(processes())
    footprint = Footprint(stack=stack_memory(bench, table, postgres_pid), window_seconds=window)
    for bot, taken, used in zip(bots, samples, cpu, strict=True):
        assert bot.container is not None
        footprint.bots.append(
            BotFootprint(
                start_peak=bot.start_peak,
                charged=[reading.charged for reading in taken],
                last=taken[-1],
                outside=engine_side_bytes(bot.container, table),
                cpu_share=used / window,
            )
        )
    return footprint


def stack_memory(
    bench: Bench, table: Sequence[tuple[int, int, str]], postgres_pid: int | None
) -> list[tuple[str, int]]:
    """The stack's containers (the gateway, the socket proxy), processes and Docker."""
    parts = []
    for container in bench.engine.containers.list(filters={"label": f"fta.test.run={RUN_ID}"}):
        if container.labels.get("fta.test.run") != RUN_ID or LABEL_BOT in container.labels:
            continue
        charged = ContainerCgroup.of(container).memory().charged
        outside = engine_side_bytes(container, table)
        parts.append((f"container `{container.name}` (charged + shim/storage daemon)",
                      charged + outside))  # fmt: skip
    # Production runs the portal and the worker as two processes of the same package.
    parts.append(("portal + worker: this process, counted twice (PSS)", 2 * pss(os.getpid())))
    if postgres_pid is not None:
        parts.append(("Postgres, all its processes (PSS)", process_tree_pss(postgres_pid, table)))
    for daemon in ("/usr/sbin/dockerd", "containerd --config"):
        pids = [pid for pid, _, cmd in table if cmd.startswith(daemon)]
        parts.append((f"{daemon.split()[0]} (PSS)", sum(pss(pid) for pid in pids)))
    return parts


def postgres_pid(pid_file: str) -> int | None:
    try:
        return int(Path(pid_file).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def remove_tenant_cgroups(engine: docker.DockerClient, tenants: list[str]) -> None:
    """The tenants' parent cgroups. The engine removes a container's own cgroup a moment
    after the container, so the sandbox's single try right after the removal can miss."""
    from fta.settings import get_settings

    if not tenants:
        return
    root = get_settings().tenant_cgroup_root
    driver = engine.info()["CgroupDriver"]
    hierarchies = [CGROUP_MOUNT, *(p for p in CGROUP_MOUNT.iterdir() if p.is_dir())]
    left = [
        directory
        for tenant in tenants
        for hierarchy in hierarchies
        if (
            directory := hierarchy / tenant_cgroup_relpath(tenant, driver=driver, root=root)
        ).is_dir()
    ]
    deadline = time.monotonic() + 30
    while left and time.monotonic() < deadline:
        for directory in list(left):
            try:
                directory.rmdir()  # only succeeds once empty: never removes a live one
                left.remove(directory)
            except OSError:
                pass
        time.sleep(0.5)
    if left:
        progress(f"cgroups still in use, left in place: {', '.join(map(str, left))}")


def run(args: argparse.Namespace, report: Report, engine: docker.DockerClient) -> None:
    tenants: list[str] = []
    with ExitStack() as stack:
        # Runs once the platform has removed its containers.
        stack.callback(remove_tenant_cgroups, engine, tenants)
        under_test = stack.enter_context(running_platform(engine))
        tenants.append(under_test.client.tenant_id)
        bench = Bench(under_test, engine, DockerResources(engine))
        # Before the platform's cleanup removes the tenant networks.
        stack.callback(bench.bare_resources.cleanup)
        report.report_seconds = under_test.settings.bot_report_seconds
        report.converge_seconds = under_test.settings.bot_converge_seconds
        report.limit_bytes = under_test.tenant_sandbox(engine).limits.memory_bytes
        progress("warm-up: the baseline client's bot (its network and disk), a bare bot")
        warm = bench.create_bot(under_test.client, "warm-up")
        bench.platform_start(warm)
        bench.api("POST", f"/bots/{warm.bot_id}/stop", warm.client)
        bench.bare_start()
        bots = []
        for index in range(args.bots):
            client = sign_up(under_test.http, f"Bench{index}")
            under_test.sandbox.forget_tenant(client.tenant_id)
            tenants.append(client.tenant_id)
            bots.append(bench.create_bot(client, f"idle-{index}"))
        measure_starts(bench, bots, report)
        # Settled: two status reports after the last bot's heartbeat, then the window.
        time.sleep(2 * report.report_seconds)
        report.loads.append(("window begins", load_average()))
        progress(f"observing {args.bots} idle bots for {args.observe_seconds:g} s")
        report.footprint = observe(
            bench, bots, args.observe_seconds, postgres_pid(args.postgres_pid_file)
        )
        report.loads.append(("window ends", load_average()))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Dry-run bot footprint (see the module).")
    parser.add_argument("--bots", type=int, default=5, help="idle bots to start (N)")
    parser.add_argument(
        "--observe-seconds", type=float, default=330.0,
        help="memory window once all bots run; the default spans a 5m candle close",
    )  # fmt: skip
    parser.add_argument("--os-reserve-mib", type=int, default=1024, help="kept for the OS")
    parser.add_argument(
        "--postgres-pid-file", default=".cache/bench-postgres/data/postmaster.pid",
        help="the throwaway Postgres whose memory counts as the stack's",
    )  # fmt: skip
    args = parser.parse_args()
    if args.bots < 1:
        parser.error("--bots must be at least 1")
    return args


def main() -> None:
    args = parse_args()
    stop_on_sigterm()
    engine = local_docker()
    report = Report(
        command=shlex.join([".venv/bin/python", "-m", "bench.bot_footprint", *sys.argv[1:]]),
        started=datetime.now(UTC),
        facts=machine_facts(engine),
        report_seconds=0,
        converge_seconds=0.0,
        os_reserve_mib=args.os_reserve_mib,
        loads=[("at start", load_average())],
    )
    try:
        run(args, report, engine)
    finally:
        engine.close()
    print(report.markdown())


if __name__ == "__main__":
    main()
