"""The container entry's pure parts and the worker's validation of its result line."""

from __future__ import annotations

import collections
import contextlib
import http.server
import importlib.util
import json
import os
import sqlite3
import subprocess
import sys
import threading
import zipfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from fta.freqtrade import markers
from fta.freqtrade.bundle import (
    BUNDLE_ENV_PREFIX,
    BUNDLE_VERSION,
    build_job_bundle,
    encode_bundle,
)
from fta.freqtrade.options import parse_job_config
from fta.jobs.summary import (
    MAX_RESULT_LINE_BYTES,
    BacktestSummary,
    DataSummary,
    HyperoptSummary,
    parse_result_line,
)
from fta.settings import Settings
from fta.worker.log_capture import LogCapture, ResultArchive

ENTRY = Path(__file__).resolve().parents[2] / "src" / "fta" / "freqtrade" / "entry.py"
BASE = {"pairs": ["BTC/USDT", "ETH/USDT"], "timeframe": "5m", "timerange": "20240101-20240201"}


@pytest.fixture(scope="module")
def entry() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fta_job_entry", ENTRY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_take_bundle_decodes_and_scrubs_the_environment(entry: ModuleType) -> None:
    job = parse_job_config("backtest", BASE)
    bundle = build_job_bundle("backtest", job, "Mine", "x = 1\n", "http://gw:8090", run_id="r")
    environ = {**encode_bundle(bundle), "FTA_BUNDLE_77": "stray", "HOME": "/tmp"}
    assert entry.take_bundle(environ) == bundle
    assert environ == {"HOME": "/tmp"}


def test_take_bundle_refuses_garbage(entry: ModuleType) -> None:
    with pytest.raises(ValueError, match="FTA_BUNDLE_0 is not set"):
        entry.take_bundle({})
    with pytest.raises(ValueError):
        entry.take_bundle({"FTA_BUNDLE_0": "not base64!"})


