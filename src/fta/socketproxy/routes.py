"""The calls the worker makes (fta.runtime.docker_runner), as an exact allow-list of method,
path and query parameters. The only exec is the fixed hand-off command, detached, on a
container labelled fta.handoff=1 (a warm job container waiting for its job). Every other
request is refused: any other exec, attach, archive, export, commit, update, build, image
changes and lists, swarm, plugins, prune, events and the rest.

A request that passes is rebuilt from what was judged: the path as matched, the query from
the allowed parameters only (each once), the body re-encoded. The engine never sees a byte of
the original request that the proxy did not read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, urlencode

from fta.socketproxy import bodies
from fta.socketproxy.canonical import decode_object, encode
from fta.socketproxy.config import ProxyConfig
from fta.socketproxy.errors import Refused

ObjectKind = Literal["container", "network", "volume", "exec"]

# On a warm job container (fta.runtime.spec.LABEL_HANDOFF): the one kind that may be exec'd in.
HANDOFF_LABEL = ("fta.handoff", "1")

_VERSION = r"(?P<version>/v1\.[0-9]{1,2})?"
_ID = r"(?P<id>[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127})"
_NETWORK = r"(?P<id>fta-client-[a-z0-9]{1,10})"
_VOLUME = r"(?P<id>fta-[a-z0-9][a-z0-9-]{0,62})"
# A tenant's data volume (fta.runtime.spec.tenant_volume_name): the only kind ever removed.
_DATA_VOLUME = r"(?P<id>fta-data-[a-z0-9]{1,10})"
# An image reference as a create's `Image` may name it (name components, an optional tag), no
# empty or dot-only path segment.
_COMPONENT = r"[a-z0-9]+([._-][a-z0-9]+)*"
_IMAGE = rf"{_COMPONENT}(/{_COMPONENT}){{0,7}}(:[A-Za-z0-9_][A-Za-z0-9._-]{{0,127}})?"
_FLAG = r"(0|1|[Tt]rue|[Ff]alse)"


@dataclass(frozen=True)
class Ownership:
    """The object a call acts on: it must be this installation's (see fta.socketproxy.scope)."""

    kind: ObjectKind
    name: str
    # The gateway is no object of the installation, but the worker reads its addresses.
    gateway_may_pass: bool = False
    # An inspect of a missing object answers 404 (the worker then creates it).
    missing_may_pass: bool = False
    # Labels the container (an exec's: its container's) must carry besides this installation's.
    required_labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Forward:
    method: str
    path: str
    query: str
    body: bytes | None
    owner: Ownership | None
    # Follows, waits and streams stay open for as long as the container runs.
    long_lived: bool = False

    @property
    def target(self) -> str:
        return f"{self.path}?{self.query}" if self.query else self.path


BodyCheck = Callable[[dict[str, object], dict[str, str], ProxyConfig], None]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    params: dict[str, str]
    owner: ObjectKind | None = None
    body: BodyCheck | None = None
    required: frozenset[str] = frozenset()
    gateway_may_pass: bool = False
    missing_may_pass: bool = False
    long_lived: bool = False
    required_labels: tuple[tuple[str, str], ...] = ()


def _route(method: str, path: str, **kwargs: object) -> Route:
    return Route(method, re.compile(_VERSION + path), **kwargs)  # type: ignore[arg-type]


def _create_container(body: dict[str, object], query: dict[str, str], c: ProxyConfig) -> None:
    bodies.container_name(query["name"], "name")
    bodies.check_container_create(body, query["name"], c)


