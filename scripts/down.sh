#!/usr/bin/env bash
# `make down`: stops and removes the stack's containers and networks, and the tenant disk
# helper; data volumes and tenant disks are kept.
set -euo pipefail
cd "$(dirname "$0")/.."

compose() {
  if command -v docker-compose >/dev/null 2>&1; then docker-compose "$@"; else docker compose "$@"; fi
}

# Compose reads the whole file, socket proxy's group included, even to stop it.
DOCKER_GID=$(stat -c %g /var/run/docker.sock)
export DOCKER_GID
compose down --remove-orphans
bash scripts/tenant-disks.sh stop
