#!/usr/bin/env bash
# Builds fta's images without any registry: Python wheels are fetched on the host (which can
# reach PyPI) into a cache, handed to `docker build` in a small context, and installed there
# with --no-index. A build is skipped when an image labelled with the hash of its inputs exists.
# usage: images/build.sh [all|base|app|freqtrade|socket-proxy|postgres|nginx]
# env:   FTA_BUILD_CACHE  wheel and context cache (default $HOME/.cache/fta-build)
#        FTA_BASE_IMAGE   base of every image (default fta/base:bookworm, built locally;
#                         online hosts may pass debian:bookworm-slim)
#        FTA_BUILD_FRESH  1: rebuild without Docker's layer cache (takes Debian's updates)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${FTA_BUILD_CACHE:-$HOME/.cache/fta-build}
base_image=${FTA_BASE_IMAGE:-fta/base:bookworm}
freqtrade_version=2026.9
fresh=${FTA_BUILD_FRESH:-0}
target=${1:-all}

log() { printf 'build: %s\n' "$*" >&2; }

# The images run Debian bookworm's python3 (3.11): the wheels must be built by a 3.11 too.
host_python() {
  local candidate
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 \
      && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      echo "$candidate"
      return
    fi
  done
  log "a Python 3.11 is needed on the host to fetch cp311 wheels"
  return 1
}

# A private venv holds the pip that fetches wheels, so the host's own pip is never changed.
wheel_pip() {
  local venv=$cache/pip-venv python
  if [ ! -x "$venv/bin/pip" ]; then
    python=$(host_python)
    "$python" -c 'import ensurepip' 2>/dev/null || bash "$repo/scripts/ensure-apt.sh" python3-venv
    "$python" -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip
  fi
  echo "$venv/bin/pip"
}

# Fills a wheel directory atomically: an interrupted download leaves no half-filled directory.
fetch_wheels() {
  local dest=$1 pip partial
  shift
  pip=$(wheel_pip)
  partial="$dest.partial"
  rm -rf "$partial"
  mkdir -p "$partial"
  log "fetching wheels into $dest"
  "$pip" download -q --disable-pip-version-check -d "$partial" "$@" >&2
  rm -rf "$dest"
  mv "$partial" "$dest"
}

# wheels NAME: the directory of images/NAME/requirements.lock's files as PyPI serves them (wheels,
# and the source of a distribution that has none), fetched again only when the lock changes;
# --require-hashes stops on any file whose SHA-256 the lock does not list.
wheels() {
  local lock=$repo/images/$1/requirements.lock dir=$cache/wheels-$1 want
  want=$(sha256sum "$lock" | cut -d' ' -f1)
  if [ "$(cat "$dir/.lock-sha256" 2>/dev/null)" != "$want" ]; then
    fetch_wheels "$dir" --require-hashes -r "$lock"
    echo "$want" >"$dir/.lock-sha256"
  fi
  echo "$dir"
}

# Hardlinks when the cache and the context share a filesystem, copies otherwise.
link_tree() {
  mkdir -p "$2"
  cp -al "$1/." "$2/" 2>/dev/null || cp -a "$1/." "$2/"
}

# Hash of everything a build reads: the context's files (wheels by name and size, since a
# wheel's name pins its version and build) and the base image's id.
inputs_hash() {
  local ctx=$1 base_id
  base_id=$(docker image inspect -f '{{.Id}}' "$base_image" 2>/dev/null || echo "$base_image")
  {
    echo "base $base_id"
    (cd "$ctx" && find . -type f ! -path './wheels/*' -print0 | sort -z | xargs -0 -r sha256sum)
    (cd "$ctx" && find . -type f -path './wheels/*' -printf '%P %s\n' | sort)
  } | sha256sum | cut -d' ' -f1
}

# The build logs' lines carry the time, to see which step is slow.
timestamped() {
  local line
  while IFS= read -r line; do printf '%(%T)T %s\n' -1 "$line"; done
}

