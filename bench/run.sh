#!/usr/bin/env bash
# Runs a benchmark against a throwaway Postgres of its own (its own directory and port, so a
# test suite's Postgres running meanwhile is left alone), then stops and removes that
# Postgres, also on failure or interruption.
# usage: bench/run.sh [ARGS...]   (ARGS go to `python -m bench.$FTA_BENCH`)
# env:   FTA_BENCH          sandbox_overhead (default) or bot_footprint
#        FTA_BENCH_PG_PORT  port of the throwaway Postgres (default 55442)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
pg_dir=.cache/bench-postgres

# shellcheck disable=SC2317  # called by the EXIT trap
stop_postgres() {
  bash scripts/test-postgres.sh stop "$pg_dir" || true
  rm -rf "$pg_dir"
}
trap stop_postgres EXIT

FTA_TEST_PG_PORT=${FTA_BENCH_PG_PORT:-55442} bash scripts/test-postgres.sh start "$pg_dir"
# shellcheck source=/dev/null
source "$pg_dir/env"

# In the background so that an interruption reaches it as SIGTERM, on which it removes
# everything it created before exiting; Postgres is stopped only after that.
.venv/bin/python -m "bench.${FTA_BENCH:-sandbox_overhead}" "$@" &
bench=$!
trap 'kill -TERM "$bench" 2>/dev/null || true' INT TERM
status=0
wait "$bench" || status=$?
if kill -0 "$bench" 2>/dev/null; then
  wait "$bench" || status=$?
fi
exit "$status"