def test_a_bundle_waiting_at_an_address_is_fetched_once(entry: ModuleType) -> None:
    job = parse_job_config("backtest", BASE)
    bundle = build_job_bundle("backtest", job, "Mine", "x = 1\n", "http://gw:8090", run_id="r")
    text = "".join(encode_bundle(bundle).values()).encode("ascii")
    requests: list[str] = []

    class Bucket(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        def log_message(self, *_: object) -> None:
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Bucket) as server:
        thread = threading.Thread(target=server.handle_request, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{server.server_address[1]}/bundles/t1/job?X-Amz-Signature=abc"
        fetched = entry.fetch_bundle(url, schemes=("http",))
        thread.join(timeout=10)
    assert entry.decode_bundle(fetched) == bundle
    assert requests == ["/bundles/t1/job?X-Amz-Signature=abc"]


def test_a_bundle_address_must_be_https(entry: ModuleType) -> None:
    environ = {"FTA_BUNDLE_URL": "http://127.0.0.1:9/bundles/t1/job"}
    with pytest.raises(ValueError, match="must use https, not http"):
        entry.take_bundle(environ)
    with pytest.raises(ValueError, match="not file"):
        entry.fetch_bundle("file:///etc/passwd")


def _trades(path: Path) -> list[tuple[int, str]]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return list(db.execute("SELECT id, pair FROM trades ORDER BY id"))


def test_a_bots_database_on_a_network_file_system_is_kept_local_and_copied_back(
    entry: ModuleType, tmp_path: Path
) -> None:
    shared = tmp_path / "efs" / "tradesv3.dryrun.sqlite"
    shared.parent.mkdir()
    with contextlib.closing(sqlite3.connect(shared)) as db:
        db.execute("CREATE TABLE trades (id INTEGER PRIMARY KEY, pair TEXT)")
        db.execute("INSERT INTO trades VALUES (1, 'BTC/USDT')")
        db.commit()
    bundle = {
        "config": {"db_url": f"sqlite:///{shared}"},
        "report": {"db_path": str(shared)},
    }
    environ = {"FTA_DB_SNAPSHOT_SECONDS": "300", "HOME": "/tmp"}
    local_dir = tmp_path / "local"
    local_db = entry.keep_db_local(bundle, environ, str(local_dir))
    local = local_dir / shared.name
    # The bot writes and reports on the local copy only.
    assert bundle["config"]["db_url"] == f"sqlite:///{local}"
    assert bundle["report"]["db_path"] == str(local)
    assert environ == {"HOME": "/tmp"} and local_db.every_s == 300
    assert _trades(local) == [(1, "BTC/USDT")]

    with contextlib.closing(sqlite3.connect(local)) as db:
        db.execute("INSERT INTO trades VALUES (2, 'ETH/USDT')")
        db.commit()
    assert _trades(shared) == [(1, "BTC/USDT")]
    local_db.snapshot()
    assert _trades(shared) == [(1, "BTC/USDT"), (2, "ETH/USDT")]
    # Nothing left aside, on either side.
    assert sorted(p.name for p in shared.parent.iterdir()) == [shared.name]
    assert sorted(p.name for p in local_dir.iterdir()) == [shared.name]


def test_a_bot_without_a_shared_database_starts_afresh_and_others_are_left_alone(
    entry: ModuleType, tmp_path: Path
) -> None:
    shared = tmp_path / "tradesv3.dryrun.sqlite"
    bundle = {"config": {"db_url": f"sqlite:///{shared}"}, "report": {"db_path": str(shared)}}
    assert entry.keep_db_local(dict(bundle), {}, str(tmp_path / "local")) is None
    local_db = entry.keep_db_local(
        bundle, {"FTA_DB_SNAPSHOT_SECONDS": "60"}, str(tmp_path / "local")
    )
    local_db.snapshot()  # freqtrade made no database yet: nothing to copy
    assert not shared.exists()


def cause(entry: ModuleType, lines: list[str], strategy: str | None = "Mine") -> str | None:
    result: str | None = entry._cause(collections.deque(lines), strategy)
    return result


def test_cause_of_an_import_error(entry: ModuleType) -> None:
    lines = [
        "2026 - freqtrade.resolvers.iresolver - WARNING - Could not import "
        "/tmp/job/strategies/Mine.py due to 'No module named 'nope''",
        "2026 - freqtrade - ERROR - Impossible to load Strategy 'Mine'. This class does not "
        "exist or contains Python code errors.",
    ]
    assert cause(entry, lines) == "strategy Mine failed to import: No module named 'nope'"


def test_cause_of_an_exception_raised_on_import(entry: ModuleType) -> None:
    lines = [
        "2026 - freqtrade - ERROR - Fatal exception!",
        "Traceback (most recent call last):",
        '  File "/venv/freqtrade/resolvers/iresolver.py", line 99, in _get_valid_object',
        "    spec.loader.exec_module(module)  # type: ignore",
        '  File "<frozen importlib._bootstrap_external>", line 940, in exec_module',
        '  File "/tmp/job/strategies/Mine.py", line 3, in <module>',
        "    BROKEN = 1 / 0",
        "ZeroDivisionError: division by zero",
    ]
    assert cause(entry, lines) == (
        "strategy Mine failed to import: ZeroDivisionError: division by zero"
    )


def test_cause_of_an_exception_raised_while_running(entry: ModuleType) -> None:
    lines = [
        "Traceback (most recent call last):",
        '  File "/venv/freqtrade/optimize/backtesting.py", line 10, in load',
        '  File "/tmp/job/strategies/Mine.py", line 30, in populate_indicators',
        '    raise KeyError("rsi")',
        "KeyError: 'rsi'",
    ]
    assert cause(entry, lines) == "strategy Mine raised KeyError: 'rsi'"


def test_cause_from_freqtrade_errors(entry: ModuleType) -> None:
    load = "2026 - freqtrade - ERROR - Impossible to load Strategy 'Other'. This class does not"
    assert cause(entry, [load]) == "Impossible to load Strategy 'Other'. This class does not"
    lines = [
        "2026 - freqtrade - ERROR - No data found. Terminating.",
        "2026 - freqtrade - ERROR - Fatal exception!",
    ]
    assert cause(entry, lines) == "No data found. Terminating."
    assert cause(entry, ["plain output"]) is None


def write_backtest_result(directory: Path, pair_count: int) -> None:
    directory.mkdir(parents=True)
    name = "backtest-result-2026-01-01_00-00-00"
    rows = [
        {
            "key": f"P{i}/USDT",
            "trades": i,
            "profit_total": 0.012345678,
            "profit_total_abs": 1.5,
            "winrate": 0.5,
        }
        for i in range(pair_count)
    ]
    rows.append({"key": "TOTAL", "trades": 999, "profit_total": 1, "profit_total_abs": 1})
    stats = {
        "strategy": {
            "Mine": {
                "results_per_pair": rows,
                "timeframe": "5m",
                "timerange": "20240101-20240201",
                "stake_currency": "USDT",
                "backtest_start_ts": 1704067200000,
                "backtest_end_ts": 1706745600000,
                "total_trades": 83,
                "wins": 54,
                "losses": 29,
                "draws": 0,
                "profit_total": 0.018261179819999994,
                "profit_total_abs": 18.261179819999995,
                "max_drawdown_account": 0.01459860549164286,
                "max_drawdown_abs": 15.002195489999993,
                "winrate": float("nan"),
                "starting_balance": 1000,
                "final_balance": 1018.26117982,
            }
        },
        "strategy_comparison": [],
    }
    with zipfile.ZipFile(directory / f"{name}.zip", "w") as archive:
        archive.writestr(f"{name}.json", json.dumps(stats))
    (directory / ".last_result.json").write_text(json.dumps({"latest_backtest": f"{name}.zip"}))


def result_line(entry: ModuleType, summary: dict[str, Any]) -> str:
    return str(entry.RESULT_PREFIX) + json.dumps(summary, separators=(",", ":"), allow_nan=False)


def test_backtest_summary_is_capped_and_valid(entry: ModuleType, tmp_path: Path) -> None:
    results = tmp_path / "backtest_results"
    write_backtest_result(results, pair_count=150)
    bundle = {"strategy_name": "Mine", "config": {"exportdirectory": str(results)}}
    summary = entry.summarize_backtest(bundle)
    assert summary["trades"] == 83
    assert summary["profit_total_pct"] == 1.8261
    assert summary["max_drawdown_pct"] == 1.4599
    assert summary["win_rate"] is None  # NaN never leaves the container
    assert summary["pairs_total"] == 150 and len(summary["pairs"]) == 100
    assert parse_result_line(result_line(entry, summary)) is None  # no data: not valid
    summary["data"] = FINGERPRINT
    parsed = parse_result_line(result_line(entry, summary))
    assert isinstance(parsed, BacktestSummary)
    assert parsed.profit_total_abs == Decimal("18.26117982")
    assert parsed.pairs[1].pair == "P1/USDT"


def test_hyperopt_summary_takes_the_best_epoch(entry: ModuleType, tmp_path: Path) -> None:
    results = tmp_path / "run" / "hyperopt_results"
    results.mkdir(parents=True)
    epochs = [
        {"current_epoch": 1, "loss": -1.0, "is_best": True, "params_details": {"buy": {"a": 1}}},
        {"current_epoch": 2, "loss": 5.0, "is_best": False, "params_details": {}},
        {
            "current_epoch": 3,
            "loss": -2.5,
            "is_best": True,
            "params_details": {"buy": {"a": 7}, "roi": {"0": 0.05}, "trailing": {"t": False}},
            "results_metrics": {"total_trades": 12, "profit_total": 0.1},
        },
    ]
    (results / "s.fthypt").write_text("".join(json.dumps(epoch) + "\n" for epoch in epochs))
    (results / ".last_result.json").write_text(json.dumps({"latest_hyperopt": "s.fthypt"}))
    bundle = {
        "strategy_name": "Mine",
        "job_dir": str(tmp_path / "job"),
        "config": {"user_data_dir": str(tmp_path / "run"), "hyperopt_loss": "SharpeHyperOptLoss"},
    }
    (tmp_path / "job" / "strategies").mkdir(parents=True)
    (tmp_path / "job" / "strategies" / "Mine.json").write_text(PARAMETER_FILE)
    summary = entry.summarize_hyperopt(bundle)
    assert summary["epochs"] == 3 and summary["best_epoch"] == 3 and summary["loss"] == -2.5
    assert summary["params"] == {"buy": {"a": 7}, "roi": {"0": 0.05}, "trailing": {"t": False}}
    assert summary["parameter_file"] == json.loads(PARAMETER_FILE)
    summary["data"] = FINGERPRINT
    assert parse_result_line(result_line(entry, summary)) is None  # no seed: not valid
    summary.update(random_state=4242, job_workers=2)
    parsed = parse_result_line(result_line(entry, summary))
    assert isinstance(parsed, HyperoptSummary)
    assert parsed.trades == 12 and parsed.profit_total_pct == Decimal("10.0")
    assert parsed.random_state == 4242 and parsed.job_workers == 2
    assert parsed.parameter_file is not None
    # freqtrade's floats travel digit for digit.
    assert parsed.parameter_file.params["roi"]["0"] == Decimal("0.30000000000000004")


# What freqtrade 2026.9 writes next to the strategy for the best epoch.
PARAMETER_FILE = """{
  "strategy_name": "Mine",
  "params": {
    "roi": {"0": 0.30000000000000004, "40": 0.021, "100": 0},
    "stoploss": {"stoploss": -0.05},
    "trailing": {"trailing_stop": false, "trailing_stop_positive": null,
                 "trailing_stop_positive_offset": 0.0, "trailing_only_offset_is_reached": false},
    "max_open_trades": {"max_open_trades": 3},
    "buy": {"a": 7, "mode": "fast"}
  },
  "ft_stratparam_v": 1,
  "export_time": "2026-12-05 22:01:30.953864+00:00"
}"""


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"buy": {"a": [1, 2]}}, "buy.a: a list value"),
        ({"buy": {"a": float("nan")}}, "buy.a: nan is out of range"),
        ({"buy": {"a": 1e-30}}, "buy.a: 1e-30 is out of range"),
        ({"buy": {"a": "x" * 101}}, "buy.a: 'xxxxxxxxxxxxxxxxxxxx'... is too long"),
        ({"buy": {f"p{i}": i for i in range(101)}}, "more than 100 parameters in buy"),
    ],
)
def test_a_parameter_file_that_cannot_travel_unchanged_is_left_out(
    entry: ModuleType, tmp_path: Path, change: dict[str, Any], problem: str, capsys: Any
) -> None:
    data = json.loads(PARAMETER_FILE)
    data["params"].update(change)
    (tmp_path / "strategies").mkdir()
    (tmp_path / "strategies" / "Mine.json").write_text(json.dumps(data))
    assert entry.parameter_file({"strategy_name": "Mine", "job_dir": str(tmp_path)}) is None
    assert f"Mine.json cannot be downloaded: {problem}" in capsys.readouterr().err


