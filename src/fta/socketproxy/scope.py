"""Keeps the worker to this installation's containers, networks and volumes.

Before a call on an object goes through, the proxy inspects the object itself and requires
this installation's labels (`fta.instance=<instance>`, `fta.managed=1`), which only a create
through this proxy can have put there. Anything else on the engine (the portal's and
Postgres's containers, whose environment holds the platform's secrets, another installation's
jobs) cannot be inspected, read, stopped or removed. A call may require more labels of its
container: only a warm one (`fta.handoff=1`) takes the hand-off exec. An exec is judged by its
container's labels and by what it runs: the hand-off as the job's user, nothing else (should
an exec ever be made past the proxy). A container, network or exec call is then sent with the
object's full id, so a name cannot be swapped between the check and the call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from fta.socketproxy.bodies import HANDOFF_COMMAND, JOB_USER
from fta.socketproxy.config import ProxyConfig
from fta.socketproxy.errors import Refused
from fta.socketproxy.routes import Forward, Ownership

# Asks the engine for an object's inspect: (status, decoded JSON or None).
Inspect = Callable[[str], Awaitable[tuple[int, Any]]]

_COLLECTION = {
    "container": "containers",
    "network": "networks",
    "volume": "volumes",
    "exec": "exec",
}


async def scoped(forward: Forward, config: ProxyConfig, inspect: Inspect) -> Forward:
    owner = forward.owner
    if owner is None:
        return forward
    collection = _COLLECTION[owner.kind]
    version = forward.path.split(f"/{collection}/", 1)[0]
    suffix = "" if owner.kind in ("network", "volume") else "/json"
    path = f"{version}/{collection}/{owner.name}{suffix}"
    found = await _inspected(inspect, path, owner.kind, owner.name)
    if owner.kind == "exec":
        full_id = _full_id(found, "ID")
        container_id = _full_id(found, "ContainerID")
        path = f"{version}/containers/{container_id}/json"
        container = await _inspected(inspect, path, "container", container_id)
        _check_labels(owner, "container", container, config)
        if not _is_hand_off(found):
            raise Refused(403, f"exec {owner.name} is not the hand-off")
    else:
        _check_labels(owner, owner.kind, found, config)
        if owner.kind == "volume":
            return forward  # a volume's name is its id
        full_id = _full_id(found, "Id")
    prefix = f"{version}/{collection}/"
    rest = forward.path[len(prefix) + len(owner.name) :]
    return dataclasses.replace(forward, path=f"{prefix}{full_id}{rest}")


async def _inspected(inspect: Inspect, path: str, kind: str, name: str) -> dict[str, Any]:
    status, found = await inspect(path)
    if status == 404:
        raise Refused(404, f"no such {kind}: {name}")
    if status != 200 or not isinstance(found, dict):
        raise Refused(502, f"the engine answered {status} to the {kind}'s inspect")
    return found


def _check_labels(owner: Ownership, kind: str, found: dict[str, Any], config: ProxyConfig) -> None:
    labels = _labels(kind, found)
    ours = labels.get("fta.instance") == config.instance and labels.get("fta.managed") == "1"
    is_gateway = kind == "container" and found.get("Name") == f"/{config.gateway_container}"
    if not ours and not (owner.gateway_may_pass and is_gateway):
        raise Refused(403, f"{owner.kind} {owner.name} is not this installation's")
    for key, value in owner.required_labels:
        if labels.get(key) != value:
            raise Refused(403, f"{owner.kind} {owner.name} lacks the label {key}={value}")


def _is_hand_off(found: dict[str, Any]) -> bool:
    process = found.get("ProcessConfig")
    if not isinstance(process, dict):
        return False
    arguments = process.get("arguments") or []
    return (
        isinstance(arguments, list)
        and [process.get("entrypoint"), *arguments] == list(HANDOFF_COMMAND)
        and process.get("user") == JOB_USER
        and process.get("privileged") is False
        and process.get("tty") is False
    )


def _full_id(found: dict[str, Any], key: str) -> str:
    value = found.get(key)
    if not isinstance(value, str) or not value.isascii() or not value.isalnum():
        raise Refused(502, f"the engine's inspect has no {key}")
    return value


def _labels(kind: str, found: dict[str, Any]) -> dict[str, Any]:
    holder = found.get("Config") if kind == "container" else found
    labels = holder.get("Labels") if isinstance(holder, dict) else None
    return labels if isinstance(labels, dict) else {}
