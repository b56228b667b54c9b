"""The hostile strategy corpus (tests/security/strategies/), run as real jobs.

Each strategy is uploaded and run through the API, by the sandbox's worker, as a real
freqtrade job in its hardened container. Each test checks that the attack failed, that the job
ended in a state that says why, and (once for the module, during the fork bomb) that other
tenants were served meanwhile. Jobs are submitted up front, so the worker runs two at a time
while the tests read their outcomes in turn; a watcher thread per job samples the job
container's cgroup counters while it runs.
"""

from __future__ import annotations

import base64
import functools
import io
import ipaddress
import json
import os
import secrets
import string
import subprocess
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from fta.redaction import MASK
from fta.settings import get_settings
from fta.worker.log_capture import TRUNCATION_NOTICE
from tests.integration.test_isolation import chain_counters, default_bridge_address, host_listener
from tests.security.api_support import move_to_test_plan
from tests.security.strategies import source
from tests.support.api import Client, sign_up, subscribe
from tests.support.docker_resources import local_docker
from tests.support.jobs import job_containers
from tests.support.netns import stand_in_internet_host
from tests.support.sandbox import GATEWAY_PORT, Sandbox

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
FIREWALL = REPO / "deploy" / "host-firewall.sh"
FINAL = {"succeeded", "failed", "cancelled", "timed_out", "oom_killed"}
BACKTEST = {
    "exchange": "binance",
    "pairs": ["BTC/USDT"],
    "timeframe": "5m",
    "timerange": "20240101-20240105",
    "stake_amount": 100,
    "max_open_trades": 1,
}
# The default plan (migration 0001).
PLAN_CPUS, PLAN_MEMORY_MIB, PLAN_PIDS = 1.0, 1024, 256
SHM_BYTES = 64 << 20  # Docker's default /dev/shm
FILLER_DISK_MIB = 64
LISTENER_PORT = 8080
PROXY_CONTAINER_PORT = 2375
CGROUP_MOUNT = Path("/sys/fs/cgroup")


# --- cgroup counters of a running job container -----------------------------------------


@dataclass(frozen=True)
class CgroupSample:
    at: float
    cpu_seconds: float
    nr_throttled: int
    pids_current: int
    pids_max: str
    pids_refused: int  # forks refused at the limit (pids.events `max`)
    pids_path: str
    dockerd_cpu_seconds: float | None  # the engine's own CPU time, outside any job's cgroup


def cgroup_dirs(pid: int) -> dict[str, Path]:
    """Each controller's cgroup directory of a host process (cgroup v1, or `unified` on v2)."""
    dirs = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if not controllers:
            unified = CGROUP_MOUNT / "unified"
            dirs["unified"] = (unified if unified.is_dir() else CGROUP_MOUNT) / path.lstrip("/")
        for controller in controllers.split(","):
            dirs[controller] = CGROUP_MOUNT / controllers / path.lstrip("/")
    return dirs


def flat_keyed(path: Path) -> dict[str, int]:
    return {key: int(value) for key, value in (line.split() for line in path.open())}


@functools.cache
def dockerd_pid() -> int | None:
    """The local engine's process, if it runs on this machine."""
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == "dockerd":
                return int(comm.parent.name)
        except OSError:
            continue
    return None


def dockerd_cpu_seconds() -> float | None:
    pid = dockerd_pid()
    if pid is None:
        return None
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_sample(pid: int) -> CgroupSample:
    dirs = cgroup_dirs(pid)
    if "cpu" in dirs:
        cpu_seconds = int((dirs["cpuacct"] / "cpuacct.usage").read_text()) / 1e9
        throttled = flat_keyed(dirs["cpu"] / "cpu.stat")["nr_throttled"]
        pids = dirs["pids"]
    else:
        stat = flat_keyed(dirs["unified"] / "cpu.stat")
        cpu_seconds, throttled = stat["usage_usec"] / 1e6, stat["nr_throttled"]
        pids = dirs["unified"]
    return CgroupSample(
        at=time.monotonic(),
        cpu_seconds=cpu_seconds,
        nr_throttled=throttled,
        pids_current=int((pids / "pids.current").read_text()),
        pids_max=(pids / "pids.max").read_text().strip(),
        pids_refused=flat_keyed(pids / "pids.events").get("max", 0),
        pids_path=str(pids),
        dockerd_cpu_seconds=dockerd_cpu_seconds(),
    )