def test_the_hyperopt_watch_reads_freqtrades_seed_and_workers(entry: ModuleType) -> None:
    watch = entry.HyperoptWatch()
    prefix = "2026-12-05 22:01:34,610 - freqtrade.optimize.hyperopt.hyperopt - INFO - "
    with pytest.raises(entry.SummaryError):
        watch.figures()
    watch(prefix + "Using optimizer random state: 31337")
    watch(prefix + "Effective number of parallel workers used: 2")
    watch(prefix + "Using optimizer random state: 1")  # only freqtrade's first line counts
    watch("print: Using optimizer random state: 5")
    assert watch.figures() == {"random_state": 31337, "job_workers": 2}


def test_missing_results_are_a_summary_error(entry: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(entry.SummaryError):
        entry.summarize_backtest({"strategy_name": "Mine", "config": {"exportdirectory": "/n"}})


DATA_LINE = (
    'FTA-RESULT:{"kind":"cache-fill","exchange":"binance","timeframe":"5m",'
    '"timerange":"20240101-20240201","data":{"sha256":"' + "ab" * 32 + '","startup_candles":0,'
    '"pairs":[{"pair":"BTC/USDT","candles":8998,"first_ms":1704067200000,'
    '"last_ms":1706766300000}]}}'
)
FINGERPRINT = {"sha256": "0f" * 32, "startup_candles": 20, "pairs": []}


def test_parse_result_line_accepts_a_data_summary() -> None:
    parsed = parse_result_line(DATA_LINE + "\n")
    assert isinstance(parsed, DataSummary)
    assert parsed.data.pairs[0].candles == 8998 and parsed.data.sha256 == "ab" * 32


@pytest.mark.parametrize(
    "line",
    [
        DATA_LINE.replace("FTA-RESULT:", "FTA-RESULT "),
        DATA_LINE.replace('"kind":"cache-fill"', '"kind":"trade"'),
        DATA_LINE.replace('"exchange":"binance"', '"exchange":"binance","extra":1'),
        DATA_LINE.replace('"candles":8998', '"candles":-1'),
        DATA_LINE.replace('"candles":8998', '"candles":NaN'),
        DATA_LINE.replace('"candles":8998', '"candles":1e400'),
        DATA_LINE.replace('"exchange":"binance"', '"exchange":"bin\\u001bance"'),
        DATA_LINE.replace('"exchange":"binance"', '"exchange":"' + "x" * 101 + '"'),
        DATA_LINE[:-5],
        DATA_LINE.replace("ab" * 32, "AB" * 32),
        DATA_LINE.replace(',"data":{', ',"nodata":{'),
        "FTA-RESULT:" + "[" * 100_000,
        'FTA-RESULT:{"kind":"hyperopt","loss":Infinity}',
    ],
)
def test_parse_result_line_refuses_invalid_lines(line: str) -> None:
    assert parse_result_line(line) is None


def test_parse_result_line_refuses_oversized_lines() -> None:
    padding = " " * MAX_RESULT_LINE_BYTES
    assert parse_result_line(DATA_LINE.replace(":[", ":" + padding + "[", 1)) is None


def test_parse_result_line_caps_rows() -> None:
    row = '{"pair":"BTC/USDT","candles":1,"first_ms":1,"last_ms":1}'
    many = DATA_LINE.split('"pairs":')[0] + '"pairs":[' + ",".join([row] * 101) + "]}}"
    assert parse_result_line(many.replace(",".join([row] * 101), row)) is not None
    assert parse_result_line(many) is None


def test_parse_result_line_checks_the_kind_and_a_lower_cap() -> None:
    assert parse_result_line(DATA_LINE, kind="cache-fill") is not None
    assert parse_result_line(DATA_LINE, kind="download-data") is None
    assert parse_result_line(DATA_LINE, kind="backtest") is None
    assert parse_result_line(DATA_LINE, max_bytes=100) is None
    assert parse_result_line(DATA_LINE, max_bytes=10 * MAX_RESULT_LINE_BYTES) is not None
    assert parse_result_line(None) is None


# ---- the entry as the container's PID 1: output, signals, archive ------------------------


LOAD_ENTRY = (
    "import ctypes, importlib.util, json, sys\n"
    f"spec = importlib.util.spec_from_file_location('entry', {str(ENTRY)!r})\n"
    "entry = importlib.util.module_from_spec(spec)\n"
    "spec.loader.exec_module(entry)\n"
)


@dataclass(frozen=True)
class EntryRun:
    returned: list[Any]
    stdout: bytes
    stderr: bytes


def run_freqtrade(tmp_path: Path, script: str) -> EntryRun:
    """The entry's run_freqtrade, in a process of its own (it reaps any child), with a fake
    `freqtrade` running `script`."""
    program = tmp_path / "freqtrade"
    program.write_text("#!/bin/sh\n" + script)
    program.chmod(0o755)
    returned = tmp_path / "returned.json"
    code = LOAD_ENTRY + f"json.dump(entry.run_freqtrade([], None), open({str(returned)!r}, 'w'))"
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, check=True, timeout=120
    )
    return EntryRun(json.loads(returned.read_text()), done.stdout, done.stderr)


