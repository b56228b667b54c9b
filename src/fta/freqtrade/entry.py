#!/usr/bin/env python3
"""Entry point of an fta freqtrade job container, and its PID 1.

0. Makes itself non-dumpable before anything else: the job's processes share its uid, and
   must neither ptrace it nor read its /proc entries (its initial environment, its stdout).
1. Joins FTA_BUNDLE_0..N (base64 of gzipped JSON, built by fta.freqtrade.bundle) and
   removes them from the environment before anything else runs. On ECS the same text waits
   in S3 and FTA_BUNDLE_URL holds its presigned address instead (fta.runtime.ecs.runner).
   A warm container (FTA_WAIT_FOR_JOB=1) instead starts freqtrade at once, which imports
   itself and waits for its arguments, and receives the same text later on a unix socket in
   /tmp from `fta_job_entry.py --hand-off`, which the worker execs with the bundle in its
   environment; the socket is removed before the job's freqtrade gets its arguments.
2. Writes <job_dir>/config.json and <job_dir>/strategies/<strategy_name>.py.
3. Runs `freqtrade <argv>` once (none for a client's download, cut from the candle cache) in
   its own process group; a cache fill downloads only what the cache lacks into its private
   directory, then merges it into the cache files, each replaced whole. Its
   stdout and stderr come back through pipes and are forwarded line by line, up to
   `OUTPUT_MAX_BYTES` for both together, then drained and discarded (so a flood costs the
   job's own CPU, not the engine's); a forwarded line that starts like one of our markers is
   escaped. SIGTERM/SIGINT are forwarded to the group. When freqtrade exits, the rest of its
   group is killed and, as PID 1, every other process of the container too; as PID 1 it also
   reaps every orphan.
4. On success, reads freqtrade's own result files and prints, as the LAST stdout line,
   `FTA-RESULT:` + a compact, size-capped JSON summary (with the SHA-256 of the candles the run
   used; a backtest or hyperopt whose freqtrade used another startup candle count than the
   strategy class declares fails instead; a hyperopt's with the random state and worker count
   freqtrade logged and the parameter file it wrote next to the strategy for the best epoch),
   preceded by freqtrade's raw result file (backtest
   zip, hyperopt epochs; a download's candle files in a zip) as `FTA-ARCHIVE:` lines, whose
   end line carries its size
   and SHA-256: an opaque download. On failure, prints no result; the last stderr line is
   `FTA-ERROR: <cause>` (a strategy that fails to import is named as such).

A bot (`kind: bot`) runs `freqtrade trade` the same way, its output budget renewed every hour,
and every `report.interval_s` prints `FTA-STATUS:` + JSON: its figures read from its own trade
database (read-only, here in the sandbox), and the heartbeat, state and whitelist freqtrade
logged.

Exit code: freqtrade's (128+N when a signal N ended it); 70 when freqtrade succeeded but its
results could not be summarised; 71 when a bot's freqtrade ended with code 0; 72 when the
startup candle count differs from the declared one. Standard library only, except pandas
(present in the image) to read and write candle files.

The job image holds this file alone, as /opt/fta/fta_job_entry.py (images/freqtrade/Dockerfile),
where no fta package is installed: it imports none, and keeps its own copies of the markers of
`fta.freqtrade.markers` and of the bundle's variable prefix of `fta.freqtrade.bundle`, which
the unit tests hold equal to them.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import ctypes
import gzip
import hashlib
import json
import math
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
import zipfile
from collections.abc import Callable, MutableMapping
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any

BUNDLE_ENV_PREFIX = "FTA_BUNDLE_"
BUNDLE_URL_ENV = f"{BUNDLE_ENV_PREFIX}URL"
BUNDLE_FETCH_SECONDS = 30
BUNDLE_FETCH_MAX_BYTES = 16 * 1024 * 1024
BUNDLE_VERSION = 1
# A warm container (fta.worker.warm_pool) starts with this set and no bundle: its freqtrade is
# started and imported ahead, and the bundle comes later through HANDOFF_SOCKET, sent by the
# same script run with --hand-off (the one command the socket proxy lets the worker exec).
WAIT_FOR_JOB_ENV = "FTA_WAIT_FOR_JOB"
HANDOFF_SOCKET = "/tmp/fta-job.sock"  # noqa: S108 - the container's own tmpfs
# Set for a bot whose data directory is on a network file system (EFS, on ECS), where
# SQLite's locks are not to be relied on: its trade database lives on the task's own storage
# and is copied back whole every this many seconds, and once more when the bot stops.
DB_SNAPSHOT_ENV = "FTA_DB_SNAPSHOT_SECONDS"
LOCAL_DB_DIR = "/tmp/fta-db"  # noqa: S108 - the task's own storage
HANDOFF_MAX_BYTES = 16 * 1024 * 1024
HANDOFF_CONNECT_SECONDS = 30.0
HANDOFF_OK = b"ok"
RESULT_PREFIX = "FTA-RESULT:"
ERROR_PREFIX = "FTA-ERROR:"
MAX_PAIR_ROWS = 100
MAX_PARAMS_PER_SPACE = 50
# The parameter file travels whole in the result line, or not at all.
MAX_FILE_PARAMS_PER_SPACE = 100
MIN_FILE_NUMBER = 1e-15
MAX_SPACES = 12
MAX_STRING = 100
MAX_ERROR = 500
MAX_NUMBER = 1e15
MAX_RESULT_JSON_BYTES = 64 * 1024 * 1024
EXIT_SUMMARY_FAILED = 70
EXIT_BOT_ENDED = 71
EXIT_STARTUP_MISMATCH = 72
# freqtrade's raw result file travels to the platform as an opaque download, in lines short
# enough that Docker's log driver never splits them (it cuts at 16 KiB).
ARCHIVE_PREFIX = "FTA-ARCHIVE:"
ARCHIVE_CHUNK_BYTES = 6 * 1024
MAX_ARCHIVE_BYTES = 8 * 1024 * 1024
STDERR_TAIL_LINES = 200
OUTPUT_DRAIN_SECONDS = 5.0
# freqtrade's output per run, stdout and stderr together, that reaches the engine's log: four
# times the worker's default `job_log_max_bytes`, so the worker's own cap decides what is kept,
# and well within one of the engine's log files (fta.runtime.spec). Each line also costs about
# what the engine wraps around it, so a flood of empty lines is capped too.
OUTPUT_MAX_BYTES = 4 * 1024 * 1024
OUTPUT_LINE_COST = 64
# One engine log record (16 KiB with its newline): the rest of a longer line is dropped.
OUTPUT_MAX_LINE = 16 * 1024 - 1
OUTPUT_CAPPED = (
    "fta: this job's output is over {} bytes: the rest of it is discarded, the job goes on\n"
)
# A forwarded line never starts like a marker of ours: the worker would take it for one.
MARKER_START = b"FTA-"
STATUS_PREFIX = "FTA-STATUS:"
MAX_BOT_TRADES = 100
MAX_BOT_PAIRS = 50
# A bot runs for weeks: its output budget renews every hour.
BOT_OUTPUT_WINDOW_SECONDS = 3600.0
ESCAPED_MARKER = b"[job] "
PR_SET_DUMPABLE, PR_GET_DUMPABLE = 4, 3

_IMPORT_FAILURE = re.compile(r"Could not import (\S+) due to '(.*)'")
_LOAD_FAILURE = re.compile(r"(Impossible to load Strategy '[^']*'.*)")
_LOG_ERROR = re.compile(r" - (?:ERROR|CRITICAL) - (.*)")
_FRAME_FILE = re.compile(r'^\s+File "([^"]+)"')
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
GENERIC_ERRORS = ("Fatal exception!",)


class SummaryError(Exception):
    """freqtrade succeeded but left no result we can read."""


# ---- bundle --------------------------------------------------------------------------------


def take_bundle(environ: MutableMapping[str, str]) -> dict[str, Any]:
    """Decode the bundle and delete every FTA_BUNDLE_* variable from `environ`."""
    text = bundle_text(environ)
    for name in [name for name in environ if name.startswith(BUNDLE_ENV_PREFIX)]:
        del environ[name]
    return decode_bundle(text)


def bundle_text(environ: MutableMapping[str, str]) -> str:
    """FTA_BUNDLE_0..N joined, or fetched from FTA_BUNDLE_URL: base64 of the gzipped JSON
    bundle."""
    url = environ.get(BUNDLE_URL_ENV)
    if url is not None:
        return fetch_bundle(url)
    chunks: list[str] = []
    while f"{BUNDLE_ENV_PREFIX}{len(chunks)}" in environ:
        chunks.append(environ[f"{BUNDLE_ENV_PREFIX}{len(chunks)}"])
    if not chunks:
        raise ValueError("no job bundle: FTA_BUNDLE_0 is not set")
    return "".join(chunks)


def fetch_bundle(url: str, *, schemes: tuple[str, ...] = ("https",)) -> str:
    """The bundle's text from its presigned address: one GET, bounded in time and size."""
    scheme = url.split(":", 1)[0]
    if scheme not in schemes:
        raise ValueError(f"the bundle's address must use {' or '.join(schemes)}, not {scheme}")
    # The scheme is checked above: no file:// or other opener is reachable.
    with urllib.request.urlopen(url, timeout=BUNDLE_FETCH_SECONDS) as response:  # noqa: S310
        body: bytes = response.read(BUNDLE_FETCH_MAX_BYTES + 1)
    if len(body) > BUNDLE_FETCH_MAX_BYTES:
        raise ValueError(f"the bundle at its address is over {BUNDLE_FETCH_MAX_BYTES} bytes")
    return body.decode("ascii").strip()


