#!/usr/bin/env bash
# Creates (once) a host virtualenv holding the real freqtrade with its hyperopt extra,
# installed offline from the local wheel directory; missing wheels are fetched into that
# directory first (pip wheel), so the same directory also serves the image build.
# usage: ft-host-venv.sh [VENV_DIR]   (default .cache/ft-venv, relative to the repo)
# env:   FTA_FT_WHEELS  wheel directory (default $HOME/.cache/fta-build/wheels-ft)
#        FTA_FT_VERSION freqtrade version (default 2026.9)
# Prints the venv's absolute path on success.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
venv=$(realpath -m "${1:-$repo/.cache/ft-venv}")
wheels=${FTA_FT_WHEELS:-$HOME/.cache/fta-build/wheels-ft}
version=${FTA_FT_VERSION:-2026.9}
requirement="freqtrade[hyperopt]==$version"
stamp="$venv/.fta-freqtrade-hyperopt-$version"

mkdir -p "$(dirname "$venv")"
# Parallel test workers may call this at once: one builds, the others wait.
exec 9>"$venv.lock"
flock 9

if [ -f "$stamp" ] && "$venv/bin/freqtrade" --version >/dev/null 2>&1; then
  echo "$venv"
  exit 0
fi

rm -rf "$venv"
python3 -m venv "$venv"
if ! "$venv/bin/pip" install -q --no-index --find-links "$wheels" "$requirement" >/dev/null 2>&1; then
  mkdir -p "$wheels"
  "$venv/bin/pip" wheel -q --find-links "$wheels" -w "$wheels" "$requirement" >&2
  "$venv/bin/pip" install -q --no-index --find-links "$wheels" "$requirement" >&2
fi
"$venv/bin/python" -c "import freqtrade.optimize.hyperopt" >/dev/null
touch "$stamp"
echo "$venv"
