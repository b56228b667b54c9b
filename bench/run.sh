#!/usr/bin/env bash
# Runs the sandbox overhead benchmark against a throwaway Postgres of its own (its own
# directory and port, so a test suite's Postgres running meanwhile is left alone), then
# stops and removes that Postgres, also on failure or interruption.
# usage: bench/run.sh [ARGS...]   (ARGS go to `python -m bench.sandbox_overhead`)
# env:   FTA_BENCH_PG_PORT  port of the throwaway Postgres (default 55442)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
pg_dir=.cache/bench-postgres

stop_postgres() {
  bash scripts/test-postgres.sh stop "$pg_dir" || true
  rm -rf "$pg_dir"
}
trap stop_postgres EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

FTA_TEST_PG_PORT=${FTA_BENCH_PG_PORT:-55442} bash scripts/test-postgres.sh start "$pg_dir"
# shellcheck source=/dev/null
source "$pg_dir/env"
.venv/bin/python -m bench.sandbox_overhead "$@"
