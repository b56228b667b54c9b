#!/bin/sh
# Creates the cluster on the first start (empty $PGDATA), sets up the application's two roles
# at every start, then runs PostgreSQL in the foreground.
# env: POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE: the superuser's (first start only),
#      POSTGRES_USER (default fta): that superuser, who may log in over the local socket only,
#      POSTGRES_DB (default fta),
#      POSTGRES_OWNER_PASSWORD[_FILE], POSTGRES_OWNER_USER (default fta_owner): the role that
#        owns the database and its schema and runs the migrations,
#      POSTGRES_RUNTIME_PASSWORD[_FILE], POSTGRES_RUNTIME_USER (default fta_app): the role the
#        portal and the worker log in as; the migrations grant it row rights only.
#      Without the owner's and runtime's passwords the roles are left as they are.
# Extra arguments go to postgres.
set -eu
user=${POSTGRES_USER:-fta}
db=${POSTGRES_DB:-fta}
owner=${POSTGRES_OWNER_USER:-fta_owner}
runtime=${POSTGRES_RUNTIME_USER:-fta_app}
# The socket lives on the /tmp tmpfs, so the root filesystem can stay read-only.
socket_dir=/tmp

# secret NAME: the value of $NAME, or the content of the file named by ${NAME}_FILE.
secret() {
  eval "file=\${${1}_FILE:-}"
  if [ -n "$file" ]; then
    cat "$file"
  else
    eval "printf '%s' \"\${$1:-}\""
  fi
}

for name in "$user" "$db" "$owner" "$runtime"; do
  case "$name" in
    [a-z_]*[!a-z0-9_]* | [!a-z_]*)
      echo "fta-postgres: '$name' is not a plain lowercase SQL name" >&2
      exit 1
      ;;
  esac
done

init_cluster() {
  password=$(secret POSTGRES_PASSWORD)
  if [ -z "$password" ]; then
    echo "fta-postgres: POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE is required to create the cluster" >&2
    exit 1
  fi
  pwfile=$(mktemp)
  printf '%s\n' "$password" >"$pwfile"
  initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" --auth=scram-sha-256 \
    -E UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
  echo "CREATE DATABASE \"$db\" OWNER \"$user\";" | postgres --single -D "$PGDATA" -j postgres >/dev/null
  echo "fta-postgres: created the cluster, superuser $user and database $db" >&2
}

# Who may log in from where, rewritten at every start: the superuser over the local socket
# only (docker exec), every other role from the container networks this server is on.
write_hba() {
  cat >"$PGDATA/pg_hba.conf" <<HBA
# Written by fta-postgres at every start: edits here are lost.
local all all scram-sha-256
host all $user all reject
host all all samenet scram-sha-256
HBA
}

# sql_literal VALUE: VALUE as a quoted SQL string.
sql_literal() {
  printf "'%s'" "$(printf '%s' "$1" | sed "s/'/''/g")"
}

# The owner and runtime roles, with the passwords given (so rotating them is a restart), the
# database and its public schema owned by the owner, and whatever the superuser created in that
# schema (an installation from before the roles were split) handed over to the owner.
# Single-user mode: no client can connect meanwhile, and no password reaches a command line.
setup_roles() {
  owner_password=$(secret POSTGRES_OWNER_PASSWORD)
  runtime_password=$(secret POSTGRES_RUNTIME_PASSWORD)
  if [ -z "$owner_password" ] || [ -z "$runtime_password" ]; then
    echo "fta-postgres: no POSTGRES_OWNER_PASSWORD and POSTGRES_RUNTIME_PASSWORD: roles left as they are" >&2
    return
  fi
  output=$(postgres --single -D "$PGDATA" -j "$db" 2>&1 <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$owner') THEN CREATE ROLE "$owner"; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$runtime') THEN CREATE ROLE "$runtime"; END IF;
END \$\$;

ALTER ROLE "$owner" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD $(sql_literal "$owner_password");

ALTER ROLE "$runtime" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD $(sql_literal "$runtime_password");

ALTER DATABASE "$db" OWNER TO "$owner";

ALTER SCHEMA public OWNER TO "$owner";

DO \$\$ DECLARE item record; BEGIN
  FOR item IN SELECT c.oid::regclass AS name, c.relkind FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relowner = '$user'::regrole
        AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
        AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i'))
  LOOP
    EXECUTE format('ALTER %s %s OWNER TO %I',
      CASE item.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
        WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
      item.name, '$owner');
  END LOOP;
  FOR item IN SELECT p.oid::regprocedure AS name FROM pg_proc p
      JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE n.nspname = 'public' AND p.proowner = '$user'::regrole
  LOOP
    EXECUTE format('ALTER ROUTINE %s OWNER TO %I', item.name, '$owner');
  END LOOP;
  FOR item IN SELECT t.oid::regtype AS name FROM pg_type t
      JOIN pg_namespace n ON n.oid = t.typnamespace
      WHERE n.nspname = 'public' AND t.typowner = '$user'::regrole AND t.typtype IN ('e', 'd')
  LOOP
    EXECUTE format('ALTER TYPE %s OWNER TO %I', item.name, '$owner');
  END LOOP;
END \$\$;

SQL
  )
  if printf '%s\n' "$output" | grep -q 'ERROR'; then
    printf '%s\n' "$output" | grep 'ERROR' >&2
    echo "fta-postgres: could not set up the roles $owner and $runtime" >&2
    exit 1
  fi
  echo "fta-postgres: roles $owner (owner) and $runtime (runtime) ready" >&2
}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  # A failed first start leaves an empty directory, so the next start tries again.
  trap 'find "$PGDATA" -mindepth 1 -delete' EXIT
  init_cluster
  trap - EXIT
fi
write_hba
setup_roles
unset POSTGRES_PASSWORD POSTGRES_OWNER_PASSWORD POSTGRES_RUNTIME_PASSWORD
exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories="$socket_dir" \
  -c jit=off "$@"