# build_image NAME CONTEXT TAG...: builds CONTEXT/images/NAME/Dockerfile unless an image with the
# same inputs exists, then points every TAG at it.
build_image() {
  local name=$1 ctx=$2 hash existing started dockerfile options
  shift 2
  hash=$(inputs_hash "$ctx")
  existing=
  [ "$fresh" = 1 ] || existing=$(docker images -q --filter "label=fta.inputs=$hash" | head -n 1)
  started=$SECONDS
  if [ -z "$existing" ]; then
    log "building $1 (log: $cache/build-$name.log)"
    dockerfile=$ctx/images/$name/Dockerfile
    # A Dockerfile that sets the labels itself, before its large layers, saves the steps
    # that --label would append after them.
    if grep -q '^ARG FTA_INPUTS' "$dockerfile"; then
      options=(--build-arg "FTA_INPUTS=$hash")
    else
      options=(--label "fta.image=$name" --label "fta.inputs=$hash")
    fi
    if [ "$fresh" = 1 ]; then options+=(--no-cache); fi
    # A failed step leaves no container behind.
    options+=(--force-rm)
    docker build -f "$dockerfile" --build-arg "BASE_IMAGE=$base_image" "${options[@]}" \
      -t "$1" "$ctx" 2>&1 | timestamped >"$cache/build-$name.log" \
      || { tail -n 30 "$cache/build-$name.log" >&2; return 1; }
    existing=$(docker images -q "$1")
  fi
  local tag
  for tag in "$@"; do
    docker tag "$existing" "$tag"
  done
  # Drops this image's superseded builds, except those a container still uses (rmi refuses),
  # and its builder stages but the newest (the layer cache of the next build). Not
  # `docker image prune`: the daemon runs one prune at a time, and builds run side by side.
  {
    docker images -q --filter "label=fta.image=$name" --filter dangling=true
    docker images -q --filter "label=fta.builder=$name" --filter dangling=true | tail -n +2
  } | xargs -r docker rmi >/dev/null 2>&1 || true
  log "$* ready in $((SECONDS - started)) s ($(docker image inspect -f '{{.Size}}' "$1" | numfmt --to=si))"
}

new_context() {
  local ctx=$cache/context-$1
  rm -rf "$ctx"
  mkdir -p "$ctx/images"
  cp -a "$repo/images/$1" "$ctx/images/$1"
  echo "$ctx"
}

build_base() {
  # Online hosts that pass FTA_BASE_IMAGE pull their base through docker build instead.
  [ "$base_image" = fta/base:bookworm ] || return 0
  local started=$SECONDS
  bash "$repo/images/build-base.sh" "$base_image"
  log "$base_image ready in $((SECONDS - started)) s"
}

build_app() {
  local wheels ctx
  wheels=$(wheels app)
  ctx=$(new_context app)
  link_tree "$wheels" "$ctx/wheels"
  rm -f "$ctx/wheels/.lock-sha256"
  cp "$repo/images/app/requirements.lock" "$ctx/requirements.lock"
  mkdir -p "$ctx/app"
  tar -C "$repo" -c --exclude=__pycache__ --exclude='*.pyc' --exclude='*.egg-info' \
    pyproject.toml src | tar -C "$ctx/app" -x
  build_image app "$ctx" fta/app:dev
}

build_freqtrade() {
  local wheels ctx
  wheels=$(wheels freqtrade)
  ctx=$(new_context freqtrade)
  link_tree "$wheels" "$ctx/wheels"
  rm -f "$ctx/wheels/.lock-sha256"
  cp "$repo/images/freqtrade/requirements.lock" "$ctx/requirements.lock"
  # The container's entry, at its path in the repository (part of the inputs' hash).
  mkdir -p "$ctx/src/fta/freqtrade"
  cp "$repo/src/fta/freqtrade/entry.py" "$ctx/src/fta/freqtrade/entry.py"
  build_image freqtrade "$ctx" "fta/freqtrade:$freqtrade_version" fta/freqtrade:dev
}

# The socket proxy carries its own package only (the standard library and Debian's h11),
# none of the application.
build_socket_proxy() {
  local ctx
  ctx=$(new_context socket-proxy)
  mkdir -p "$ctx/proxy/fta"
  cp "$repo/src/fta/__init__.py" "$repo/src/fta/seccomp.py" "$ctx/proxy/fta/"
  tar -C "$repo/src/fta" -c --exclude=__pycache__ --exclude='*.pyc' socketproxy \
    | tar -C "$ctx/proxy/fta" -x
  build_image socket-proxy "$ctx" fta/socket-proxy:dev
}

build_plain() {
  build_image "$1" "$(new_context "$1")" "fta/$1:dev"
}

main() {
  local started=$SECONDS
  mkdir -p "$cache"
  # One build at a time per cache: contexts and wheel directories are shared.
  exec 8>"$cache/build.lock"
  flock 8
  case "$target" in
    all)
      build_base
      # The Debian-package images wait mostly on downloads and dpkg, the Python ones on the
      # CPU: building both kinds side by side shortens a cold build by about a minute.
      (build_socket_proxy && build_plain postgres && build_plain nginx) &
      local packages=$!
      build_freqtrade
      build_app
      wait "$packages"
      ;;
    base) build_base ;;
    app) build_base && build_app ;;
    freqtrade) build_base && build_freqtrade ;;
    socket-proxy) build_base && build_socket_proxy ;;
    postgres | nginx) build_base && build_plain "$target" ;;
    *)
      echo "usage: $0 [all|base|app|freqtrade|socket-proxy|postgres|nginx]" >&2
      exit 2
      ;;
  esac
  log "$target done in $((SECONDS - started)) s"
}

main
