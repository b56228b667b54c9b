"""The bundle a freqtrade container runs: its freqtrade configuration and arguments, the
strategy's source, and what the container's entry (`fta.freqtrade.entry`) checks and reports.

The bundle travels to the container in environment variables `FTA_BUNDLE_0..N`, each a chunk
of at most `BUNDLE_CHUNK_CHARS` characters of base64(gzip(json)); the container's entry
joins, decodes and removes them before running freqtrade (it keeps its own copy of the
decoding: it runs where no fta package is installed).
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import uuid
from typing import Any

from fta.freqtrade.bot_api import BotApiSecrets
from fta.freqtrade.config import (
    CONTAINER_PATHS,
    ContainerPaths,
    build_bot_config,
    build_job_config,
    cache_dir,
)
from fta.freqtrade.options import (
    JOB_KINDS,
    BotConfig,
    JobConfig,
    check_strategy_name,
    parse_job_config,
)
from fta.freqtrade.startup import declared_startup_candles

BUNDLE_VERSION = 1
BUNDLE_ENV_PREFIX = "FTA_BUNDLE_"
BUNDLE_CHUNK_CHARS = 100_000
_RUN_ID_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")


def _argv(kind: str, job: JobConfig, config: dict[str, Any], config_path: str) -> list[str]:
    common = [
        "--config",
        config_path,
        "--userdir",
        config["user_data_dir"],
        "--datadir",
        config["datadir"],
        "--timerange",
        job.timerange,
    ]
    if kind == "download-data":
        # The client's candles are cut from the shared cache: no freqtrade run of its own.
        return []
    if kind == "cache-fill":
        return [
            "download-data",
            *common,
            "--timeframes",
            job.timeframe,
            "--data-format-ohlcv",
            "feather",
            "--no-parallel-download",
        ]
    strategy = [
        "--strategy",
        config["strategy"],
        "--strategy-path",
        config["strategy_path"],
        "--timeframe",
        job.timeframe,
        "--no-color",
    ]
    if kind == "backtest":
        return [
            "backtesting",
            *common,
            *strategy,
            "--export",
            "trades",
            "--backtest-directory",
            config["exportdirectory"],
            "--cache",
            "none",
        ]
    return [
        "hyperopt",
        *common,
        *strategy,
        "--epochs",
        str(job.epochs),
        "--spaces",
        *job.spaces,
        "--hyperopt-loss",
        job.hyperopt_loss,
        "-j",
        str(config["hyperopt_jobs"]),
        *(
            ["--random-state", str(config["hyperopt_random_state"])]
            if "hyperopt_random_state" in config
            else []
        ),
    ]


def build_job_bundle(
    kind: str,
    job_config: JobConfig,
    strategy_name: str | None,
    strategy_source: str | None,
    gateway_url: str,
    *,
    run_id: str | None = None,
    paths: ContainerPaths = CONTAINER_PATHS,
    job_workers: int = 1,
) -> dict[str, Any]:
    """The JSON bundle the container entry runs.

    `run_id` (the job id) names the run's own directory in the tenant volume,
    `<user_data>/runs/<run_id>`: freqtrade's user_data_dir for this run, so concurrent jobs of
    one tenant never share result files or hyperopt's lock. `paths` moves the container paths
    (for tests on the host). `job_workers` is how many processes a hyperopt runs its epochs
    in (freqtrade's `-j`), decided by the platform from the plan, never by the client.
    """
    if job_workers < 1:
        raise ValueError("job_workers must be at least 1")
    if kind not in JOB_KINDS:
        raise ValueError(f"unknown job kind {kind!r}; expected one of {JOB_KINDS}")
    parse_job_config(kind, job_config.model_dump(exclude_unset=True))
    run = run_id if run_id is not None else uuid.uuid4().hex
    if not _RUN_ID_RE.fullmatch(run):
        raise ValueError("run_id must be 1-64 lowercase letters, digits or dashes")
    needs_strategy = kind in ("backtest", "hyperopt")
    if needs_strategy:
        if strategy_name is None or strategy_source is None:
            raise ValueError(f"a {kind} job needs a strategy")
        check_strategy_name(strategy_name)
    elif strategy_name is not None or strategy_source is not None:
        raise ValueError(f"a {kind} job runs no strategy")
    # cache-fill runs for no tenant: no tenant volume, its scratch user_data is on the tmpfs.
    if kind == "cache-fill":
        run_dir = paths.path(paths.job, "user_data")
    else:
        run_dir = paths.path(paths.user_data, "runs", run)
    config = build_job_config(
        kind, job_config, strategy_name, gateway_url, paths, run_dir, job_workers=job_workers
    )
    config_path = paths.path(paths.job, "config.json")
    argv = _argv(kind, job_config, config, config_path)
    bundle: dict[str, Any] = {
        "version": BUNDLE_VERSION,
        "kind": kind,
        "strategy_name": strategy_name,
        "strategy_source": strategy_source,
        "job_dir": paths.job,
        "config": config,
        "argv": argv,
    }
    bundle["timerange"] = job_config.timerange
    bundle["cache_dir"] = cache_dir(job_config.exchange, paths)
    if needs_strategy:
        assert strategy_name is not None and strategy_source is not None  # noqa: S101 - above
        # What the cache was filled for, and what the entry checks freqtrade used.
        bundle["startup_candles"] = declared_startup_candles(strategy_source, strategy_name)
    return bundle


def build_bot_bundle(
    config: BotConfig,
    *,
    bot_id: uuid.UUID,
    strategy_name: str,
    strategy_source: str,
    gateway_url: str,
    report_interval_s: int,
    api: BotApiSecrets,
    paths: ContainerPaths = CONTAINER_PATHS,
) -> dict[str, Any]:
    """The bundle the container entry runs for a bot: `freqtrade trade` with its REST API
    server on (secrets `api`), and every `report_interval_s` a status report read from the
    bot's own trade database."""
    freqtrade = build_bot_config(
        config,
        bot_id=bot_id,
        strategy_name=strategy_name,
        gateway_url=gateway_url,
        api=api,
        paths=paths,
    )
    config_path = paths.path(paths.job, "config.json")
    return {
        "version": BUNDLE_VERSION,
        "kind": "bot",
        "strategy_name": strategy_name,
        "strategy_source": strategy_source,
        "job_dir": paths.job,
        "config": freqtrade,
        "argv": ["trade", "--config", config_path],
        "report": {
            "interval_s": report_interval_s,
            "db_path": freqtrade["db_url"].removeprefix("sqlite:///"),
            "wallet": str(config.dry_run_wallet),
        },
    }


def encode_bundle(bundle: dict[str, Any]) -> dict[str, str]:
    """Environment variables FTA_BUNDLE_0..N carrying base64(gzip(json(bundle)))."""
    raw = json.dumps(bundle, separators=(",", ":"), sort_keys=True).encode()
    text = base64.b64encode(gzip.compress(raw, mtime=0)).decode("ascii")
    chunks = [text[i : i + BUNDLE_CHUNK_CHARS] for i in range(0, len(text), BUNDLE_CHUNK_CHARS)]
    return {f"{BUNDLE_ENV_PREFIX}{index}": chunk for index, chunk in enumerate(chunks)}


def decode_bundle(env: dict[str, str]) -> dict[str, Any]:
    """The inverse of `encode_bundle` (the container entry has its own stdlib copy)."""
    chunks: list[str] = []
    while f"{BUNDLE_ENV_PREFIX}{len(chunks)}" in env:
        chunks.append(env[f"{BUNDLE_ENV_PREFIX}{len(chunks)}"])
    if not chunks:
        raise ValueError("no FTA_BUNDLE_0 in the environment")
    bundle: dict[str, Any] = json.loads(gzip.decompress(base64.b64decode("".join(chunks))))
    return bundle