def decode_bundle(text: str) -> dict[str, Any]:
    bundle = json.loads(gzip.decompress(base64.b64decode(text, validate=True)))
    if not isinstance(bundle, dict) or bundle.get("version") != BUNDLE_VERSION:
        raise ValueError("unsupported job bundle")
    return bundle


def receive_bundle(path: str) -> dict[str, Any]:
    """A warm container's bundle: the first connection to `path` sends it whole, then closes
    its side; it is answered `ok` once decoded. The socket is gone before the job runs."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    previous = os.umask(0o077)
    try:
        server.bind(path)
    finally:
        os.umask(previous)
    server.listen(1)
    connection, _ = server.accept()
    server.close()
    os.unlink(path)
    with connection:
        received = bytearray()
        while piece := connection.recv(65536):
            received += piece
            if len(received) > HANDOFF_MAX_BYTES:
                raise ValueError(f"bundle over {HANDOFF_MAX_BYTES} bytes")
        bundle = decode_bundle(received.decode("ascii"))
        connection.sendall(HANDOFF_OK)
    return bundle


def hand_off() -> int:
    """Run by the worker's exec in a warm container: passes the bundle in this process's
    environment to the entry waiting as PID 1. Undumpable first, as the entry is."""
    make_undumpable()
    text = bundle_text(os.environ).encode("ascii")
    deadline = time.monotonic() + HANDOFF_CONNECT_SECONDS
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        while True:
            try:
                client.connect(HANDOFF_SOCKET)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                # The entry binds the socket within a moment of the container's start.
                if time.monotonic() >= deadline:
                    print("fta: no job entry is waiting in this container", file=sys.stderr)
                    return 1
                time.sleep(0.01)
        client.sendall(text)
        client.shutdown(socket.SHUT_WR)
        reply = client.recv(64)
    if reply != HANDOFF_OK:
        print("fta: the job entry refused the bundle", file=sys.stderr)
        return 1
    return 0


def write_job_files(bundle: dict[str, Any]) -> None:
    job_dir = Path(bundle["job_dir"])
    config = bundle["config"]
    (job_dir / "strategies").mkdir(parents=True, exist_ok=True)
    config_path = job_dir / "config.json"
    config_path.write_text(json.dumps(config, indent=1), encoding="utf-8")
    config_path.chmod(0o600)
    if bundle.get("strategy_name"):
        strategy_file = job_dir / "strategies" / f"{bundle['strategy_name']}.py"
        strategy_file.write_text(bundle["strategy_source"], encoding="utf-8")
    # freqtrade refuses a user_data_dir that does not exist, and downloads need their datadir.
    Path(config["user_data_dir"]).mkdir(parents=True, exist_ok=True)
    if bundle["kind"] in ("cache-fill", "bot"):
        Path(config["datadir"]).mkdir(parents=True, exist_ok=True)


# ---- running freqtrade ---------------------------------------------------------------------


def _traceback_cause(lines: list[str], strategy: str | None) -> str | None:
    """The exception that ended the last traceback, and whether the strategy raised it."""
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent")]
    if not starts:
        return None
    block = lines[starts[-1] + 1 :]
    frames = [match.group(1) for line in block if (match := _FRAME_FILE.match(line))]
    exception = next((line for line in block if line and not line[0].isspace()), None)
    if exception is None:
        return None
    if strategy is None or not any(Path(frame).stem == strategy for frame in frames):
        return exception
    if any("in exec_module" in line for line in block):
        return f"strategy {strategy} failed to import: {exception}"
    return f"strategy {strategy} raised {exception}"


def _cause(tail: collections.deque[str], strategy: str | None) -> str | None:
    """The most telling reason for a failure in freqtrade's last stderr lines."""
    lines = list(tail)
    for line in lines:
        match = _IMPORT_FAILURE.search(line)
        if match and (strategy is None or Path(match.group(1)).stem == strategy):
            return f"strategy {strategy} failed to import: {match.group(2)}"
    from_traceback = _traceback_cause(lines, strategy)
    if from_traceback is not None:
        return from_traceback
    for line in reversed(lines):
        match = _LOAD_FAILURE.search(line)
        if match:
            return match.group(1)
    for line in reversed(lines):
        match = _LOG_ERROR.search(line)
        if match and match.group(1).strip() not in GENERIC_ERRORS:
            return match.group(1)
    return None


