#!/usr/bin/env bash
# Starts or stops the root helper that mounts each tenant's size-capped disk (fta.tenantdisk).
# `make up` starts it before the containers; on a host with systemd, install
# deploy/fta-tenant-disk.service instead, so that tenant disks are mounted again at boot.
# usage: tenant-disks.sh start|stop
# env (else .env, else defaults): FTA_TENANT_DISK_ROOT, FTA_TENANT_DISK_RUN_DIR
set -euo pipefail
cd "$(dirname "$0")/.."

from_env_file() {
  [ -f .env ] && sed -n "s/^$1=//p" .env | tail -n 1
}
root=${FTA_TENANT_DISK_ROOT:-$(from_env_file FTA_TENANT_DISK_ROOT)}
root=${root:-/var/lib/fta/tenant-disks}
run_dir=${FTA_TENANT_DISK_RUN_DIR:-$(from_env_file FTA_TENANT_DISK_RUN_DIR)}
run_dir=${run_dir:-/run/fta-tenant-disk}
pid_file="$run_dir/helper.pid"
# The worker's uid in images/app: the only client the helper answers besides root.
worker_uid=10001

running() { [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; }

case "${1:-}" in
  start)
    if running; then exit 0; fi
    bash scripts/ensure-apt.sh e2fsprogs util-linux mount
    mkdir -p "$run_dir" "$root"
    PYTHONPATH="$PWD/src" setsid python3 -m fta.tenantdisk.helper --root "$root" \
      --socket "$run_dir/helper.sock" --client-uid "$worker_uid" \
      >>"$root/helper.log" 2>&1 </dev/null &
    echo $! >"$pid_file"
    for _ in $(seq 100); do
      [ -S "$run_dir/helper.sock" ] && exit 0
      running || break
      sleep 0.1
    done
    echo "tenant-disks: the helper did not start, see $root/helper.log" >&2
    tail -n 5 "$root/helper.log" >&2 || true
    exit 1
    ;;
  stop)
    # Mounted disks stay mounted: containers that use them keep working.
    if running; then kill "$(cat "$pid_file")"; fi
    rm -f "$pid_file"
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
