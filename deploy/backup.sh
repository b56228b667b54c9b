#!/usr/bin/env bash
# Backs the installation up into one file encrypted for the operator's GnuPG key:
#   db.dump         the database (pg_dump, custom format): accounts, jobs and their results,
#                   bots, invoices, the audit chains, the usage ledger
#   disks/<id>.img  each tenant's disk image (bots' trade databases, downloaded data), copied
#                   while its file system is frozen, so that the copy is consistent
#   candles.tar     the market-data gateway's candle cache
#   env             the installation's .env (its secrets: the database passwords, the keys)
#   manifest.json   when, which schema revision, and each file's digest
#                   (deploy/backup_manifest.py)
# The stack keeps running: bots pause on writes for the moment their disk is copied.
#
# usage: deploy/backup.sh
# env (else .env, else defaults):
#   FTA_BACKUP_KEY        the operator's public key (armored file); required. Only its private
#                         key decrypts the backup: keep that one off this host.
#   FTA_BACKUP_DIR        where backups go (default /var/backups/fta)
#   FTA_BACKUP_KEEP       how many backups to keep, the newest (default 14)
#   FTA_TENANT_DISK_ROOT  the tenant disks' directory (default /var/lib/fta/tenant-disks)
#   FTA_BACKUP_S3_BUCKET  also upload it to this S3 bucket (deploy/backup_s3.py: its prefix,
#                         retention and endpoint settings)
# prints the backup's path on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."

from_env_file() {
  [ -f .env ] && sed -n "s/^$1=//p" .env | tail -n 1
}
setting() {
  local value=${!1:-}
  value=${value:-$(from_env_file "$1")}
  echo "${value:-$2}"
}
compose() {
  if command -v docker-compose >/dev/null 2>&1; then docker-compose "$@"; else docker compose "$@"; fi
}

# in_postgres CMD...: CMD in the database's container as its superuser, whose password stays
# in that container's environment.
in_postgres() {
  # shellcheck disable=SC2016 # expanded in the container
  compose exec -T postgres sh -c 'PGPASSWORD=$POSTGRES_PASSWORD exec "$@"' sh "$@"
}

key=$(setting FTA_BACKUP_KEY "")
target=$(setting FTA_BACKUP_DIR /var/backups/fta)
keep=$(setting FTA_BACKUP_KEEP 14)
disk_root=$(setting FTA_TENANT_DISK_ROOT /var/lib/fta/tenant-disks)
candles=fta-market-data

if [ -z "$key" ] || [ ! -f "$key" ]; then
  echo "backup: FTA_BACKUP_KEY must name the operator's public key file" >&2
  exit 2
fi
if ! [[ $keep =~ ^[1-9][0-9]*$ ]]; then
  echo "backup: FTA_BACKUP_KEEP must be a positive number" >&2
  exit 2
fi
DOCKER_GID=$(stat -c %g /var/run/docker.sock)
export DOCKER_GID
if [ -z "$(compose ps -q postgres)" ]; then
  echo "backup: the database is not running (make up first)" >&2
  exit 1
fi

umask 077
mkdir -p "$target"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
staging=$(mktemp -d "$target/.staging-$stamp.XXXXXX")
gnupg=$(mktemp -d)
frozen=""
cleanup() {
  # A disk left frozen would stall its tenant's bots: thaw it first, whatever happened.
  if [ -n "$frozen" ]; then fsfreeze -u "$frozen" || true; fi
  rm -rf "$staging" "$gnupg"
}
trap cleanup EXIT

in_postgres pg_dump -h /tmp -U fta -d fta --format=custom >"$staging/db.dump"
revision=$(in_postgres psql -h /tmp -U fta -d fta -Atc "SELECT version_num FROM alembic_version")

mkdir "$staging/disks"
shopt -s nullglob
for image in "$disk_root"/images/*.img; do
  tenant=$(basename "$image" .img)
  mount_point="$disk_root/mounts/$tenant"
  if mountpoint -q "$mount_point"; then
    frozen=$mount_point
    fsfreeze -f "$mount_point"
    timeout 600 cp --sparse=always "$image" "$staging/disks/"
    fsfreeze -u "$mount_point"
    frozen=""
  else
    cp --sparse=always "$image" "$staging/disks/"
  fi
done
shopt -u nullglob

if docker volume inspect "$candles" >/dev/null 2>&1; then
  docker run --rm --network none --user 0 -v "$candles:/src:ro" \
    --entrypoint tar fta/postgres:dev -C /src --numeric-owner -cf - . >"$staging/candles.tar"
fi
cp .env "$staging/env"

python3 deploy/backup_manifest.py write "$staging" "$stamp" "$revision"

out="$target/fta-backup-$stamp.tar.gpg"
tar -C "$staging" --sparse -cf - . |
  gpg --homedir "$gnupg" --batch --quiet --trust-model always \
    --recipient-file "$key" --compress-algo zlib --encrypt >"$out.partial"
mv "$out.partial" "$out"

# Retention: the newest $keep backups stay.
find "$target" -maxdepth 1 -name 'fta-backup-*.tar.gpg' -printf '%f\n' | sort -r |
  tail -n +"$((keep + 1))" | while IFS= read -r old; do rm -f "$target/$old"; done

# A copy off the host, when a bucket is set (deploy/backup_s3.py: credentials from the instance's
# role, retention FTA_BACKUP_S3_KEEP there).
bucket=$(setting FTA_BACKUP_S3_BUCKET "")
if [ -n "$bucket" ]; then
  FTA_BACKUP_S3_BUCKET=$bucket \
    FTA_BACKUP_S3_PREFIX=$(setting FTA_BACKUP_S3_PREFIX fta-backups/) \
    FTA_BACKUP_S3_KEEP=$(setting FTA_BACKUP_S3_KEEP 30) \
    FTA_BACKUP_S3_ENDPOINT=$(setting FTA_BACKUP_S3_ENDPOINT "") \
    python3 deploy/backup_s3.py upload "$out"
fi
echo "$out"
