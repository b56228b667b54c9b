#!/usr/bin/env bash
# Writes the stack's .env (mode 600) from .env.example, with a fresh random value for every
# placeholder ("changeme"). An existing file is never touched: its secrets are in use.
# usage: scripts/gen-env.sh [ENV_FILE]   (default .env at the repository's root)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
env_file=${1:-$repo/.env}

if [ -e "$env_file" ]; then
  echo "gen-env: $env_file exists, kept as it is" >&2
  exit 0
fi

random_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

# Hex only: the database password also sits inside FTA_DATABASE_URL, unescaped.
db_password=$(random_hex 24)
umask 077
partial=$(mktemp "$env_file.XXXXXX")
trap 'rm -f "$partial"' EXIT
while IFS= read -r line || [ -n "$line" ]; do
  case "$line" in
    POSTGRES_PASSWORD=*) echo "POSTGRES_PASSWORD=$db_password" ;;
    FTA_DATABASE_URL=*changeme*) echo "${line//changeme/$db_password}" ;;
    [A-Z]*=*changeme*) echo "${line%%=*}=$(random_hex 32)" ;;
    *) echo "$line" ;;
  esac
done <"$repo/.env.example" >"$partial"
chmod 600 "$partial"
# -n: a file that appeared meanwhile wins over this one.
mv -n "$partial" "$env_file"
echo "gen-env: wrote $env_file with new secrets" >&2
