#!/usr/bin/env bash
# Runs an `fta` command in a service of the running stack (the one `make up` started).
# usage: scripts/fta.sh SERVICE ARGS...
#   scripts/fta.sh worker mail-outbox --to you@example.com --link
#   scripts/fta.sh portal create-admin --email you@example.com
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then
  echo "usage: scripts/fta.sh SERVICE ARGS... (e.g. worker mail-outbox --to you@example.com)" >&2
  exit 64
fi
service=$1
shift
# Compose reads the whole file, whose socket proxy needs the socket's group.
DOCKER_GID=$(stat -c %g /var/run/docker.sock)
export DOCKER_GID
# A terminal only when run from one (a password prompt); none when the output is captured.
options=(-T)
if [ -t 0 ] && [ -t 1 ]; then
  options=()
fi
if command -v docker-compose >/dev/null 2>&1; then
  exec docker-compose exec "${options[@]}" "$service" fta "$@"
fi
exec docker compose exec "${options[@]}" "$service" fta "$@"
