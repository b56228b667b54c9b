#!/usr/bin/env bash
# Regenerates docs/screenshots/: the main pages of a client with a strategy, a backtest and a
# bot, in Chromium against the real portal and worker (needs `make venv images testdb`).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
# shellcheck source=/dev/null
source .cache/test-postgres/env
FTA_SCREENSHOTS_DIR="$repo/docs/screenshots" .venv/bin/pytest -q -p no:warnings \
  tests/browser/test_screenshots.py
