#!/usr/bin/env bash
# Builds the local Debian bookworm base image (fta/base:bookworm) with debootstrap,
# from the host's configured Debian mirror, for hosts that cannot pull from a registry.
set -euo pipefail
tag=${1:-fta/base:bookworm}
if docker image inspect "$tag" >/dev/null 2>&1; then
  exit 0
fi
bash "$(dirname "$0")/../scripts/ensure-apt.sh" debootstrap
mirror=$(grep -hoE 'https?://deb\.debian\.org/debian/?' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null | head -n 1 || true)
mirror=${FTA_DEBIAN_MIRROR:-${mirror:-http://deb.debian.org/debian}}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
debootstrap --variant=minbase --include=ca-certificates bookworm "$work/root" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }
rm -rf "$work/root/var/cache/apt/archives/"*.deb "$work/root/var/lib/apt/lists/"*
tar -C "$work/root" -c . | docker import -c 'CMD ["/bin/bash"]' - "$tag" >/dev/null
echo "built $tag"
