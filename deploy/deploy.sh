#!/usr/bin/env bash
# Upgrades this installation to the checked-out version of the repository:
#   1. checks the prerequisites (Docker and Compose versions, free disk, available memory)
#      and that this version may upgrade the database's schema (deploy/upgrade-from: the
#      oldest schema revision it upgrades from; an older one must go through the release
#      named there first);
#   2. backs up (deploy/backup.sh; --no-backup skips it, at your risk);
#   3. builds the images (offline, as `make up` does);
#   4. starts the new version: the one-shot `migrate` service applies the migrations as the
#      schema's owner, then the portal and the worker start (they wait for it). Jobs and bots
#      keep running in their containers throughout: the old worker leaves them as it stops,
#      the new one adopts them by their labels and records. The portal answers 502 for the
#      seconds its container restarts.
# Rollback: docs/operations.md, "Upgrading".
#
# usage: deploy/deploy.sh [--no-backup]
# env: FTA_DEPLOY_MIN_FREE_MB (default 4096), FTA_DEPLOY_MIN_MEMORY_MB (default 1024), and
#      deploy/backup.sh's settings.
set -euo pipefail
cd "$(dirname "$0")/.."

backup=1
case "${1:-}" in
  "") ;;
  --no-backup) backup=0 ;;
  *) echo "usage: $0 [--no-backup]" >&2; exit 2 ;;
esac
min_free_mb=${FTA_DEPLOY_MIN_FREE_MB:-4096}
min_memory_mb=${FTA_DEPLOY_MIN_MEMORY_MB:-1024}
for number in "$min_free_mb" "$min_memory_mb"; do
  if ! [[ $number =~ ^[0-9]+$ ]]; then
    echo "deploy: FTA_DEPLOY_* settings are whole numbers" >&2
    exit 2
  fi
done

compose() {
  if command -v docker-compose >/dev/null 2>&1; then docker-compose "$@"; else docker compose "$@"; fi
}
fail() {
  echo "deploy: $*" >&2
  exit 1
}
DOCKER_GID=$(stat -c %g /var/run/docker.sock)
export DOCKER_GID

# 1. Prerequisites.
engine=$(docker version --format '{{.Server.Version}}') || fail "Docker does not answer"
if ! printf '%s\n' 20.10 "$engine" | sort -V -C; then
  fail "Docker $engine is older than 20.10"
fi
if ! printf '%s\n' 24.0 "$engine" | sort -V -C; then
  echo "deploy: warning: Docker $engine: 24 or later closes the internal networks' DNS leak and blocks io_uring (deploy/install.sh installs it)" >&2
fi
if docker compose version >/dev/null 2>&1; then
  :
elif version=$(docker-compose version --short 2>/dev/null); then
  # service_completed_successfully, which the portal and the worker wait on, came in 1.29.
  printf '%s\n' 1.29 "$version" | sort -V -C || fail "docker-compose $version is older than 1.29"
else
  fail "neither docker compose nor docker-compose is installed"
fi
docker_root=$(docker info --format '{{.DockerRootDir}}')
for path in "$docker_root" "$PWD"; do
  free_mb=$(df -Pm "$path" | awk 'NR == 2 {print $4}')
  [ "$free_mb" -ge "$min_free_mb" ] || fail "$path has $free_mb MB free, under $min_free_mb MB"
done
memory_mb=$(awk '/^MemAvailable:/ {print int($2 / 1024)}' /proc/meminfo)
[ "$memory_mb" -ge "$min_memory_mb" ] || fail "$memory_mb MB of memory available, under $min_memory_mb MB"
[ -n "$(compose ps -q postgres)" ] || fail "the stack is not running: a first start is \`make up\`"

# in_postgres CMD...: CMD in the database's container as its superuser.
in_postgres() {
  # shellcheck disable=SC2016 # expanded in the container
  compose exec -T postgres sh -c 'PGPASSWORD=$POSTGRES_PASSWORD exec "$@"' sh "$@"
}
current=$(in_postgres psql -h /tmp -U fta -d fta -Atc "SELECT version_num FROM alembic_version")
read -r oldest release <deploy/upgrade-from
if [ "$((10#$current))" -lt "$((10#$oldest))" ]; then
  fail "the database is at schema $current; this version upgrades from $oldest on: upgrade to $release first"
fi
newest=$(find src/fta/migrations/versions -name '[0-9][0-9][0-9][0-9]_*.py' -printf '%f\n' | sort | tail -n 1)
newest=${newest%%_*}
if [ "$((10#$current))" -gt "$((10#$newest))" ]; then
  fail "the database is at schema $current, newer than this version's $newest: a downgrade is a restore (docs/operations.md)"
fi
echo "deploy: schema $current -> $newest, Docker $engine"

# 2. Backup.
if [ "$backup" = 1 ]; then
  bash deploy/backup.sh
fi

# 3. Images.
bash images/build.sh all

# 4. The new version: scripts/up.sh recreates the containers whose image or settings changed
# (the migrations first; the portal and the worker wait for them). Jobs' and bots' containers
# are not Compose's: they keep running, and the new worker adopts them.
bash scripts/up.sh
echo "deploy: done, schema $newest"
