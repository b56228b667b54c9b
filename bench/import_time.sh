#!/usr/bin/env bash
# How long importing freqtrade's backtesting stack takes: with the host venv of
# scripts/ft-host-venv.sh, in the job image (its files served by Docker's storage driver),
# and in the job image with its venv copied onto a volume (the host's own filesystem).
# Explains where a job container's start-up time goes; see docs/benchmarks.md.
# usage: bench/import_time.sh [RUNS]   (default 3)
# env:   FTA_JOB_IMAGE  the job image (default fta/freqtrade:2026.9)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-3}
image=${FTA_JOB_IMAGE:-fta/freqtrade:2026.9}
volume=fta-bench-import-$$
trap 'docker volume rm -f "$volume" >/dev/null 2>&1 || true' EXIT

probe='import resource, time
t = time.monotonic()
import ccxt, pandas, freqtrade.optimize.backtesting
u = resource.getrusage(resource.RUSAGE_SELF)
print(f"{time.monotonic() - t:.2f} s wall, {u.ru_utime:.2f} s user, {u.ru_stime:.2f} s system")'
hardened=(--rm --read-only --user 10000:10000 --cap-drop ALL --security-opt no-new-privileges
  --label fta.test=1 --network none --entrypoint python3)
venv=$(bash "$repo/scripts/ft-host-venv.sh")

docker volume create --label fta.test=1 "$volume" >/dev/null
docker run --rm --user 0 --label fta.test=1 --network none -v "$volume:/copy" \
  --entrypoint cp "$image" -a /opt/freqtrade/. /copy/

for ((i = 1; i <= runs; i++)); do
  echo "host venv:                          $("$venv/bin/python" -c "$probe")"
  echo "container, 1 CPU:                   $(docker run "${hardened[@]}" --cpus 1 "$image" -c "$probe")"
  echo "container, no CPU limit:            $(docker run "${hardened[@]}" "$image" -c "$probe")"
  echo "container, 1 CPU, venv on a volume: $(docker run "${hardened[@]}" --cpus 1 \
    -v "$volume:/opt/freqtrade:ro" "$image" -c "$probe")"
done