class CgroupWatch(threading.Thread):
    """Samples a job container's cgroup counters twice a second while it runs."""

    def __init__(self, job_id: str) -> None:
        super().__init__(name=f"cgroup-watch-{job_id}", daemon=True)
        self.job_id = job_id
        self.samples: list[CgroupSample] = []
        self.errors: list[str] = []  # why rounds gave no sample, for the failure message
        self.stopping = threading.Event()

    def run(self) -> None:
        engine = local_docker()
        seen = False
        deadline = time.monotonic() + 900
        try:
            while not self.stopping.is_set() and time.monotonic() < deadline:
                try:
                    running = [
                        c for c in job_containers(engine, self.job_id) if c.status == "running"
                    ]
                    if running:
                        seen = True
                        pid = engine.api.inspect_container(running[0].id)["State"]["Pid"]
                        self.samples.append(read_sample(pid))
                    elif seen:
                        return
                except Exception as error:
                    # A busy engine or pool, or a container that ended between two calls,
                    # costs one round, never the watch.
                    self.errors.append(repr(error))
                self.stopping.wait(0.5)
        finally:
            engine.close()


# --- jobs ---------------------------------------------------------------------------------


@dataclass
class Launched:
    client: Client
    job_id: str
    watch: CgroupWatch
    params: dict[str, Any] | None


@dataclass(frozen=True)
class Finished:
    job: dict[str, Any]
    logs: str
    result: dict[str, Any] | None
    archive: bytes | None
    samples: list[CgroupSample]
    watch_errors: list[str]

    @property
    def probes(self) -> list[dict[str, Any]]:
        return probe_reports(self.logs)

    def probe(self, name: str) -> dict[str, Any]:
        found = [report for report in self.probes if report.get("probe") == name]
        assert found, (name, self.logs[-3000:])
        return found[0]

    def checks(self) -> dict[str, dict[str, Any]]:
        """The escape strategy's reports, by check (the first of each)."""
        checks: dict[str, dict[str, Any]] = {}
        for report in self.probes:
            if report.get("probe") == "escape":
                checks.setdefault(report["check"], report)
        return checks


def probe_reports(logs: str) -> list[dict[str, Any]]:
    return [
        json.loads(line[len("PROBE ") :])
        for line in logs.splitlines()
        if line.startswith("PROBE {")
    ]


@dataclass(frozen=True)
class Canaries:
    environment: str
    database: str
    volume: str

    def everything(self) -> dict[str, str]:
        """The canaries, and the real secrets of this test run's portal and worker."""
        settings = get_settings()
        database_password = make_url(settings.database_url.get_secret_value()).password
        assert database_password
        return {
            "environment canary": self.environment,
            "database canary": self.database,
            "volume canary": self.volume,
            "FTA_SECRET_KEY": settings.secret_key.get_secret_value(),
            "database password": str(database_password),
        }


