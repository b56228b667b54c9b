"""A tenant's network: its subnet layout and the exact options it is created with.

Each tenant gets the `index`-th subnet of a dedicated pool (Docker's default pools hold only
about 30 bridges). Inside it:
  .1  the bridge's address on the host (the host firewall drops everything sent to it);
  .2  the market-data gateway, a fixed address outside the dynamic range;
  .3  the DNS server the containers are told about: never assigned, so nobody answers;
  upper half: the addresses Docker hands out to the tenant's containers.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from fta.runtime.spec import LABEL_MANAGED, LABEL_TENANT

BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"
MASQUERADE_OPTION = "com.docker.network.bridge.enable_ip_masquerade"
ICC_OPTION = "com.docker.network.bridge.enable_icc"
LINUX_IFNAME_MAX = 15


@dataclass(frozen=True)
class TenantSubnet:
    subnet: ipaddress.IPv4Network
    bridge_ip: ipaddress.IPv4Address
    gateway_ip: ipaddress.IPv4Address
    dns_ip: ipaddress.IPv4Address
    dynamic_range: ipaddress.IPv4Network


def tenant_subnet(pool: str, prefix: int, index: int) -> TenantSubnet:
    network = ipaddress.ip_network(pool)
    if not isinstance(network, ipaddress.IPv4Network):
        raise ValueError("the tenant subnet pool must be IPv4")
    if not network.prefixlen <= prefix <= 29:
        raise ValueError("tenant subnets must fit in the pool and hold at least 8 addresses")
    count = 2 ** (prefix - network.prefixlen)
    if not 0 <= index < count:
        raise ValueError(f"subnet index {index} is outside the pool's {count} subnets")
    size = 2 ** (32 - prefix)
    subnet = ipaddress.IPv4Network((int(network.network_address) + index * size, prefix))
    base = subnet.network_address
    return TenantSubnet(
        subnet=subnet,
        bridge_ip=base + 1,
        gateway_ip=base + 2,
        dns_ip=base + 3,
        dynamic_range=ipaddress.IPv4Network((int(base) + size // 2, prefix + 1)),
    )


def bridge_name(prefix: str, tenant_id: str) -> str:
    name = prefix + tenant_id
    if len(name) > LINUX_IFNAME_MAX:
        raise ValueError(f"bridge name {name!r} is longer than {LINUX_IFNAME_MAX} characters")
    return name


def network_options(bridge: str) -> dict[str, str]:
    return {
        BRIDGE_NAME_OPTION: bridge,
        MASQUERADE_OPTION: "false",
        ICC_OPTION: "true",
    }


def network_labels(tenant_id: str, extra_labels: dict[str, str]) -> dict[str, str]:
    return {**extra_labels, LABEL_MANAGED: "1", LABEL_TENANT: tenant_id}