def test_freqtrade_output_is_escaped_cut_and_capped(entry: ModuleType, tmp_path: Path) -> None:
    run = run_freqtrade(
        tmp_path,
        'echo "FTA-RESULT:{}"\n'
        'echo "FTA-ARCHIVE:end" >&2\n'
        "head -c 40000 /dev/zero | tr '\\0' x; echo\n"
        "yes flood | head -n 200000\n"
        "echo 'freqtrade - ERROR - it went wrong' >&2\n"
        "exit 3\n",
    )
    # The cause is still found in stderr lines that were not forwarded.
    assert run.returned == [3, "it went wrong"]
    lines = run.stdout.splitlines(keepends=True)
    # A line that starts like a marker is escaped, whichever stream it came through.
    assert lines[0] == b"[job] FTA-RESULT:{}\n"
    assert run.stderr == b"[job] FTA-ARCHIVE:end\n"
    # A long line keeps its first engine log record's worth.
    assert lines[1] == b"x" * entry.OUTPUT_MAX_LINE + b"\n"
    # Both streams share one budget, then one notice; the rest is drained and dropped.
    assert lines[-1] == entry.OUTPUT_CAPPED.format(entry.OUTPUT_MAX_BYTES).encode()
    assert set(lines[2:-1]) == {b"flood\n"}
    forwarded = [*lines[:-1], run.stderr]
    cost = sum(len(line) + entry.OUTPUT_LINE_COST for line in forwarded)
    assert entry.OUTPUT_MAX_BYTES - 80 < cost <= entry.OUTPUT_MAX_BYTES


