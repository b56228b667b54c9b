#!/usr/bin/env bash
# Restores a backup of deploy/backup.sh onto a host without an installation (a new host, or
# this one after `make down` and the removal of its data), then boots the stack: the same
# accounts, jobs and results, invoices, files and tenant disks; the bots that were running
# start again (the worker converges them).
#
# usage: deploy/restore.sh BACKUP
#   BACKUP  a fta-backup-*.tar.gpg file, or its s3://BUCKET/KEY address (deploy/backup_s3.py
#           fetches it; FTA_BACKUP_S3_ENDPOINT for another store than AWS's); the operator's
#           private key must be in the caller's GnuPG keyring (GNUPGHOME) to decrypt it.
# env (else the backup's .env, else defaults): FTA_TENANT_DISK_ROOT
# Refuses to overwrite: an existing database volume, tenant disk or candle cache stops it.
set -euo pipefail
cd "$(dirname "$0")/.."

backup=${1:-}
if [ -z "$backup" ] || { [ ! -f "$backup" ] && [[ $backup != s3://* ]]; }; then
  echo "usage: $0 BACKUP (a fta-backup-*.tar.gpg file, or its s3:// address)" >&2
  exit 2
fi
compose() {
  if command -v docker-compose >/dev/null 2>&1; then docker-compose "$@"; else docker compose "$@"; fi
}
DOCKER_GID=$(stat -c %g /var/run/docker.sock)
export DOCKER_GID
# in_postgres CMD...: CMD in the database's container as its superuser, whose password stays
# in that container's environment.
in_postgres() {
  # shellcheck disable=SC2016 # expanded in the container
  compose exec -T postgres sh -c 'PGPASSWORD=$POSTGRES_PASSWORD exec "$@"' sh "$@"
}

umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [[ $backup == s3://* ]]; then
  python3 deploy/backup_s3.py fetch "$backup" "$work/backup.tar.gpg"
  backup=$work/backup.tar.gpg
fi
gpg --batch --quiet --decrypt "$backup" | tar -C "$work" --sparse -xf -
python3 deploy/backup_manifest.py check "$work"

if [ ! -f .env ]; then
  cp "$work/env" .env
  chmod 600 .env
elif ! cmp -s .env "$work/env"; then
  echo "restore: .env differs from the backup's; the backup's secrets are kept in" >&2
  echo "  $work/env is removed on exit: compare with .env by hand and run again" >&2
  exit 1
fi

from_env_file() {
  sed -n "s/^$1=//p" .env | tail -n 1
}
disk_root=${FTA_TENANT_DISK_ROOT:-$(from_env_file FTA_TENANT_DISK_ROOT)}
disk_root=${disk_root:-/var/lib/fta/tenant-disks}

for volume in fta-pgdata fta-market-data; do
  if docker volume inspect "$volume" >/dev/null 2>&1; then
    echo "restore: volume $volume exists: this host has an installation already" >&2
    exit 1
  fi
done
shopt -s nullglob
existing=("$disk_root"/images/*.img)
shopt -u nullglob
if [ "${#existing[@]}" -gt 0 ]; then
  echo "restore: $disk_root/images holds tenant disks already" >&2
  exit 1
fi

# Tenant disks: back in place before the helper starts (it mounts every image it finds).
bash scripts/tenant-disks.sh stop
mkdir -p "$disk_root/images"
chmod 700 "$disk_root/images"
shopt -s nullglob
for image in "$work"/disks/*.img; do
  cp --sparse=always "$image" "$disk_root/images/"
done
shopt -u nullglob

if [ -f "$work/candles.tar" ]; then
  # Labelled as Compose labels the volumes it creates, so that it takes this one as its own.
  project=$(from_env_file COMPOSE_PROJECT_NAME)
  docker volume create --label "com.docker.compose.project=${project:-fta}" \
    --label com.docker.compose.volume=fta-market-data fta-market-data >/dev/null
  docker run --rm --network none --user 0 -i -v fta-market-data:/dst \
    --entrypoint tar fta/postgres:dev -C /dst --numeric-owner -xf - <"$work/candles.tar"
fi

# The database: an empty one of the backup's roles, then the dump, as the superuser.
bash images/build.sh all
compose up -d postgres
for _ in $(seq 90); do
  if compose exec -T postgres pg_isready -q -h /tmp -U fta -d fta; then break; fi
  sleep 2
done
in_postgres pg_restore -h /tmp -U fta -d fta --exit-on-error <"$work/db.dump"

bash scripts/up.sh