@dataclass
class Corpus:
    http: TestClient
    attacker: Client
    victim: Client
    canaries: Canaries
    launched: dict[str, Launched] = field(default_factory=dict)
    finished: dict[str, Finished] = field(default_factory=dict)

    def launch(
        self,
        name: str,
        client: Client,
        strategy: str,
        params: dict[str, Any] | None = None,
        max_seconds: int | None = None,
    ) -> Launched:
        response = self.http.post(
            "/api/v1/strategies",
            json={"name": strategy, "source": source(strategy, params)},
            headers=client.auth,
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = {
            "kind": "backtest",
            "strategy_id": response.json()["id"],
            "config": BACKTEST,
        }
        if max_seconds is not None:
            body["max_seconds"] = max_seconds
        response = self.http.post("/api/v1/jobs", json=body, headers=client.auth)
        assert response.status_code == 202, response.text
        watch = CgroupWatch(response.json()["id"])
        watch.start()
        self.launched[name] = Launched(client, watch.job_id, watch, params)
        return self.launched[name]

    def job(self, name: str) -> dict[str, Any]:
        launched = self.launched[name]
        response = self.http.get(f"/api/v1/jobs/{launched.job_id}", headers=launched.client.auth)
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        return job

    def logs(self, name: str) -> str:
        launched = self.launched[name]
        response = self.http.get(
            f"/api/v1/jobs/{launched.job_id}/logs", headers=launched.client.auth
        )
        text: str = response.text
        return text

    def wait_for_probe(self, name: str, probe: str, timeout: float = 300) -> dict[str, Any]:
        """The first report `probe` of a job that is still running."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reports = [r for r in probe_reports(self.logs(name)) if r.get("probe") == probe]
            if reports:
                return reports[0]
            job = self.job(name)
            assert job["status"] not in FINAL, (job, self.logs(name)[-3000:])
            time.sleep(0.5)
        pytest.fail(f"{name} printed no {probe} report within {timeout} s")

    def finish(self, name: str, timeout: float = 420) -> Finished:
        if name in self.finished:
            return self.finished[name]
        launched = self.launched[name]
        auth = launched.client.auth
        deadline = time.monotonic() + timeout
        while (job := self.job(name))["status"] not in FINAL:
            if time.monotonic() > deadline:
                pytest.fail(f"{name} still {job['status']} after {timeout} s")
            time.sleep(0.5)
        result = archive = None
        if job["status"] == "succeeded":
            result = self.http.get(f"/api/v1/jobs/{launched.job_id}/result", headers=auth).json()
            response = self.http.get(f"/api/v1/jobs/{launched.job_id}/archive", headers=auth)
            archive = response.content if response.status_code == 200 else None
        launched.watch.join(timeout=30)
        self.finished[name] = Finished(
            job,
            self.logs(name),
            result,
            archive,
            list(launched.watch.samples),
            launched.watch.errors[-5:],
        )
        return self.finished[name]

    def cancel(self, name: str) -> None:
        launched = self.launched[name]
        self.http.post(f"/api/v1/jobs/{launched.job_id}/cancel", headers=launched.client.auth)


@pytest.fixture(scope="module")
def corpus(http: TestClient, sandbox: Sandbox) -> Iterator[Corpus]:
    # Paying clients: the attacker submits more jobs than a trial may queue.
    attacker, victim = subscribe(sign_up(http, "Attacker")), subscribe(sign_up(http, "Victim"))
    sandbox.forget_tenant(attacker.tenant_id)
    sandbox.forget_tenant(victim.tenant_id)
    canaries = Canaries(*(f"canary-{secrets.token_hex(10)}" for _ in range(3)))
    # The portal and the worker are this process: their environment is os.environ.
    os.environ["FTA_TEST_CANARY_SECRET"] = canaries.environment
    corpus = Corpus(http, attacker, victim, canaries)
    try:
        # Oldest first, two at a time: the victim's ordinary job runs beside the fork bomb.
        corpus.launch(
            "keeper",
            victim,
            "CanaryKeeper",
            {"volume_canary": canaries.volume, "database_canary": canaries.database},
        )
        corpus.launch("fork-bomb", attacker, "ForkBomb", max_seconds=30)
        corpus.launch("cpu-burn", attacker, "CpuBurner", max_seconds=25)
        corpus.launch("memory-bomb", attacker, "MemoryBomb")
        corpus.launch("escape", attacker, "EscapeArtist")
        corpus.launch("disk-filler", small_disk_attacker(http, sandbox), "DiskFiller")
        corpus.launch("log-flooder", attacker, "LogFlooder")
        corpus.launch("secret-printer", attacker, "SecretPrinter", printed_secrets())
        corpus.launch("deaf-sleeper", attacker, "DeafSleeper", max_seconds=15)
        yield corpus
    finally:
        del os.environ["FTA_TEST_CANARY_SECRET"]
        for name, launched in corpus.launched.items():
            if corpus.job(name)["status"] not in FINAL:
                corpus.cancel(name)
            launched.watch.stopping.set()


def small_disk_attacker(http: TestClient, sandbox: Sandbox) -> Client:
    """An attacker of its own on a plan with a small data disk, which it fills."""
    attacker = subscribe(sign_up(http, "Filler"))
    sandbox.forget_tenant(attacker.tenant_id)
    move_to_test_plan(attacker.tenant_id, "test-small-disk", "Small disk", disk_mb=FILLER_DISK_MIB)
    return attacker


def printed_secrets() -> dict[str, str]:
    """Secret-shaped values, made up for this run: none is written in the repository."""
    alnum = string.ascii_letters + string.digits

    def b64url(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64url(json.dumps({"sub": secrets.token_hex(8)}).encode())
    aws_tail = "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(16))
    return {
        "jwt": f"{header}.{payload}.{b64url(secrets.token_bytes(32))}",
        "aws_key_id": "AKIA" + aws_tail,
        "password": secrets.token_hex(10),
        # Shaped like a PayPal client secret: 80 letters and digits (one of each at least).
        "paypal_secret": "E" + "".join(secrets.choice(alnum) for _ in range(77)) + "7q",
        "url_password": secrets.token_hex(12),
    }


# --- resources: pids, memory, CPU ------------------------------------------------------


def test_a_fork_bomb_is_held_at_the_pids_limit_while_others_are_served(corpus: Corpus) -> None:
    report = corpus.wait_for_probe("fork-bomb", "fork-bomb")
    # The bomb is at its limit now: the engine and the API still answer at once.
    engine = local_docker()
    try:
        started = time.monotonic()
        assert engine.info()["ID"]
        docker_seconds = time.monotonic() - started
    finally:
        engine.close()
    started = time.monotonic()
    victim_jobs = corpus.http.get("/api/v1/jobs", headers=corpus.victim.auth)
    api_seconds = time.monotonic() - started
    assert victim_jobs.status_code == 200
    assert docker_seconds < 10 and api_seconds < 10, (docker_seconds, api_seconds)

    bomb = corpus.finish("fork-bomb")
    assert bomb.job["status"] == "timed_out", bomb.job
    assert "30 s" in bomb.job["error"]
    assert report["refused"] == "EAGAIN", report
    assert 0 < report["children"] < PLAN_PIDS, report
    assert bomb.samples, ("the job container was never sampled", bomb.watch_errors)
    assert {s.pids_max for s in bomb.samples} == {str(PLAN_PIDS)}
    assert max(s.pids_current for s in bomb.samples) <= PLAN_PIDS
    assert bomb.samples[-1].pids_refused > 0, bomb.samples[-1]
    assert f"/{corpus.attacker.tenant_id}/" in bomb.samples[-1].pids_path

    # The victim's ordinary job ran beside the bomb, and succeeded.
    keeper = corpus.finish("keeper")
    assert keeper.job["status"] == "succeeded", (keeper.job, keeper.logs[-3000:])
    assert keeper.job["started_at"] < bomb.job["finished_at"]
    assert keeper.job["finished_at"] > bomb.job["started_at"]


def test_a_memory_bomb_is_oom_killed(corpus: Corpus) -> None:
    bomb = corpus.finish("memory-bomb")
    assert bomb.job["status"] == "oom_killed", (bomb.job, bomb.logs[-3000:])
    assert f"{PLAN_MEMORY_MIB} MiB" in bomb.job["error"]
    allocated = [r["allocated_mib"] for r in bomb.probes if r.get("probe") == "memory-bomb"]
    assert allocated, "the bomb never started: populate_indicators was not reached"
    assert max(allocated) < PLAN_MEMORY_MIB
    # Metered at its peak, the plan's limit, however short its life.
    assert bomb.job["usage"]["memory_max_bytes"] >= PLAN_MEMORY_MIB << 20


def test_a_cpu_burn_on_all_cores_is_held_to_the_plans_cpu(corpus: Corpus) -> None:
    burn = corpus.finish("cpu-burn")
    assert burn.job["status"] == "timed_out", (burn.job, burn.logs[-3000:])
    assert burn.probe("cpu-burn")["processes"] >= 2
    samples = burn.samples
    assert len(samples) >= 10, samples
    # CPU time can grow by at most the plan's CPUs per second, over any stretch of 5 s or more.
    rates = [
        (later.cpu_seconds - earlier.cpu_seconds) / (later.at - earlier.at)
        for i, earlier in enumerate(samples)
        for later in samples[i + 1 :]
        if later.at - earlier.at >= 5
    ]
    assert rates and max(rates) <= PLAN_CPUS * 1.15, max(rates)
    # It did try for more: the scheduler held it back, again and again.
    assert samples[-1].nr_throttled > 0, samples[-1]
    assert samples[-1].cpu_seconds > 0.4 * (samples[-1].at - samples[0].at) * PLAN_CPUS


# --- disk and logs --------------------------------------------------------------------------


def test_disk_filling_is_refused(corpus: Corpus) -> None:
    filler = corpus.finish("disk-filler")
    assert filler.job["status"] == "succeeded", (filler.job, filler.logs[-3000:])
    writes = filler.probe("write-outside")["results"]
    assert writes and set(writes.values()) == {"EROFS"}, writes
    fills = {r["path"]: r for r in filler.probes if r.get("probe") == "fill"}
    tmp, shm = fills["/tmp/fta-fill"], fills["/dev/shm/fta-fill"]
    tmpfs_bytes = get_settings().job_tmpfs_bytes
    assert tmp["refused"] == "ENOSPC" and tmp["written"] <= tmpfs_bytes, tmp
    assert shm["refused"] == "ENOSPC" and shm["written"] <= SHM_BYTES, shm
    # The tenant's own volume is a disk of the plan's size: full, not the host's disk.
    volume = fills["/freqtrade/user_data/fta-fill"]
    assert volume["refused"] == "ENOSPC", volume
    assert FILLER_DISK_MIB // 2 << 20 < volume["written"] <= FILLER_DISK_MIB << 20, volume


def test_a_log_flood_is_capped(corpus: Corpus) -> None:
    flooder = corpus.finish("log-flooder")
    settings = get_settings()
    assert len(flooder.logs.encode()) <= settings.job_log_max_bytes + len(TRUNCATION_NOTICE)
    assert flooder.logs.endswith(TRUNCATION_NOTICE)
    assert flooder.probe("flood")["lines"] == 50_000
    assert "flood 049999" not in flooder.logs
    # The entry forwarded only the start of the flood: the engine's log never rotated, and the
    # result line came through.
    assert flooder.job["status"] == "succeeded", (flooder.job, flooder.logs[-3000:])
    assert flooder.result and flooder.result["strategy"] == "LogFlooder", flooder.result


def test_a_log_flood_costs_the_engine_little_cpu(corpus: Corpus) -> None:
    samples = [s for s in corpus.finish("log-flooder").samples if s.dockerd_cpu_seconds]
    assert len(samples) >= 10, "dockerd's CPU time could not be read"
    job_cpu = samples[-1].cpu_seconds - samples[0].cpu_seconds
    engine_cpu = (samples[-1].dockerd_cpu_seconds or 0) - (samples[0].dockerd_cpu_seconds or 0)
    assert engine_cpu <= 0.25 * job_cpu, (engine_cpu, job_cpu)


def test_secret_shaped_output_is_redacted(corpus: Corpus) -> None:
    printer = corpus.finish("secret-printer")
    values = corpus.launched["secret-printer"].params
    assert values
    assert printer.job["status"] == "failed", printer.job
    assert "SecretPrinter" in printer.job["error"] and MASK in printer.job["error"]
    for kind, value in values.items():
        assert value not in printer.logs, kind
        assert value not in printer.job["error"], kind
    for context in (
        "signed in with jwt",
        "aws key id",
        "connecting with password=",
        "paypal client secret",
        "postgresql://fta:",
    ):
        assert f"{context} {MASK}" in printer.logs or f"{context}{MASK}" in printer.logs, context


def test_a_strategy_deaf_to_sigterm_times_out(corpus: Corpus) -> None:
    sleeper = corpus.finish("deaf-sleeper")
    assert sleeper.job["status"] == "timed_out", (sleeper.job, sleeper.logs[-3000:])
    assert "15 s" in sleeper.job["error"]
    assert sleeper.probe("deaf-sleeper")["ignoring"] == ["SIGTERM", "SIGINT"]
    # Stopped at its deadline, without waiting on a signal it ignores.
    assert sleeper.job["usage"]["run_seconds"] <= 15 + 10, sleeper.job


# --- escape attempts ------------------------------------------------------------------------


def test_escape_attempts_fail(corpus: Corpus) -> None:
    escape = corpus.finish("escape")
    assert escape.job["status"] == "succeeded", (escape.job, escape.logs[-3000:])
    checks = escape.checks()
    status = checks["status"]
    for capabilities in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(status[capabilities], 16) == 0, status
    assert status["NoNewPrivs"] == "1" and status["Seccomp"] == "2", status
    assert status["Uid"] == ["10000"] * 4 and status["Gid"] == ["10000"] * 4, status
    setuid = [c for c in escape.probes if c.get("check") == "setuid-program"]
    assert len(setuid) == 3, setuid
    for program in setuid:
        # Each was running (waiting for a password) without having gained root.
        assert program["uids"] == ["10000"] * 4, program
    assert checks["mount-program"]["returncode"] != 0
    for name in (
        "mount",
        "unshare-user",
        "unshare-mount",
        "unshare-net",
        "init-module",
        "finit-module",
        "chroot",
        "setuid-0",
    ):
        assert checks[name]["result"] == -1 and checks[name]["errno"] == "EPERM", checks[name]
    for name in ("raw-icmp", "raw-tcp", "packet"):
        assert checks[name] == {**checks[name], "opened": False, "error": "PermissionError"}
    writes = checks["kernel-writes"]["results"]
    assert writes and "written" not in writes.values(), writes
    sockets = checks["docker-socket"]
    assert sockets["present"] == [] and sockets["sockets"] == [], sockets


def test_the_containers_pid_1_is_out_of_the_jobs_reach(corpus: Corpus) -> None:
    checks = corpus.finish("escape").checks()
    # PID 1 is the entry itself (no docker-init), and it is not dumpable.
    assert checks["pid-1"]["cmdline"][-1] == "/opt/fta/fta_job_entry.py", checks["pid-1"]
    check = checks["ptrace-pid-1"]
    assert check["result"] == -1 and check["errno"] == "EPERM", check
    for name in ("pid-1-stdout", "pid-1-environ", "pid-1-mem"):
        assert checks[name] == {**checks[name], "opened": False, "error": "PermissionError"}


def test_fake_result_and_archive_lines_are_only_text(corpus: Corpus) -> None:
    escape = corpus.finish("escape")
    assert escape.job["status"] == "succeeded", (escape.job, escape.logs[-3000:])
    assert escape.checks()["fake-markers"]["daemon"] > 1
    # The summary and the archive are the entry's: EscapeArtist never trades.
    assert escape.result and escape.result["trades"] == 0, escape.result
    assert escape.archive and zipfile.is_zipfile(io.BytesIO(escape.archive))
    # The forged lines, from stdout and stderr alike, were logged as the job's text.
    for marker in ("FTA-RESULT:", "FTA-ARCHIVE:name:forged.zip"):
        assert escape.logs.count(f"[job] {marker}") >= 2, marker
    assert "FTA-RESULT:" not in escape.logs.replace("[job] FTA-RESULT:", "")


# --- secrets ----------------------------------------------------------------------------


def test_secret_hunting_finds_nothing(corpus: Corpus) -> None:
    keeper = corpus.finish("keeper")
    assert keeper.job["status"] == "succeeded", keeper.job
    victim_vault = volume_path(corpus.victim.tenant_id) / "keeper" / "canary.txt"
    assert corpus.canaries.volume in victim_vault.read_text(), "the volume canary is missing"
    victim_strategies = corpus.http.get("/api/v1/strategies", headers=corpus.victim.auth).json()
    stored = corpus.http.get(
        f"/api/v1/strategies/{victim_strategies[0]['id']}", headers=corpus.victim.auth
    ).json()
    assert corpus.canaries.database in stored["source"], "the database canary is missing"

    corpus.launch(
        "hunter", corpus.attacker, "SecretHunter", {"other_tenant": corpus.victim.tenant_id}
    )
    hunter = corpus.finish("hunter")
    assert hunter.job["status"] == "succeeded", (hunter.job, hunter.logs[-3000:])
    loot = decoded_loot(hunter.logs)
    # The channel works: the hunter read and sent its own files.
    assert b"market-data" in loot and b"/etc/hosts" in loot
    own_volume = volume_path(corpus.attacker.tenant_id)
    assert (own_volume / "loot" / "loot.txt").read_bytes() == loot

    places = {
        "logs": hunter.logs.encode(),
        "decoded loot": loot,
        "error": str(hunter.job["error"]).encode(),
        "result": json.dumps(hunter.result).encode(),
        "archive": archive_members(hunter.archive),
        "own volume": b"".join(p.read_bytes() for p in own_volume.rglob("*") if p.is_file()),
    }
    for secret_name, value in corpus.canaries.everything().items():
        for place, content in places.items():
            assert value.encode() not in content, f"{secret_name} found in the job's {place}"

    report = hunter.probe("environ")
    environments = report["names"]
    own = environments["self"]
    assert not [name for name in own if name.startswith("FTA_BUNDLE_")], own
    for pid, names in environments.items():
        leaked = {"FTA_SECRET_KEY", "FTA_DATABASE_URL", "FTA_TEST_CANARY_SECRET"} & set(names)
        assert not leaked, (pid, leaked)
    # The entry (PID 1) keeps its initial environment block, bundle included, but is not
    # dumpable: no other process's environment can be read.
    others = {
        pid: names for pid, names in environments.items() if pid not in ("self", str(report["pid"]))
    }
    assert "1" in others, environments
    for pid, names in others.items():
        assert names == ["(unreadable)"], (pid, names)
    other_volume = hunter.probe("other-volume")["results"]
    assert other_volume and not any(r.startswith("listed") for r in other_volume.values())
    mounts = hunter.probe("mounts")["points"]
    assert not [point for point in mounts if corpus.victim.tenant_id in point], mounts


def volume_path(tenant_id: str) -> Path:
    engine = local_docker()
    try:
        # A tenant volume binds the tenant's own disk, mounted on the host at this path.
        return Path(engine.api.inspect_volume(f"fta-data-{tenant_id}")["Options"]["device"])
    finally:
        engine.close()


def decoded_loot(logs: str) -> bytes:
    lines = [line.split()[1:] for line in logs.splitlines() if line.startswith("LOOT ")]
    return b"".join(bytes.fromhex("".join(words)) for words in lines)


def archive_members(archive: bytes | None) -> bytes:
    assert archive, "the hunter's backtest produced no archive"
    with zipfile.ZipFile(io.BytesIO(archive)) as members:
        return b"".join(members.read(name) for name in members.namelist())


# --- network --------------------------------------------------------------------------------


def firewall(action: str, chain: str, metadata: str) -> None:
    env = {
        **os.environ,
        "FTA_FIREWALL_CHAIN": chain,
        "FTA_METADATA_ADDRESS": metadata,
        "FTA_TENANT_BRIDGE_PREFIX": get_settings().tenant_bridge_prefix,
    }
    subprocess.run(["bash", str(FIREWALL), action], env=env, check=True, timeout=60)


def control_addresses(sandbox: Sandbox, proxy_port: int) -> dict[str, tuple[str, int]]:
    """The gateway's address on the control network, and the socket proxy container's."""
    engine = local_docker()
    try:
        gateway = engine.api.inspect_container(sandbox.gateway_name)["NetworkSettings"]
        control = next(
            n["IPAddress"]
            for name, n in gateway["Networks"].items()
            if not name.startswith("fta-client-")
        )
        proxy = next(
            c
            for c in engine.api.containers()
            if any(p.get("PublicPort") == proxy_port for p in c["Ports"])
        )
        proxy_ip = next(iter(proxy["NetworkSettings"]["Networks"].values()))["IPAddress"]
    finally:
        engine.close()
    return {
        "gateway-control-address": (control, GATEWAY_PORT),
        "socket-proxy-container": (proxy_ip, PROXY_CONTAINER_PORT),
    }


def tenant_gateway_address(tenant_id: str) -> str:
    engine = local_docker()
    try:
        network = engine.api.inspect_network(f"fta-client-{tenant_id}")
    finally:
        engine.close()
    subnet = ipaddress.ip_network(network["IPAM"]["Config"][0]["Subnet"])
    return str(subnet.network_address + 2)


def test_the_network_reaches_only_the_gateway(
    corpus: Corpus, sandbox: Sandbox, docker_proxy_url: str
) -> None:
    marker = f"tenant-b-{secrets.token_hex(4)}"
    corpus.launch(
        "listener",
        corpus.victim,
        "Listener",
        {"port": LISTENER_PORT, "marker": marker, "serve_seconds": 300},
    )
    listening = corpus.wait_for_probe("listener", "listener")
    assert listening["answer"] == marker, listening  # it does answer, on its own address
    proxy_port = int(docker_proxy_url.rsplit(":", 1)[1])
    database_port = make_url(get_settings().database_url.get_secret_value()).port
    chain = f"FTA-S-{secrets.token_hex(3).upper()}"
    with ExitStack() as stack:
        stack.callback(corpus.cancel, "listener")
        internet = stack.enter_context(stand_in_internet_host())
        metadata = stack.enter_context(stand_in_internet_host())
        stack.callback(firewall, "remove", chain, metadata.address)
        firewall("apply", chain, metadata.address)
        host_token = f"host-{secrets.token_hex(4)}"
        host_port = stack.enter_context(host_listener(host_token))
        engine = local_docker()
        stack.callback(engine.close)
        docker0 = default_bridge_address(engine.api.inspect_network("bridge"))
        tcp = {
            "tenant-b-container": (listening["address"], LISTENER_PORT),
            "gateway-on-tenant-b-network": (
                tenant_gateway_address(corpus.victim.tenant_id),
                GATEWAY_PORT,
            ),
            **control_addresses(sandbox, proxy_port),
            "host-via-docker0": (docker0, host_port),
            "socket-proxy-via-docker0": (docker0, proxy_port),
            "internet-stand-in": (internet.address, internet.port),
            "metadata-stand-in": (metadata.address, metadata.port),
        }
        via_default_gateway = {
            "host-via-bridge": host_port,
            "socket-proxy-via-bridge": proxy_port,
            "postgres-via-bridge": database_port,
        }
        gateway = f"http://market-data:{GATEWAY_PORT}"
        urls = {
            "gateway-health": f"{gateway}/healthz",
            "gateway-served": f"{gateway}/binance/api/v3/time",
            "gateway-unlisted": f"{gateway}/binance/api/v3/account",
        }
        names = ["example.com", "pypi.org", f"fta-{secrets.token_hex(6)}.example.net"]
        params = {"tcp": tcp, "via_default_gateway": via_default_gateway, "http": urls}
        corpus.launch("prober", corpus.attacker, "NetworkProber", {**params, "dns": names})
        prober = corpus.finish("prober")
        counters = chain_counters(chain)

    assert prober.job["status"] == "succeeded", (prober.job, prober.logs[-3000:])
    reports = {(r["probe"], r["name"]): r for r in prober.probes if "name" in r}
    http = {name: reports[("http", name)] for name in urls}
    assert http["gateway-health"]["status"] == 200, http
    assert http["gateway-served"]["status"] == 200, http
    assert http["gateway-unlisted"]["status"] == 404, http
    for name in [*tcp, *via_default_gateway]:
        report = reports[("tcp", name)]
        assert report["connected"] is False, report
    for token in (marker, host_token, internet.token, metadata.token):
        assert token not in prober.logs
    for name in names:
        report = reports[("dns", name)]
        assert report["addresses"] == [], report
    # The rule made for the metadata address (here the stand-in) saw the attempt.
    metadata_drops = [count for count, rule in counters if metadata.address in rule]
    assert metadata_drops and metadata_drops[0] > 0, counters
    listener = corpus.finish("listener")
    assert listener.job["status"] == "cancelled", listener.job