def test_a_signal_that_ends_freqtrade_is_its_exit_code(tmp_path: Path) -> None:
    run = run_freqtrade(tmp_path, "echo started\nkill -TERM $$\n")
    assert run.returned == [143, "freqtrade was stopped by SIGTERM"]
    assert run.stdout == b"started\n"


def test_the_entry_makes_itself_undumpable() -> None:
    probe = LOAD_ENTRY + (
        "libc = ctypes.CDLL(None)\n"
        "before = libc.prctl(entry.PR_GET_DUMPABLE, 0, 0, 0, 0)\n"
        "entry.make_undumpable()\n"
        "print(before, libc.prctl(entry.PR_GET_DUMPABLE, 0, 0, 0, 0))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.split() == ["1", "0"]


def test_an_emitted_archive_is_collected_whole(
    entry: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content = os.urandom(3 * entry.ARCHIVE_CHUNK_BYTES + 5)
    path = tmp_path / "backtest-result.zip"
    path.write_bytes(content)
    entry.emit_archive(path)
    lines = capsys.readouterr().out.splitlines(keepends=True)
    assert lines[-1].startswith(f"FTA-ARCHIVE:end:{len(content)}:")
    capture = LogCapture(max_line=100, max_total=100)
    for line in lines:
        capture.feed(line)
    assert capture.archive == ResultArchive("backtest-result.zip", content)
    # One line lost on the way, and nothing is kept.
    capture = LogCapture(max_line=100, max_total=1000)
    for line in lines[:2] + lines[3:]:
        capture.feed(line)
    assert capture.archive is None and capture.archive_problem


def test_the_output_cap_leaves_the_worker_its_own_caps(entry: ModuleType) -> None:
    fields = Settings.model_fields
    assert 2 * fields["job_log_max_bytes"].default <= entry.OUTPUT_MAX_BYTES
    assert fields["job_log_max_line"].default <= entry.OUTPUT_MAX_LINE
    # The engine never splits a forwarded line: the worker reads each as the entry wrote it.
    assert entry.OUTPUT_MAX_LINE + 1 <= 16 * 1024


def test_the_entry_imports_only_the_standard_library_at_import_time() -> None:
    # Loaded by path in an isolated interpreter, as in the job image: no fta, no site-packages.
    probe = (
        "import importlib.util, json, sys\n"
        "before = set(sys.modules)\n"
        f"spec = importlib.util.spec_from_file_location('entry', {str(ENTRY)!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    run = subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, check=True
    )
    loaded = json.loads(run.stdout)
    outside = [
        name
        for name in loaded
        if name.split(".")[0] not in sys.stdlib_module_names and name != "entry"
    ]
    assert outside == []


def test_the_entrys_own_copies_equal_the_platforms(entry: ModuleType) -> None:
    assert entry.RESULT_PREFIX == markers.RESULT_PREFIX
    assert entry.ERROR_PREFIX == markers.ERROR_PREFIX
    assert entry.ARCHIVE_PREFIX == markers.ARCHIVE_PREFIX
    assert entry.STATUS_PREFIX == markers.STATUS_PREFIX
    assert markers.MARKER_START.encode() == entry.MARKER_START
    assert markers.ESCAPED_MARKER.encode() == entry.ESCAPED_MARKER
    assert entry.BUNDLE_ENV_PREFIX == BUNDLE_ENV_PREFIX
    assert entry.BUNDLE_VERSION == BUNDLE_VERSION
