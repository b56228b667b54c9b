#!/usr/bin/env bash
# How long importing freqtrade's backtesting stack takes: with the host venv of
# scripts/ft-host-venv.sh, in the job image (its files served by Docker's storage driver),
# and in the job image with its Python environment (/opt/freqtrade: venv and standard
# library) on a read-only volume that the engine filled from the image, as the worker runs jobs.
# Explains where a job container's start-up time goes; see docs/benchmarks.md.
# One discarded warm-up round, then RUNS rounds; prints every sample, then the medians.
# usage: bench/import_time.sh [RUNS]   (default 5)
# env:   FTA_JOB_IMAGE  the job image (default fta/freqtrade:2026.9)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-5}
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

# As the worker fills it: the engine copies the image's directory into the empty volume when
# it creates a container that mounts the volume there; that container never starts.
docker volume create --label fta.test=1 "$volume" >/dev/null
filler=$(docker create --label fta.test=1 --network none \
  --mount "type=volume,source=$volume,target=/opt/freqtrade,readonly" "$image")
docker rm "$filler" >/dev/null

labels=("host venv" "container, 1 CPU" "container, no CPU limit"
  "container, 1 CPU, env on a volume")
sample() {
  case $1 in
    0) "$venv/bin/python" -c "$probe" ;;
    1) docker run "${hardened[@]}" --cpus 1 "$image" -c "$probe" ;;
    2) docker run "${hardened[@]}" "$image" -c "$probe" ;;
    3) docker run "${hardened[@]}" --cpus 1 \
      --mount "type=volume,source=$volume,target=/opt/freqtrade,readonly" "$image" -c "$probe" ;;
  esac
}

walls=("" "" "" "")
for ((round = 0; round <= runs; round++)); do
  for i in 0 1 2 3; do
    out=$(sample "$i")
    if ((round > 0)); then # round 0 warms the page cache up
      printf '%-36s %s\n' "${labels[i]}:" "$out"
      walls[i]+="${out%% s wall*} "
    fi
  done
done
echo "medians of the wall times ($runs runs):"
for i in 0 1 2 3; do
  # shellcheck disable=SC2086  # one number per word
  median=$(printf '%s\n' ${walls[i]} | sort -n |
    awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
  printf '%-36s %s s\n' "${labels[i]}:" "$median"
done
