"""A tenant's subnet and security group on ECS: the tenant network's counterpart.

The subnet is the one a host would give the tenant's network (fta.runtime.network), made in
the VPC: the market-data gateway tells tenants apart by their source subnet, as on a host.
Tasks of one tenant share the subnet and the group. Their traffic may go to the market-data
gateway and to what Fargate itself needs through the task's interface (the ECR and
CloudWatch Logs endpoints, S3 for image layers and bundles, EFS for the tenant's files); only
the gateway may reach in, to a bot's API. Names do not resolve outside: the VPC's DNS
Firewall answers only the service discovery namespace and the AWS endpoints (deploy/ecs/),
since no security group can stop a query to the VPC's resolver.
"""

from __future__ import annotations

from typing import Any

from fta.runtime.ecs.settings import EcsSettings

HTTPS_PORT = 443
NFS_PORT = 2049

# (port, kind of peer, peer): kind is "group" or "prefix-list".
Rule = tuple[int, str, str]


def security_group_name(instance: str, tenant_id: str) -> str:
    return f"fta-{instance}-client-{tenant_id}"


def verify_subnet(
    subnet: dict[str, Any], *, vpc_id: str, cidr: str, route_table: str | None, expected: str
) -> list[str]:
    """What differs between a described subnet and the tenant's; `route_table` is the one
    explicitly associated with it, `expected` the job subnets' own."""
    mismatches = []
    for key, want in (("VpcId", vpc_id), ("CidrBlock", cidr)):
        if subnet.get(key) != want:
            mismatches.append(f"{key}: {subnet.get(key)!r}, not {want!r}")
    if subnet.get("MapPublicIpOnLaunch"):
        mismatches.append("MapPublicIpOnLaunch: public addresses")
    if route_table != expected:
        mismatches.append(f"route table: {route_table!r}, not {expected!r}")
    return mismatches


def egress_rules(settings: EcsSettings, gateway_port: int) -> set[Rule]:
    return {
        (gateway_port, "group", settings.gateway_security_group),
        (HTTPS_PORT, "group", settings.endpoints_security_group),
        (HTTPS_PORT, "prefix-list", settings.s3_prefix_list),
        (NFS_PORT, "group", settings.efs_security_group),
    }


def ingress_rules(settings: EcsSettings) -> set[Rule]:
    return {(settings.bot_api_port, "group", settings.gateway_security_group)}


def ip_permissions(rules: set[Rule]) -> list[dict[str, Any]]:
    permissions = []
    for port, kind, peer in sorted(rules):
        permission: dict[str, Any] = {"IpProtocol": "tcp", "FromPort": port, "ToPort": port}
        if kind == "group":
            permission["UserIdGroupPairs"] = [{"GroupId": peer}]
        else:
            permission["PrefixListIds"] = [{"PrefixListId": peer}]
        permissions.append(permission)
    return permissions


def rules_of(permissions: list[dict[str, Any]]) -> set[tuple[str, int, int, str, str]]:
    """Each (protocol, from, to, kind, peer) a described group allows: IP ranges included, so
    that an added or a default rule shows as a difference."""
    found = set()
    for permission in permissions:
        head = (
            str(permission.get("IpProtocol")),
            int(permission.get("FromPort", -1)),
            int(permission.get("ToPort", -1)),
        )
        for pair in permission.get("UserIdGroupPairs") or []:
            found.add((*head, "group", str(pair.get("GroupId"))))
        for prefix in permission.get("PrefixListIds") or []:
            found.add((*head, "prefix-list", str(prefix.get("PrefixListId"))))
        for ip_range in permission.get("IpRanges") or []:
            found.add((*head, "cidr", str(ip_range.get("CidrIp"))))
        for ip_range in permission.get("Ipv6Ranges") or []:
            found.add((*head, "cidr", str(ip_range.get("CidrIpv6"))))
    return found


def expected(rules: set[Rule]) -> set[tuple[str, int, int, str, str]]:
    return {("tcp", port, port, kind, peer) for port, kind, peer in rules}


def verify_security_group(
    group: dict[str, Any], *, vpc_id: str, egress: set[Rule], ingress: set[Rule]
) -> list[str]:
    mismatches = []
    if group.get("VpcId") != vpc_id:
        mismatches.append(f"VpcId: {group.get('VpcId')!r}, not {vpc_id!r}")
    for label, want, got in (
        ("egress", expected(egress), rules_of(group.get("IpPermissionsEgress") or [])),
        ("ingress", expected(ingress), rules_of(group.get("IpPermissions") or [])),
    ):
        if extra := got - want:
            mismatches.append(f"{label} allows {sorted(extra)}")
        if missing := want - got:
            mismatches.append(f"{label} lacks {sorted(missing)}")
    return mismatches
