#!/usr/bin/env bash
# Host firewall for tenant networks.
#
# A Docker `internal` network forwards nothing out of its subnet, yet its containers still
# reach every service listening on the host through the bridge's own address (and docker0's).
# This drops everything that enters the host from a tenant bridge, and everything forwarded
# from one to anything but another tenant bridge (Docker's own rules already keep tenant
# bridges apart). The cloud metadata service gets its own DROP first, so it stays closed even
# if the general rule is ever loosened (for example to open one host port to tenants).
#
# usage: deploy/host-firewall.sh apply|remove|show
#   apply   create or atomically refill the chain, and hook it from INPUT and DOCKER-USER
#   remove  unhook and delete the chain
#   show    print the rules apply would load
# env:
#   FTA_TENANT_BRIDGE_PREFIX  prefix of tenant bridge names (default ftab-, as fta's setting)
#   FTA_METADATA_ADDRESS      metadata service addresses, space separated
#                             (default "169.254.169.254 fd00:ec2::254")
#   FTA_FIREWALL_CHAIN        chain name (default FTA-TENANTS; tests use their own)
set -euo pipefail

prefix=${FTA_TENANT_BRIDGE_PREFIX:-ftab-}
metadata=${FTA_METADATA_ADDRESS:-169.254.169.254 fd00:ec2::254}
chain=${FTA_FIREWALL_CHAIN:-FTA-TENANTS}

if ! [[ $prefix =~ ^[a-z0-9-]{1,10}$ ]]; then
  echo "FTA_TENANT_BRIDGE_PREFIX must be 1-10 characters of a-z, 0-9 and -" >&2
  exit 2
fi
if ! [[ $chain =~ ^[A-Z0-9-]{1,28}$ ]]; then
  echo "FTA_FIREWALL_CHAIN must be 1-28 characters of A-Z, 0-9 and -" >&2
  exit 2
fi
bridges="$prefix+"

# rules FAMILY: the iptables-restore input (used with --noflush: only our chain is touched,
# and declaring it empties it, so a reload replaces the rules in one step).
rules() {
  local family=$1 address
  printf '*filter\n:%s - [0:0]\n' "$chain"
  for address in $metadata; do
    case "$family:$address" in
      4:*:* | 6:*.*) continue ;;
    esac
    printf -- '-A %s -i %s -d %s -j DROP\n' "$chain" "$bridges" "$address"
  done
  printf -- '-A %s -i %s -o %s -j RETURN\n' "$chain" "$bridges" "$bridges"
  printf -- '-A %s -i %s -j DROP\n' "$chain" "$bridges"
  printf 'COMMIT\n'
}

tool() {
  if [ "$1" = 4 ]; then echo iptables; else echo ip6tables; fi
}

# The forward hook: DOCKER-USER is where Docker lets its users filter what it forwards;
# Docker 20.10 only has it for IPv4, and its ip6tables support is off by default.
forward_hook() {
  local family=$1
  if [ "$family" = 4 ] || "$(tool "$family")" -w -n -L DOCKER-USER >/dev/null 2>&1; then
    echo DOCKER-USER
  else
    echo FORWARD
  fi
}

apply_family() {
  local family=$1 cmd hook
  cmd=$(tool "$family")
  if [ "$family" = 4 ] && ! "$cmd" -w -n -L DOCKER-USER >/dev/null 2>&1; then
    # Docker keeps an existing DOCKER-USER chain and hooks it from FORWARD when it starts.
    "$cmd" -w -N DOCKER-USER
    "$cmd" -w -A DOCKER-USER -j RETURN
  fi
  rules "$family" | "$cmd-restore" -w --noflush
  for hook in INPUT "$(forward_hook "$family")"; do
    "$cmd" -w -C "$hook" -j "$chain" 2>/dev/null || "$cmd" -w -I "$hook" 1 -j "$chain"
  done
}

remove_family() {
  local family=$1 cmd hook
  cmd=$(tool "$family")
  for hook in INPUT FORWARD DOCKER-USER; do
    # Bounded: a hook inserted twice by hand is removed too.
    for _ in 1 2 3 4 5 6 7 8; do
      "$cmd" -w -D "$hook" -j "$chain" 2>/dev/null || break
    done
  done
  if "$cmd" -w -n -L "$chain" >/dev/null 2>&1; then
    "$cmd" -w -F "$chain"
    "$cmd" -w -X "$chain"
  fi
}

families() {
  echo 4
  if command -v ip6tables >/dev/null 2>&1 && [ -e /proc/net/if_inet6 ]; then
    echo 6
  fi
}

case "${1:-}" in
  apply)
    for family in $(families); do apply_family "$family"; done
    ;;
  remove)
    for family in $(families); do remove_family "$family"; done
    ;;
  show)
    for family in $(families); do
      echo "# IPv$family"
      rules "$family"
    done
    ;;
  *)
    echo "usage: $0 apply|remove|show" >&2
    exit 2
    ;;
esac
