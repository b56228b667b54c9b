#!/usr/bin/env bash
# Starts or stops a throwaway PostgreSQL cluster for the test suite.
# usage: test-postgres.sh start|stop DIR
set -euo pipefail
action=${1:?start or stop}
dir=$(realpath -m "${2:?data directory}")
port=${FTA_TEST_PG_PORT:-}

pg_bin() {
  local candidate
  for candidate in /usr/lib/postgresql/*/bin; do
    [ -x "$candidate/initdb" ] && { echo "$candidate"; return; }
  done
  return 1
}

case "$action" in
  start)
    bin=$(pg_bin) || { bash "$(dirname "$0")/ensure-apt.sh" postgresql; bin=$(pg_bin); }
    if [ -f "$dir/data/postmaster.pid" ]; then
      runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    mkdir -p "$dir/data" "$dir/run"
    chown -R postgres: "$dir"
    # A free loopback port, unless one is asked for: two clones may test side by side.
    [ -n "$port" ] || port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    password=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
    printf '%s\n' "$password" > "$dir/pwfile"
    chown postgres: "$dir/pwfile"
    runuser -u postgres -- "$bin/initdb" -D "$dir/data" -U fta --pwfile="$dir/pwfile" \
      -A scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$dir/pwfile"
    runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir/run -c fsync=off -c max_connections=200" start >/dev/null
    PGPASSWORD=$password "$bin/createdb" -h 127.0.0.1 -p "$port" -U fta fta
    umask 077
    cat > "$dir/env" <<ENV
export FTA_TEST_DATABASE_URL='postgresql+psycopg://fta:${password}@127.0.0.1:${port}/fta'
export FTA_TEST_ADMIN_URL='postgresql+psycopg://fta:${password}@127.0.0.1:${port}/postgres'
ENV
    ;;
  stop)
    if [ -f "$dir/data/postmaster.pid" ]; then
      bin=$(pg_bin)
      runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null
    fi
    ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