ROUTES = [
    _route("GET", r"/info", params={}),
    _route(
        "GET",
        r"/containers/json",
        params={
            "all": _FLAG,
            "limit": r"-?[0-9]{1,4}",
            "size": _FLAG,
            "trunc_cmd": _FLAG,
            "filters": r"[ -~]{0,4096}",
        },
    ),
    _route(
        "POST",
        r"/containers/create",
        params={"name": r"[ -~]{1,128}"},
        required=frozenset({"name"}),
        body=_create_container,
    ),
    _route("GET", rf"/containers/{_ID}/json", params={}, owner="container", gateway_may_pass=True),
    # The id a job image resolves to, which names the volume holding its Python environment:
    # what creating a container of that image and inspecting it would show anyway.
    _route("GET", rf"/images/{_IMAGE}/json", params={}),
    _route("POST", rf"/containers/{_ID}/start", params={}, owner="container"),
    _route(
        "GET",
        rf"/containers/{_ID}/logs",
        params={
            "stdout": _FLAG,
            "stderr": _FLAG,
            "timestamps": _FLAG,
            "follow": _FLAG,
            "tail": r"all|[0-9]{1,7}",
            "since": r"[0-9]{1,12}(\.[0-9]{1,9})?",
        },
        owner="container",
        long_lived=True,
    ),
    _route(
        "POST",
        rf"/containers/{_ID}/wait",
        params={"condition": r"not-running|next-exit|removed"},
        owner="container",
        long_lived=True,
    ),
    _route(
        "GET",
        rf"/containers/{_ID}/stats",
        params={"stream": _FLAG, "one-shot": _FLAG},
        owner="container",
        long_lived=True,
    ),
    _route(
        "POST", rf"/containers/{_ID}/kill", params={"signal": r"[A-Z0-9]{1,10}"}, owner="container"
    ),
    _route("POST", rf"/containers/{_ID}/stop", params={"t": r"[0-9]{1,4}"}, owner="container"),
    _route(
        "DELETE",
        rf"/containers/{_ID}",
        params={"v": _FLAG, "force": _FLAG, "link": r"0|[Ff]alse"},
        owner="container",
    ),
    _route("GET", rf"/networks/{_NETWORK}", params={}, owner="network", missing_may_pass=True),
    _route(
        "POST",
        r"/networks/create",
        params={},
        body=lambda b, _, c: bodies.check_network_create(b, c),
    ),
    _route(
        "POST",
        rf"/networks/{_NETWORK}/connect",
        params={},
        owner="network",
        body=lambda b, _, c: bodies.check_network_connect(b, c),
    ),
    # An unused tenant network is removed, the gateway's connection to it first.
    _route(
        "POST",
        rf"/networks/{_NETWORK}/disconnect",
        params={},
        owner="network",
        body=lambda b, _, c: bodies.check_network_disconnect(b, c),
    ),
    _route("DELETE", rf"/networks/{_NETWORK}", params={}, owner="network"),
    _route("GET", rf"/volumes/{_VOLUME}", params={}, owner="volume", missing_may_pass=True),
    _route(
        "POST",
        r"/volumes/create",
        params={},
        body=lambda b, _, c: bodies.check_volume_create(b, c),
    ),
    # An erased account's data volume goes with it. No other volume (the candle cache, the
    # jobs' Python environments) is ever removed, and never by force.
    _route("DELETE", rf"/volumes/{_DATA_VOLUME}", params={}, owner="volume"),
    # The hand-off of a job to its warm container: the one command, then its end read from the
    # exec's inspect. Never a stream: the start is detached.
    _route(
        "POST",
        rf"/containers/{_ID}/exec",
        params={},
        owner="container",
        required_labels=(HANDOFF_LABEL,),
        body=lambda b, _, c: bodies.check_exec_create(b),
    ),
    _route(
        "POST",
        rf"/exec/{_ID}/start",
        params={},
        owner="exec",
        required_labels=(HANDOFF_LABEL,),
        body=lambda b, _, c: bodies.check_exec_start(b),
    ),
    _route("GET", rf"/exec/{_ID}/json", params={}, owner="exec", required_labels=(HANDOFF_LABEL,)),
]


def judge(method: str, target: str, body: bytes, config: ProxyConfig) -> Forward:
    """The request to send the engine for this one, or Refused."""
    path, _, raw_query = target.partition("?")
    for route in ROUTES:
        match = route.pattern.fullmatch(path)
        if match is None or route.method != method:
            continue
        query = _query(raw_query, route)
        if route.pattern.pattern.endswith("/containers/json"):
            query["filters"] = _scoped_filters(query.get("filters"), config)
        forwarded_body = None
        if route.body is not None:
            decoded = decode_object(body)
            route.body(decoded, query, config)
            forwarded_body = encode(decoded)
        elif body:
            raise Refused(400, "this call takes no body")
        owner = None
        if route.owner is not None:
            owner = Ownership(
                route.owner,
                match.group("id"),
                gateway_may_pass=route.gateway_may_pass,
                missing_may_pass=route.missing_may_pass,
                required_labels=route.required_labels,
            )
        return Forward(
            method=method,
            path=path,
            query=urlencode(query),
            body=forwarded_body,
            owner=owner,
            long_lived=route.long_lived,
        )
    raise Refused(403, f"{method} {path} is not allowed")


def _query(raw: str, route: Route) -> dict[str, str]:
    if ";" in raw:
        raise Refused(400, "';' in the query")
    try:
        pairs = parse_qsl(raw, keep_blank_values=True, strict_parsing=bool(raw))
    except ValueError as error:
        raise Refused(400, "malformed query") from error
    query: dict[str, str] = {}
    for key, value in pairs:
        pattern = route.params.get(key)
        if pattern is None:
            raise Refused(403, f"query parameter {key!r} is not allowed")
        if key in query:
            raise Refused(403, f"query parameter {key!r} given twice")
        if not re.fullmatch(pattern, value):
            raise Refused(403, f"query parameter {key!r} has a value that is not allowed")
        query[key] = value
    missing = route.required - query.keys()
    if missing:
        raise Refused(400, f"query parameter {sorted(missing)[0]!r} is required")
    return query


def _scoped_filters(raw: str | None, config: ProxyConfig) -> str:
    """The list's filters, narrowed to this installation's containers whatever was asked."""
    labels: list[str] = []
    if raw:
        try:
            filters = json.loads(raw)
        except ValueError as error:
            raise Refused(400, "filters is not JSON") from error
        asked = filters.get("label") if isinstance(filters, dict) else None
        if set(filters) - {"label"} or not isinstance(asked, list):
            raise Refused(403, "only label filters are allowed")
        if not all(isinstance(item, str) and item.isascii() for item in asked):
            raise Refused(403, "label filters are ASCII strings")
        labels = list(asked)
    labels += [f"fta.instance={config.instance}", "fta.managed=1"]
    return json.dumps({"label": labels})
