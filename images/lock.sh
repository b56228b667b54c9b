#!/usr/bin/env bash
# Writes the images' Python lock files, images/app/requirements.lock and
# images/freqtrade/requirements.lock: every distribution the image installs, pinned, with the
# SHA-256 of each of its files on PyPI. images/build.sh fetches with --require-hashes and the
# images install with it again, so two builds of one commit install the same bytes, and a
# tampered or replaced wheel stops the build.
# Run it after changing pyproject.toml's dependencies or the freqtrade version (it needs PyPI),
# then commit both files; tests/unit/test_wheel_locks.py checks they agree with pyproject.toml.
# usage: images/lock.sh
# env:   FTA_BUILD_CACHE  where its pip-tools venv lives (default $HOME/.cache/fta-build)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${FTA_BUILD_CACHE:-$HOME/.cache/fta-build}
freqtrade_version=$(sed -n 's/^freqtrade_version=//p' "$repo/images/build.sh")

python=
for candidate in python3.11 python3; do
  if command -v "$candidate" >/dev/null 2>&1 \
    && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    python=$candidate
    break
  fi
done
# The images run Debian bookworm's python3 (3.11): the resolution must be a 3.11's too.
[ -n "$python" ] || { echo "lock: a Python 3.11 is needed on the host" >&2; exit 1; }
venv=$cache/lock-venv
if [ ! -x "$venv/bin/pip-compile" ]; then
  "$python" -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check pip-tools
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# lock NAME REQUIREMENTS_FILE: writes images/NAME/requirements.lock.
lock() {
  local out=$repo/images/$1/requirements.lock
  {
    echo "# The $1 image's Python distributions, pinned with their hashes."
    echo "# Written by images/lock.sh: do not edit by hand."
    (cd "$work" && "$venv/bin/pip-compile" -q --generate-hashes --allow-unsafe --strip-extras \
      --no-header --no-annotate --no-emit-index-url --no-emit-find-links --output-file - "$2")
  } >"$work/$1.lock"
  mv "$work/$1.lock" "$out"
  echo "lock: $out ($(grep -c '==' "$out") distributions)"
}

# The app: its runtime dependencies and the build backend that builds fta in the image.
"$python" - "$repo/pyproject.toml" >"$work/app.in" <<'PY'
import sys
import tomllib

with open(sys.argv[1], "rb") as handle:
    meta = tomllib.load(handle)
print("\n".join(meta["project"]["dependencies"] + meta["build-system"]["requires"]))
PY
lock app app.in

echo "freqtrade[hyperopt]==$freqtrade_version" >"$work/freqtrade.in"
lock freqtrade freqtrade.in
