#!/usr/bin/env bash
# Starts nginx after writing which front proxies it believes about the client's address.
# env: FTA_TRUSTED_PROXIES  addresses or CIDR ranges of the proxies in front of nginx (TLS
#      terminator, load balancer), separated by spaces or commas; empty (the default): none,
#      the client's address is the TCP peer and X-Forwarded-For is never read.
set -euo pipefail
conf=/tmp/nginx-real-ip.conf
trusted=${FTA_TRUSTED_PROXIES:-}
if [[ $trusted == *$'\n'* ]]; then
  echo "FTA_TRUSTED_PROXIES: one line of addresses, separated by spaces or commas" >&2
  exit 64
fi
read -r -a proxies <<<"${trusted//,/ }"
ipv4='^([0-9]{1,3}\.){3}[0-9]{1,3}(/[0-9]{1,2})?$'
ipv6='^[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*(/[0-9]{1,3})?$'
{
  for proxy in "${proxies[@]}"; do
    # Only an address or a range reaches the configuration: nothing else can be injected.
    if [[ ! $proxy =~ $ipv4 && ! $proxy =~ $ipv6 ]]; then
      echo "FTA_TRUSTED_PROXIES: '$proxy' is not an address or CIDR range" >&2
      exit 64
    fi
    echo "set_real_ip_from $proxy;"
  done
  if [ "${#proxies[@]}" -gt 0 ]; then
    # The right-most address that no trusted proxy added: the one the front proxy saw.
    echo "real_ip_header X-Forwarded-For;"
    echo "real_ip_recursive on;"
  fi
} >"$conf"
exec nginx -e stderr -g "daemon off;"