class Output:
    """Forwards freqtrade's stdout and stderr, line by line, within one shared budget: for the
    whole run, or per `window_s` seconds for a bot that runs for weeks."""

    def __init__(self, max_bytes: int = OUTPUT_MAX_BYTES, window_s: float | None = None) -> None:
        self._lock = threading.Lock()
        self._left = max_bytes
        self._max_bytes = max_bytes
        self._capped = False
        self._closed = False
        self._window_s = window_s
        self._window_ends = time.monotonic() + window_s if window_s else math.inf

    def own(self, line: bytes) -> None:
        """A line of the entry itself (a bot's status), outside the budget."""
        with self._lock:
            sys.stdout.buffer.write(line)
            sys.stdout.buffer.flush()

    def forward(self, line: bytes, target: IO[bytes]) -> None:
        """Writes one line (newline included) unless the budget is spent or output closed."""
        with self._lock:
            if self._window_s and time.monotonic() >= self._window_ends:
                self._window_ends = time.monotonic() + self._window_s
                self._left, self._capped = self._max_bytes, False
            if self._capped or self._closed:
                return
            cost = len(line) + OUTPUT_LINE_COST
            if cost > self._left:
                self._capped = True
                sys.stdout.buffer.write(OUTPUT_CAPPED.format(self._max_bytes).encode())
                sys.stdout.buffer.flush()
                return
            self._left -= cost
            if line.startswith(MARKER_START):
                line = ESCAPED_MARKER + line
            target.write(line)
            target.flush()

    def close(self) -> None:
        """From now on, only the entry writes: whatever still comes through a pipe is dropped."""
        with self._lock:
            self._closed = True


def pump(
    stream: IO[bytes],
    target: IO[bytes],
    output: Output,
    tail: collections.deque[str] | None = None,
    watch: Callable[[str], None] | None = None,
) -> None:
    """Reads `stream` to its end, forwarding each line cut at `OUTPUT_MAX_LINE` bytes."""
    cut = False  # inside a line whose start was forwarded already
    for piece in iter(lambda: stream.readline(OUTPUT_MAX_LINE), b""):
        whole = piece.endswith(b"\n")
        if not cut:
            line = piece if whole else piece + b"\n"
            output.forward(line, target)
            text = line.decode("utf-8", "replace").rstrip("\n")
            if tail is not None:
                tail.append(text)
            if watch is not None:
                watch(text)
        cut = not whole


class Stopper:
    """SIGTERM/SIGINT: forwarded to freqtrade's group while it runs, else the entry exits. As
    PID 1 the entry would otherwise ignore both."""

    def __init__(self) -> None:
        self.group: int | None = None

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.group is None:
            raise SystemExit(128 + signum)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.group, signum)


STOPPER = Stopper()


def make_undumpable() -> None:
    """No ptrace and no /proc/<pid>/{environ,fd,mem} of this process for the job's processes,
    which share its uid: the kernel then needs CAP_SYS_PTRACE, which nobody here has."""
    libc = ctypes.CDLL(None, use_errno=True)
    zero = ctypes.c_ulong(0)
    if libc.prctl(PR_SET_DUMPABLE, zero, zero, zero, zero) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE) failed")
    if libc.prctl(PR_GET_DUMPABLE, zero, zero, zero, zero) != 0:
        raise OSError("this process is still dumpable")


def wait_for(pid: int) -> int:
    """Reaps children until `pid` ends (as PID 1, the job's orphans come here too); its exit
    code, -N when signal N ended it."""
    while True:
        reaped, status = os.waitpid(-1, 0)
        if reaped == pid:
            return os.waitstatus_to_exitcode(status)


