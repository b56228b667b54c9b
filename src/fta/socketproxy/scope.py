"""Keeps the worker to this installation's containers, networks and volumes.

Before a call on an object goes through, the proxy inspects the object itself and requires
this installation's labels (`fta.instance=<instance>`, `fta.managed=1`), which only a create
through this proxy can have put there. Anything else on the engine (the portal's and
Postgres's containers, whose environment holds the platform's secrets, another installation's
jobs) cannot be inspected, read, stopped or removed. A container or network call is then sent
with the object's full id, so a name cannot be swapped between the check and the call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from fta.socketproxy.config import ProxyConfig
from fta.socketproxy.errors import Refused
from fta.socketproxy.routes import Forward

# Asks the engine for an object's inspect: (status, decoded JSON or None).
Inspect = Callable[[str], Awaitable[tuple[int, Any]]]

_COLLECTION = {"container": "containers", "network": "networks", "volume": "volumes"}


async def scoped(forward: Forward, config: ProxyConfig, inspect: Inspect) -> Forward:
    owner = forward.owner
    if owner is None:
        return forward
    collection = _COLLECTION[owner.kind]
    version = forward.path.split(f"/{collection}/", 1)[0]
    suffix = "/json" if owner.kind == "container" else ""
    status, found = await inspect(f"{version}/{collection}/{owner.name}{suffix}")
    if status == 404:
        raise Refused(404, f"no such {owner.kind}: {owner.name}")
    if status != 200 or not isinstance(found, dict):
        raise Refused(502, f"the engine answered {status} to the {owner.kind}'s inspect")
    labels = _labels(owner.kind, found)
    ours = labels.get("fta.instance") == config.instance and labels.get("fta.managed") == "1"
    is_gateway = owner.kind == "container" and found.get("Name") == f"/{config.gateway_container}"
    if not ours and not (owner.gateway_may_pass and is_gateway):
        raise Refused(403, f"{owner.kind} {owner.name} is not this installation's")
    if owner.kind == "volume":
        return forward  # a volume's name is its id
    full_id = found.get("Id")
    if not isinstance(full_id, str) or not full_id.isalnum():
        raise Refused(502, "the engine's inspect has no id")
    prefix = f"{version}/{collection}/"
    rest = forward.path[len(prefix) + len(owner.name) :]
    return dataclasses.replace(forward, path=f"{prefix}{full_id}{rest}")


def _labels(kind: str, found: dict[str, Any]) -> dict[str, Any]:
    holder = found.get("Config") if kind == "container" else found
    labels = holder.get("Labels") if isinstance(holder, dict) else None
    return labels if isinstance(labels, dict) else {}
