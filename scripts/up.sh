#!/usr/bin/env bash
# `make up`: boots the whole stack on this host and waits until the portal answers.
# Steps: secrets (.env), images (built locally, no registry), host firewall, tenant disk
# helper, containers.
# env: FTA_UP_TIMEOUT  seconds to wait for the portal (default 180)
set -euo pipefail
cd "$(dirname "$0")/.."
portal_url=http://127.0.0.1:8080/
timeout=${FTA_UP_TIMEOUT:-180}

compose() {
  if command -v docker-compose >/dev/null 2>&1; then docker-compose "$@"; else docker compose "$@"; fi
}

bash scripts/gen-env.sh
bash images/build.sh all
if [ -f deploy/host-firewall.sh ]; then
  bash deploy/host-firewall.sh apply
fi
bash scripts/tenant-disks.sh start
# The socket proxy runs unprivileged with the socket's group, which differs between hosts.
DOCKER_GID=$(stat -c %g /var/run/docker.sock)
export DOCKER_GID
compose up -d --remove-orphans

deadline=$((SECONDS + timeout))
until curl -fsS -o /dev/null --max-time 3 "${portal_url}healthz"; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "up: the portal did not answer on ${portal_url}healthz within ${timeout} s" >&2
    compose ps >&2
    compose logs --tail 30 migrate portal nginx >&2
    exit 1
  fi
  sleep 2
done
echo "fta is up: $portal_url"