def end_the_rest(group: int) -> None:
    """Kills what freqtrade left behind: its process group (hyperopt's helpers can outlive it)
    and, as the container's PID 1, every other process, for a helper may leave the group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)
    if os.getpid() != 1:
        return
    while True:
        # Again after each reaped child: a process forked meanwhile gets killed too.
        with contextlib.suppress(ProcessLookupError):
            os.kill(-1, signal.SIGKILL)
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


class Preloaded:
    """A warm container's freqtrade, started before its job arrives: the same program in the
    same process group arrangement, its imports done while the container waited."""

    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(cls) -> None:
        cls.process = subprocess.Popen(  # noqa: S603 - this script, fixed argument
            [sys.executable, __file__, "--preload"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )

    @classmethod
    def take(cls, argv: list[str]) -> subprocess.Popen[bytes] | None:
        """The preloaded freqtrade, now given `argv`; None when there is none (any more)."""
        process, cls.process = cls.process, None
        if process is None:
            return None
        assert process.stdin is not None  # noqa: S101 - PIPE
        # A freqtrade that died while importing shows it by its exit code and its stderr.
        with contextlib.suppress(BrokenPipeError):
            process.stdin.write(json.dumps(argv).encode() + b"\n")
            process.stdin.close()
        return process


def preload_and_run() -> int:
    """The preloaded freqtrade itself: imports what every job's freqtrade imports, waits for
    its arguments on stdin (one JSON line), then runs like `freqtrade <argv>`."""
    import freqtrade.optimize.backtesting  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
    from freqtrade.main import main as freqtrade_main  # type: ignore[import-not-found,unused-ignore]

    line = sys.stdin.readline()
    if not line:
        return 0  # the container was removed without a job
    argv = json.loads(line)
    sys.argv = ["freqtrade", *argv]
    freqtrade_main(argv)
    return 0


def run_freqtrade(
    argv: list[str],
    strategy: str | None,
    output: Output | None = None,
    watch: Callable[[str], None] | None = None,
    *,
    ends_in_failure: bool = False,
) -> tuple[int, str | None]:
    """Run freqtrade; return its exit code and, on failure (any end, for a bot:
    `ends_in_failure`), the cause found in its stderr."""
    process = Preloaded.take(argv)
    if process is None:
        program = shutil.which("freqtrade")
        if program is None:
            return 127, "freqtrade is not installed in this image"
        # Its own process group: signals and the final clean-up reach the helpers it forks too.
        process = subprocess.Popen(  # noqa: S603 - fixed program, argv built by fta
            [program, *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    STOPPER.group = process.pid
    output = output or Output()
    tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
    assert process.stdout is not None and process.stderr is not None  # noqa: S101 - PIPE
    readers = [
        threading.Thread(
            target=pump, args=(process.stdout, sys.stdout.buffer, output, None, watch), daemon=True
        ),
        threading.Thread(
            target=pump, args=(process.stderr, sys.stderr.buffer, output, tail, watch), daemon=True
        ),
    ]
    for reader in readers:
        reader.start()
    try:
        returncode = wait_for(process.pid)
    finally:
        STOPPER.group = None
    process.returncode = returncode  # reaped here, not by Popen
    end_the_rest(process.pid)
    deadline = time.monotonic() + OUTPUT_DRAIN_SECONDS
    for reader in readers:
        reader.join(timeout=max(deadline - time.monotonic(), 0))
    output.close()
    if returncode < 0:
        return 128 - returncode, f"freqtrade was stopped by {signal.Signals(-returncode).name}"
    failed = returncode != 0 or ends_in_failure
    return returncode, (_cause(tail, strategy) if failed else None)


class StartupWatch:
    """The startup candle count freqtrade logged it uses for the strategy."""

    _USED = re.compile(r"Strategy using startup_candle_count: (\d+)")

    def __init__(self) -> None:
        self.used: set[int] = set()

    def __call__(self, line: str) -> None:
        if match := self._USED.search(line):
            self.used.add(int(match.group(1)))

    def mismatch(self, strategy: str | None, declared: int) -> str | None:
        """Why the run's result cannot be trusted to be reproducible, or None: the cache was
        filled for the count the class declares, and freqtrade used another one."""
        if self.used == {declared}:
            return None
        used = ", ".join(str(count) for count in sorted(self.used)) or "an unreported count"
        return (
            f"strategy {strategy} ran with startup_candle_count {used}, but its class "
            f"declares {declared}: declare startup_candle_count as a plain number on the "
            "strategy class (e.g. startup_candle_count = 30), so that the history before your "
            "timerange is loaded and the result does not depend on what the cache holds"
        )


class HyperoptWatch:
    """The random state and the number of worker processes freqtrade logged for a hyperopt:
    with them, the same job on the same candles gives the same epochs again."""

    _LOGGER = r" - freqtrade\.optimize\.hyperopt\.hyperopt - INFO - "
    _SEED = re.compile(_LOGGER + r"Using optimizer random state: (\d{1,10})$")
    _WORKERS = re.compile(_LOGGER + r"Effective number of parallel workers used: (\d{1,4})$")

    def __init__(self) -> None:
        self.random_state: int | None = None
        self.job_workers: int | None = None

    def __call__(self, line: str) -> None:
        # freqtrade logs each once, before the first epoch: the first one is its own.
        if self.random_state is None and (match := self._SEED.search(line)):
            self.random_state = int(match.group(1))
        elif self.job_workers is None and (match := self._WORKERS.search(line)):
            self.job_workers = int(match.group(1))

    def figures(self) -> dict[str, int]:
        if self.random_state is None or self.job_workers is None:
            raise SummaryError("freqtrade did not log its random state and worker count")
        return {"random_state": self.random_state, "job_workers": self.job_workers}


def watch_all(*watches: Callable[[str], None]) -> Callable[[str], None]:
    def watch(line: str) -> None:
        for each in watches:
            each(line)

    return watch


# ---- summaries -----------------------------------------------------------------------------


def _num(value: Any, places: int = 8) -> float | int | None:
    """A finite, rounded number (None for missing, NaN or infinite)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number) or abs(number) > MAX_NUMBER:
        return None
    return round(number, places)


def _pct(ratio: Any) -> float | int | None:
    number = _num(ratio, 12)
    return None if number is None else round(number * 100, 4)


def _text(value: Any) -> str:
    return _CONTROL_CHARS.sub("?", str(value))[:MAX_STRING]


def _scalar(value: Any) -> float | int | bool | str | None:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return _num(value, 10)
    return _text(value)


def _read_json(path: Path) -> Any:
    if path.stat().st_size > MAX_RESULT_JSON_BYTES:
        raise SummaryError(f"{path.name} is too large")
    return json.loads(path.read_text(encoding="utf-8"))


def _latest(results_dir: Path, key: str) -> Path:
    marker = results_dir / ".last_result.json"
    if not marker.is_file():
        raise SummaryError(f"no result in {results_dir}")
    name = Path(str(_read_json(marker)[key])).name
    return results_dir / name


def summarize_backtest(bundle: dict[str, Any]) -> dict[str, Any]:
    config = bundle["config"]
    archive_path = _latest(Path(config["exportdirectory"]), "latest_backtest")
    with zipfile.ZipFile(archive_path) as archive:
        member = archive.getinfo(archive_path.with_suffix(".json").name)
        if member.file_size > MAX_RESULT_JSON_BYTES:
            raise SummaryError("backtest result is too large")
        stats = json.loads(archive.read(member))
    result = stats["strategy"][bundle["strategy_name"]]
    rows = [row for row in result["results_per_pair"] if row.get("key") != "TOTAL"]
    return {
        "kind": "backtest",
        "strategy": _text(bundle["strategy_name"]),
        "timeframe": _text(result["timeframe"]),
        "timerange": _text(result["timerange"]),
        "stake_currency": _text(result["stake_currency"]),
        "backtest_start_ms": _num(result["backtest_start_ts"]),
        "backtest_end_ms": _num(result["backtest_end_ts"]),
        "trades": int(result["total_trades"]),
        "wins": int(result["wins"]),
        "losses": int(result["losses"]),
        "draws": int(result["draws"]),
        "profit_total_pct": _pct(result["profit_total"]),
        "profit_total_abs": _num(result["profit_total_abs"]),
        "max_drawdown_pct": _pct(result.get("max_drawdown_account", 0)),
        "max_drawdown_abs": _num(result.get("max_drawdown_abs", 0)),
        "win_rate": _num(result.get("winrate", 0), 6),
        "starting_balance": _num(result["starting_balance"]),
        "final_balance": _num(result["final_balance"]),
        "pairs_total": len(rows),
        "pairs": [
            {
                "pair": _text(row["key"]),
                "trades": int(row["trades"]),
                "profit_total_pct": _pct(row["profit_total"]),
                "profit_total_abs": _num(row["profit_total_abs"]),
                "win_rate": _num(row.get("winrate", 0), 6),
            }
            for row in rows[:MAX_PAIR_ROWS]
        ],
    }


