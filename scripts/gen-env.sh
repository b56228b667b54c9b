#!/usr/bin/env bash
# Writes the stack's .env (mode 600) from .env.example, with a fresh random value for every
# placeholder ("changeme"). An existing file keeps every line (its secrets are in use); only
# the settings .env.example gained since are appended to it.
# usage: scripts/gen-env.sh [ENV_FILE]   (default .env at the repository's root)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
env_file=${1:-$repo/.env}

random_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

# generated LINE: the .env line for one line of .env.example (hex secrets: they also sit
# unescaped inside database URLs).
generated() {
  case "$1" in
    [A-Z]*=*changeme*) echo "${1%%=*}=$(random_hex 32)" ;;
    *) echo "$1" ;;
  esac
}

umask 077
if [ -e "$env_file" ]; then
  # Settings added to .env.example since the file was written are appended (new secrets
  # generated); every line already there stays as it is.
  added=()
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in
      [A-Z]*=*)
        key=${line%%=*}
        if ! grep -q "^$key=" "$env_file"; then
          [ ${#added[@]} -gt 0 ] || printf '# Added by gen-env.sh: see .env.example\n' >>"$env_file"
          generated "$line" >>"$env_file"
          added+=("$key")
        fi
        ;;
    esac
  done <"$repo/.env.example"
  if [ ${#added[@]} -gt 0 ]; then
    echo "gen-env: $env_file kept, added ${added[*]}" >&2
  else
    echo "gen-env: $env_file exists, kept as it is" >&2
  fi
  exit 0
fi

partial=$(mktemp "$env_file.XXXXXX")
trap 'rm -f "$partial"' EXIT
while IFS= read -r line || [ -n "$line" ]; do
  generated "$line"
done <"$repo/.env.example" >"$partial"
chmod 600 "$partial"
# -n: a file that appeared meanwhile wins over this one.
mv -n "$partial" "$env_file"
echo "gen-env: wrote $env_file with new secrets" >&2
