#!/bin/sh
# Creates the cluster on the first start (empty $PGDATA), then runs PostgreSQL in the foreground.
# env: POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE (needed on the first start only),
#      POSTGRES_USER (default fta), POSTGRES_DB (default fta). Extra arguments go to postgres.
set -eu
user=${POSTGRES_USER:-fta}
db=${POSTGRES_DB:-fta}
# The socket lives on the /tmp tmpfs, so the root filesystem can stay read-only.
socket_dir=/tmp

init_cluster() {
  password=${POSTGRES_PASSWORD:-}
  if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
    password=$(cat "$POSTGRES_PASSWORD_FILE")
  fi
  if [ -z "$password" ]; then
    echo "fta-postgres: POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE is required to create the cluster" >&2
    exit 1
  fi
  for name in "$user" "$db"; do
    case "$name" in
      [a-z_]*[!a-z0-9_]* | [!a-z_]*)
        echo "fta-postgres: '$name' is not a plain lowercase SQL name" >&2
        exit 1
        ;;
    esac
  done
  pwfile=$(mktemp)
  printf '%s\n' "$password" >"$pwfile"
  initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" --auth=scram-sha-256 \
    -E UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
  # Clients come from the container networks this server is attached to, nowhere else.
  echo "host all all samenet scram-sha-256" >>"$PGDATA/pg_hba.conf"
  echo "CREATE DATABASE \"$db\" OWNER \"$user\";" | postgres --single -D "$PGDATA" -j postgres >/dev/null
  echo "fta-postgres: created the cluster, superuser $user and database $db" >&2
}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  # A failed first start leaves an empty directory, so the next start tries again.
  trap 'find "$PGDATA" -mindepth 1 -delete' EXIT
  init_cluster
  trap - EXIT
fi
unset POSTGRES_PASSWORD
exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories="$socket_dir" \
  -c jit=off "$@"