def _params(details: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(details, dict):
        return {}
    spaces: dict[str, dict[str, Any]] = {}
    for space, values in list(details.items())[:MAX_SPACES]:
        if isinstance(values, dict):
            items = list(values.items())[:MAX_PARAMS_PER_SPACE]
            spaces[_text(space)] = {_text(name): _scalar(value) for name, value in items}
    return spaces


def summarize_hyperopt(bundle: dict[str, Any]) -> dict[str, Any]:
    results_dir = Path(bundle["config"]["user_data_dir"]) / "hyperopt_results"
    epochs_file = _latest(results_dir, "latest_hyperopt")
    best: dict[str, Any] | None = None
    epochs = 0
    with epochs_file.open(encoding="utf-8") as lines:
        for line in lines:
            epochs += 1
            epoch = json.loads(line)
            if epoch.get("is_best") and (best is None or epoch["loss"] <= best["loss"]):
                best = epoch
    if best is None:
        raise SummaryError("hyperopt found no best epoch")
    metrics = best.get("results_metrics", {})
    return {
        "kind": "hyperopt",
        "strategy": _text(bundle["strategy_name"]),
        "hyperopt_loss": _text(bundle["config"]["hyperopt_loss"]),
        "epochs": epochs,
        "best_epoch": int(best["current_epoch"]),
        "loss": _num(best["loss"], 10),
        "trades": int(metrics.get("total_trades", 0)),
        "profit_total_pct": _pct(metrics.get("profit_total", 0)),
        "profit_total_abs": _num(metrics.get("profit_total_abs", 0)),
        "max_drawdown_pct": _pct(metrics.get("max_drawdown_account", 0)),
        "params": _params(best.get("params_details")),
        "parameter_file": parameter_file(bundle),
    }


def _file_value_problem(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return None if abs(value) <= MAX_NUMBER else f"{value} is too large"
    if isinstance(value, float):
        if math.isfinite(value) and (value == 0 or MIN_FILE_NUMBER <= abs(value) <= MAX_NUMBER):
            return None
        return f"{value} is out of range"
    if isinstance(value, str):
        return None if value == _text(value) else f"{value[:20]!r}... is too long"
    return f"a {type(value).__name__} value"


def _parameter_file_problem(data: Any, strategy: str) -> str | None:
    """Why freqtrade's parameter file cannot travel in the result unchanged, or None."""
    if not isinstance(data, dict) or set(data) != {
        "strategy_name",
        "params",
        "ft_stratparam_v",
        "export_time",
    }:
        return "not freqtrade's parameter file format"
    if data["strategy_name"] != strategy or data["ft_stratparam_v"] != 1:
        return "another strategy or format version"
    if not isinstance(data["export_time"], str) or data["export_time"] != _text(
        data["export_time"]
    ):
        return "an unexpected export_time"
    params = data["params"]
    if not isinstance(params, dict) or len(params) > MAX_SPACES:
        return f"more than {MAX_SPACES} spaces"
    for space, values in params.items():
        if space != _text(space) or not isinstance(values, dict):
            return f"space {space[:20]!r} is not a mapping"
        if len(values) > MAX_FILE_PARAMS_PER_SPACE:
            return f"more than {MAX_FILE_PARAMS_PER_SPACE} parameters in {space}"
        for name, value in values.items():
            problem = _file_value_problem(value)
            if name != _text(name) or problem is not None:
                return f"{space}.{name[:MAX_STRING]}: {problem or 'name too long'}"
    return None


def parameter_file(bundle: dict[str, Any]) -> dict[str, Any] | None:
    """The best epoch's parameters as freqtrade wrote them next to the strategy
    (`<Strategy>.json`, what freqtrade loads from there), or None, with a note, when the
    file cannot travel in the result unchanged."""
    strategy = bundle["strategy_name"]
    path = Path(bundle["job_dir"], "strategies", f"{strategy}.json")
    if not path.is_file():
        raise SummaryError("freqtrade wrote no parameter file")
    data = _read_json(path)
    problem = _parameter_file_problem(data, strategy)
    if problem is not None:
        print(f"fta: {path.name} cannot be downloaded: {problem}", file=sys.stderr, flush=True)
        return None
    return dict(data)


# ---- candles -------------------------------------------------------------------------------
# Candles live in freqtrade's feather files, `<BASE>_<QUOTE>-<timeframe>.feather` (spot), in
# the shared cache. pandas/pyarrow are imported where they are used: slow to import, and only
# the runs that read candles need them.

CANDLE_COLUMNS = ("date", "open", "high", "low", "close", "volume")
_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def _timeframe_ms(timeframe: str) -> int:
    return int(timeframe[:-1]) * _UNIT_MS[timeframe[-1]]


def candle_file(directory: Path, pair: str, timeframe: str) -> Path:
    return directory / f"{pair.replace('/', '_')}-{timeframe}.feather"


def read_candles(path: Path) -> Any:
    """A candle file as a DataFrame sorted by date, plus its open times in ms (`ms`), or None
    when there is no such file."""
    import pandas  # type: ignore[import-untyped,unused-ignore]

    if not path.is_file():
        return None
    frame = pandas.read_feather(path, columns=list(CANDLE_COLUMNS))
    frame = frame.sort_values("date", kind="stable").reset_index(drop=True)
    frame["ms"] = frame["date"].dt.as_unit("ms").astype("int64")
    return frame


def candle_window(directory: Path, pair: str, timeframe: str, first_ms: int, last_ms: int) -> Any:
    """The candles of a pair opening in [first_ms, last_ms]: what freqtrade loads for a range
    (its start less the startup candles, through the candle opening at its end)."""
    frame = read_candles(candle_file(directory, pair, timeframe))
    if frame is None:
        return None
    return frame[(frame["ms"] >= first_ms) & (frame["ms"] <= last_ms)].reset_index(drop=True)


def candle_arrays(path: Path, first_ms: int, last_ms: int) -> dict[str, Any] | None:
    """The candles of a file opening in [first_ms, last_ms], sorted, as numpy arrays: open
    times in ms (`ms`) and the OHLCV columns; None when there is no such file. Read with
    pyarrow alone: a job's fingerprint runs beside freqtrade on the job's CPU, and pandas
    would cost it four times the import time."""
    import pyarrow  # type: ignore[import-not-found,import-untyped,unused-ignore]
    import pyarrow.compute  # type: ignore[import-not-found,import-untyped,unused-ignore]
    import pyarrow.feather  # type: ignore[import-not-found,import-untyped,unused-ignore]

    if not path.is_file():
        return None
    table = pyarrow.feather.read_table(path, columns=list(CANDLE_COLUMNS))
    ms = table.column("date").cast(pyarrow.timestamp("ms", tz="UTC")).cast(pyarrow.int64())
    table = table.append_column("ms", ms).sort_by("ms")
    ms = table.column("ms")
    keep = pyarrow.compute.and_(
        pyarrow.compute.greater_equal(ms, first_ms), pyarrow.compute.less_equal(ms, last_ms)
    )
    table = table.filter(keep)
    return {name: table.column(name).to_numpy() for name in ("ms", *CANDLE_COLUMNS[1:])}


def data_fingerprint(
    directory: Path,
    pairs: list[str],
    timeframe: str,
    timerange: str,
    startup_candles: int,
) -> dict[str, Any]:
    """Which candles a run used: SHA-256 over, for each pair in name order, the line
    `<pair>\\n<count>\\n`, then the candles' open times (ms, int64 little-endian), then their
    open, high, low, close and volume (each a column of float64 little-endian); with each
    pair's count and first and last open time. Two runs with the same hash ran on the same
    candles."""
    start_ms, end_ms = (_day_ms(part) for part in timerange.split("-"))
    first_ms = start_ms - startup_candles * _timeframe_ms(timeframe)
    digest = hashlib.sha256()
    rows = []
    for pair in sorted(pairs):
        columns = candle_arrays(candle_file(directory, pair, timeframe), first_ms, end_ms)
        count = 0 if columns is None else len(columns["ms"])
        digest.update(f"{pair}\n{count}\n".encode())
        if columns is not None and count:
            digest.update(columns["ms"].astype("<i8").tobytes())
            for column in CANDLE_COLUMNS[1:]:
                digest.update(columns[column].astype("<f8").tobytes())
        rows.append(
            {
                "pair": _text(pair),
                "candles": count,
                "first_ms": int(columns["ms"][0]) if columns is not None and count else None,
                "last_ms": int(columns["ms"][-1]) if columns is not None and count else None,
            }
        )
    return {
        "sha256": digest.hexdigest(),
        "startup_candles": startup_candles,
        "pairs": rows[:MAX_PAIR_ROWS],
    }


def used_data(bundle: dict[str, Any]) -> dict[str, Any]:
    """The fingerprint of the candles a backtest or hyperopt reads (startup included)."""
    config = bundle["config"]
    return data_fingerprint(
        Path(bundle["cache_dir"]),
        config["exchange"]["pair_whitelist"],
        config["timeframe"],
        bundle["timerange"],
        bundle["startup_candles"],
    )


Work = Callable[[dict[str, Any]], dict[str, Any]]


class InBackground:
    """Runs `work(bundle)` in a thread from now on: the candles a run reads are fixed before it
    starts (the worker filled them; fills only add candles outside a file's first and last),
    so they are hashed while freqtrade runs, and pandas' slow import costs no time after."""

    def __init__(self, work: Work, bundle: dict[str, Any]) -> None:
        self._value: dict[str, Any] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(work, bundle), daemon=True)
        self._thread.start()

    def _run(self, work: Work, bundle: dict[str, Any]) -> None:
        try:
            self._value = work(bundle)
        except Exception as error:  # raised again by result()
            self._error = error

    def result(self) -> dict[str, Any]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._value is not None  # noqa: S101 - set when no error was
        return self._value


def summarize_data(bundle: dict[str, Any]) -> dict[str, Any]:
    """A download or a fill: the candles of its range now in the cache."""
    config = bundle["config"]
    return {
        "kind": bundle["kind"],
        "exchange": _text(config["exchange"]["name"]),
        "timeframe": _text(config["timeframe"]),
        "timerange": _text(bundle["timerange"]),
        "data": data_fingerprint(
            Path(bundle["cache_dir"]),
            config["exchange"]["pair_whitelist"],
            config["timeframe"],
            bundle["timerange"],
            0,
        ),
    }


def missing_span(bundle: dict[str, Any]) -> tuple[int, int] | None:
    """The open times [first, end) (ms) a fill must download so that every pair's cache file
    covers the fill's range: one span for all pairs, since one freqtrade run downloads them
    all; None when the cache covers the range already."""
    config = bundle["config"]
    timeframe = config["timeframe"]
    step = _timeframe_ms(timeframe)
    start_ms, end_ms = (_day_ms(part) for part in bundle["timerange"].split("-"))
    spans = []
    for pair in config["exchange"]["pair_whitelist"]:
        frame = read_candles(candle_file(Path(bundle["cache_dir"]), pair, timeframe))
        if frame is None or frame.empty:
            spans.append((start_ms, end_ms))
            continue
        first, last = int(frame["ms"].iloc[0]), int(frame["ms"].iloc[-1])
        if start_ms < first:
            spans.append((start_ms, first))
        if last + step < end_ms:
            spans.append((last + step, end_ms))
    if not spans:
        return None
    return min(span[0] for span in spans), max(span[1] for span in spans)


def merge_into_cache(bundle: dict[str, Any]) -> None:
    """Adds the downloaded candles to the cache's files. Candles the cache holds already are
    kept as they are (the cache never changes under a run that used it); each file is
    replaced whole (written aside, then renamed), so a reader never sees half a file."""
    import pandas

    config = bundle["config"]
    timeframe = config["timeframe"]
    scratch, cache = Path(config["datadir"]), Path(bundle["cache_dir"])
    cache.mkdir(parents=True, exist_ok=True)
    for pair in config["exchange"]["pair_whitelist"]:
        new = read_candles(candle_file(scratch, pair, timeframe))
        if new is None or new.empty:
            raise SummaryError(f"the exchange returned no {timeframe} candles for {pair}")
        target = candle_file(cache, pair, timeframe)
        held = read_candles(target)
        if held is not None:
            new = pandas.concat([held, new[~new["ms"].isin(held["ms"])]])
        merged = new.sort_values("ms", kind="stable").reset_index(drop=True)
        aside = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        merged.loc[:, list(CANDLE_COLUMNS)].to_feather(
            aside, compression_level=9, compression="lz4"
        )
        os.replace(aside, target)


def fill_cache(bundle: dict[str, Any]) -> int:
    """Downloads what the cache lacks of the fill's range in ONE freqtrade run, into the
    fill's private directory, then merges it into the cache."""
    span = missing_span(bundle)
    if span is None:
        return 0
    argv = list(bundle["argv"])
    argv[argv.index("--timerange") + 1] = f"{span[0] // 1000}-{span[1] // 1000}"
    returncode, cause = run_freqtrade(argv, None)
    if returncode != 0:
        _fail(cause or f"freqtrade exited with code {returncode}")
        return returncode
    try:
        merge_into_cache(bundle)
    except (SummaryError, KeyError, ValueError, OSError) as error:
        _fail(f"could not store the candles: {error}")
        return EXIT_SUMMARY_FAILED
    return 0


def pack_candles(bundle: dict[str, Any]) -> Path:
    """The client's download: its pairs' candles of its range, cut from the cache, as
    freqtrade's own files in a zip (`freqtrade backtesting --datadir` reads them unzipped)."""
    config = bundle["config"]
    timeframe, timerange = config["timeframe"], bundle["timerange"]
    start_ms, end_ms = (_day_ms(part) for part in timerange.split("-"))
    exchange = config["exchange"]["name"]
    out = Path(bundle["job_dir"]) / "candles"
    out.mkdir(parents=True, exist_ok=True)
    archive_path = Path(bundle["job_dir"]) / f"{exchange}-{timeframe}-{timerange}.zip"
    with zipfile.ZipFile(archive_path, "w", zipfile.ZIP_STORED) as archive:
        for pair in sorted(config["exchange"]["pair_whitelist"]):
            frame = candle_window(Path(bundle["cache_dir"]), pair, timeframe, start_ms, end_ms)
            if frame is None or frame.empty:
                raise SummaryError(f"no {timeframe} candles of {pair} in {timerange}")
            path = candle_file(out, pair, timeframe)
            frame.loc[:, list(CANDLE_COLUMNS)].to_feather(
                path, compression_level=9, compression="lz4"
            )
            archive.write(path, path.name)
    size = archive_path.stat().st_size
    if size > MAX_ARCHIVE_BYTES:
        raise SummaryError(
            f"the candles take {size} bytes, over the {MAX_ARCHIVE_BYTES}-byte download "
            "limit: ask for fewer pairs, a shorter range or a longer timeframe"
        )
    return archive_path


def _day_ms(yyyymmdd: str) -> int:
    return int(datetime.strptime(yyyymmdd, "%Y%m%d").replace(tzinfo=UTC).timestamp() * 1000)


SUMMARIZERS = {
    "backtest": summarize_backtest,
    "hyperopt": summarize_hyperopt,
    "download-data": summarize_data,
    "cache-fill": summarize_data,
}


def result_file(bundle: dict[str, Any]) -> Path | None:
    """freqtrade's own result file of this run: the backtest zip or the hyperopt epochs."""
    config = bundle["config"]
    if bundle["kind"] == "backtest":
        return _latest(Path(config["exportdirectory"]), "latest_backtest")
    if bundle["kind"] == "hyperopt":
        return _latest(Path(config["user_data_dir"]) / "hyperopt_results", "latest_hyperopt")
    if bundle["kind"] == "download-data":
        return pack_candles(bundle)
    return None


def emit_archive(path: Path) -> None:
    """The file as `FTA-ARCHIVE:` lines; the end line carries its size and SHA-256, so that
    the worker can tell a copy that lost or repeated a line on its way."""
    size = path.stat().st_size
    if size > MAX_ARCHIVE_BYTES:
        print(
            f"fta: {path.name} ({size} bytes) is over the {MAX_ARCHIVE_BYTES}-byte download "
            "limit; it stays in your data volume",
            file=sys.stderr,
            flush=True,
        )
        return
    print(f"{ARCHIVE_PREFIX}name:{path.name}", flush=True)
    digest, sent = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(ARCHIVE_CHUNK_BYTES):
            digest.update(chunk)
            sent += len(chunk)
            print(f"{ARCHIVE_PREFIX}data:{base64.b64encode(chunk).decode()}")
    print(f"{ARCHIVE_PREFIX}end:{sent}:{digest.hexdigest()}", flush=True)


# ---- bots ----------------------------------------------------------------------------------


class BotWatch:
    """What freqtrade's own log says of the bot: its last heartbeat, state and whitelist."""

    _HEARTBEAT = re.compile(r"Bot heartbeat\. PID=\d+, version='[^']*', state='([A-Z_]{1,20})'")
    _WHITELIST = re.compile(r"Whitelist with \d+ pairs: \[(.*)\]")
    _PAIR = re.compile(r"'([A-Z0-9]{1,20}/[A-Z0-9]{1,20})'")

    def __init__(self) -> None:
        self.heartbeat_at: str | None = None
        self.state: str | None = None
        self.whitelist: list[str] = []

    def __call__(self, line: str) -> None:
        if match := self._HEARTBEAT.search(line):
            self.heartbeat_at = datetime.now(UTC).isoformat()
            self.state = match.group(1)
        elif match := self._WHITELIST.search(line):
            self.whitelist = self._PAIR.findall(match.group(1))[:MAX_BOT_PAIRS]


def _money(value: Any) -> str:
    """Exact decimal text of a stored float, at most 12 decimal places."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "0"
    return format(round(float(value), 12), "f").rstrip("0").rstrip(".") or "0"


def _utc(value: Any) -> str | None:
    """freqtrade's naive UTC timestamps, as ISO 8601 with their offset."""
    if not isinstance(value, str):
        return None
    return datetime.fromisoformat(value).replace(tzinfo=UTC).isoformat()


def read_bot_status(db_path: str, wallet: float) -> dict[str, Any]:
    """The bot's figures from its own trade database, read-only, in this sandbox: the worker
    never opens a tenant's database."""
    trades: list[dict[str, Any]] = []
    open_count = closed_count = 0
    closed_profit = 0.0
    if Path(db_path).exists():
        with contextlib.closing(
            sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
        ) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            if "trades" in tables:
                open_count, closed_count, profit = db.execute(
                    "SELECT COALESCE(SUM(is_open), 0), COALESCE(SUM(1 - is_open), 0),"
                    " COALESCE(SUM(CASE WHEN is_open THEN 0 ELSE close_profit_abs END), 0)"
                    " FROM trades"
                ).fetchone()
                closed_profit = float(profit or 0)
                rows = db.execute(
                    "SELECT id, pair, is_open, open_date, close_date, amount, stake_amount,"
                    " open_rate, close_rate, close_profit_abs, close_profit FROM trades"
                    " ORDER BY is_open DESC, id DESC LIMIT ?",
                    (MAX_BOT_TRADES,),
                ).fetchall()
                for row in rows:
                    is_open = bool(row[2])
                    trade: dict[str, Any] = {
                        "trade_id": row[0],
                        "pair": row[1],
                        "is_open": is_open,
                        "open_date": _utc(row[3]),
                        "amount": _money(row[5]),
                        "stake_amount": _money(row[6]),
                        "open_rate": _money(row[7]),
                    }
                    if not is_open:
                        trade.update(
                            close_date=_utc(row[4]),
                            close_rate=_money(row[8]),
                            profit_abs=_money(row[9]),
                            profit_ratio=_money(row[10]),
                        )
                    trades.append(trade)
    return {
        "status": {
            "open_trades": int(open_count),
            "closed_trades": int(closed_count),
            "closed_profit": _money(closed_profit),
            "balance": _money(wallet + closed_profit),
        },
        "trades": trades,
    }


def report_bot(
    bundle: dict[str, Any], watch: BotWatch, output: Output, stop: threading.Event
) -> None:
    """Prints an `FTA-STATUS:` line every interval while the bot runs."""
    report = bundle["report"]
    while not stop.wait(report["interval_s"]):
        try:
            figures = read_bot_status(report["db_path"], float(report["wallet"]))
        except (sqlite3.Error, OSError, ValueError, TypeError) as error:
            figures = {"error": f"{type(error).__name__}: {error}"[:MAX_ERROR]}
        figures["freqtrade"] = {
            "heartbeat_at": watch.heartbeat_at,
            "state": watch.state,
            "whitelist": watch.whitelist,
        }
        line = json.dumps(figures, separators=(",", ":"), allow_nan=False)
        output.own(f"{STATUS_PREFIX}{line}\n".encode())


class LocalDatabase:
    """A bot's trade database kept on local storage, its copy on the shared file system
    replaced whole: a reader (the bot's next task) finds the previous copy or the new one,
    never half of one, and SQLite never writes over NFS. One task per bot is the only writer."""

    def __init__(self, local: Path, shared: Path, every_s: float) -> None:
        self.local, self.shared, self.every_s = local, shared, every_s

    def snapshot(self) -> None:
        """A consistent copy through SQLite's backup API, then copied aside and renamed."""
        if not self.local.exists():
            return
        consistent = self.local.with_name(self.local.name + ".snapshot")
        consistent.unlink(missing_ok=True)
        with (
            contextlib.closing(sqlite3.connect(self.local, timeout=30)) as source,
            contextlib.closing(sqlite3.connect(consistent)) as target,
        ):
            source.backup(target)
        aside = self.shared.with_name(self.shared.name + ".fta-copy")
        with consistent.open("rb") as reader, aside.open("wb") as writer:
            shutil.copyfileobj(reader, writer)
            writer.flush()
            os.fsync(writer.fileno())
        os.replace(aside, self.shared)
        consistent.unlink()

    def keep(self, stop: threading.Event) -> None:
        while not stop.wait(self.every_s):
            try:
                self.snapshot()
            except (sqlite3.Error, OSError) as error:
                # Not the bot's end: the next copy may succeed.
                print(f"fta: the trade database was not copied back: {error}", file=sys.stderr)


def keep_db_local(
    bundle: dict[str, Any], environ: MutableMapping[str, str], local_dir: str = LOCAL_DB_DIR
) -> LocalDatabase | None:
    """With DB_SNAPSHOT_ENV set, points the bot at a local copy of its trade database (made
    from the shared one, if any) and returns what copies it back."""
    every = environ.pop(DB_SNAPSHOT_ENV, None)
    if not every:
        return None
    shared = Path(bundle["report"]["db_path"])
    local = Path(local_dir) / shared.name
    local.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if shared.exists():
        shutil.copyfile(shared, local)
    bundle["config"]["db_url"] = f"sqlite:///{local}"
    bundle["report"]["db_path"] = str(local)
    return LocalDatabase(local, shared, float(every))


def run_bot(bundle: dict[str, Any], local_db: LocalDatabase | None = None) -> int:
    """Runs `freqtrade trade` until it ends or is stopped; its output is capped per hour."""
    watch = BotWatch()
    output = Output(window_s=BOT_OUTPUT_WINDOW_SECONDS)
    stop = threading.Event()
    reporter = threading.Thread(target=report_bot, args=(bundle, watch, output, stop), daemon=True)
    reporter.start()
    if local_db is not None:
        threading.Thread(target=local_db.keep, args=(stop,), daemon=True).start()
    try:
        returncode, cause = run_freqtrade(
            bundle["argv"], bundle.get("strategy_name"), output, watch
        )
    finally:
        stop.set()
        if local_db is not None:
            try:
                local_db.snapshot()
            except (sqlite3.Error, OSError) as error:
                _fail(f"the trade database was not copied back: {error}")
    if returncode != 0:
        _fail(cause or f"freqtrade exited with code {returncode}")
    return returncode


def _cleanup(bundle: dict[str, Any]) -> None:
    """Drop hyperopt's candle pickle: a cache of this run only, as large as its data."""
    if bundle["kind"] == "hyperopt":
        pickle = Path(
            bundle["config"]["user_data_dir"], "hyperopt_results", "hyperopt_tickerdata.pkl"
        )
        pickle.unlink(missing_ok=True)


def _fail(message: str) -> None:
    text = _CONTROL_CHARS.sub("", " ".join(message.split()))
    print(f"{ERROR_PREFIX} {text[:MAX_ERROR]}", file=sys.stderr, flush=True)


def main() -> int:
    try:
        make_undumpable()
    except OSError as error:
        _fail(f"cannot protect the job's entry: {error}")
        return 2
    STOPPER.install()
    try:
        if os.environ.pop(WAIT_FOR_JOB_ENV, None) == "1":
            Preloaded.start()
            bundle = receive_bundle(HANDOFF_SOCKET)
        else:
            bundle = take_bundle(os.environ)
        local_db = keep_db_local(bundle, os.environ) if bundle["kind"] == "bot" else None
        write_job_files(bundle)
    except (ValueError, KeyError, OSError) as error:
        _fail(f"invalid job bundle: {error}")
        return 2
    if bundle["kind"] == "bot":
        return run_bot(bundle, local_db)
    strategy = bundle.get("strategy_name")
    hyperopt_run = HyperoptWatch()
    fingerprint: InBackground | None = None
    if bundle["kind"] == "cache-fill":
        returncode = fill_cache(bundle)
        if returncode != 0:
            return returncode
    elif bundle["argv"]:
        startup = StartupWatch()
        fingerprint = InBackground(used_data, bundle) if "startup_candles" in bundle else None
        returncode, cause = run_freqtrade(
            bundle["argv"], strategy, watch=watch_all(startup, hyperopt_run)
        )
        if returncode != 0:
            _fail(cause or f"freqtrade exited with code {returncode}")
            return returncode
        if "startup_candles" in bundle:
            mismatch = startup.mismatch(strategy, bundle["startup_candles"])
            if mismatch is not None:
                _fail(mismatch)
                return EXIT_STARTUP_MISMATCH
    try:
        summary = SUMMARIZERS[bundle["kind"]](bundle)
        if bundle["kind"] == "hyperopt":
            summary.update(hyperopt_run.figures())
        if fingerprint is not None:
            summary["data"] = fingerprint.result()
        archive = result_file(bundle)
    except (SummaryError, KeyError, ValueError, TypeError, OSError, zipfile.BadZipFile) as error:
        _fail(f"could not summarise {bundle['kind']} results: {type(error).__name__}: {error}")
        return EXIT_SUMMARY_FAILED
    finally:
        _cleanup(bundle)
    if archive is not None:
        emit_archive(archive)
    sys.stderr.flush()
    print(RESULT_PREFIX + json.dumps(summary, separators=(",", ":"), allow_nan=False), flush=True)
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--preload"]:
        sys.exit(preload_and_run())
    if sys.argv[1:] == ["--hand-off"]:
        sys.exit(hand_off())
    sys.exit(main())
