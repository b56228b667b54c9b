"""Request bodies decoded so that the proxy and the engine cannot read them differently.

The engine decodes JSON with Go's `encoding/json`: a struct field matches any key equal to its
name under Unicode simple case folding (`ſ` is an `s`, the Kelvin sign a `k`), and the last of
duplicate keys wins. Rather than imitate that, the proxy refuses every body where it could
matter: keys outside printable ASCII, two keys of an object equal but for case, anything that
is not one plain JSON object. What it forwards is its own re-encoding of the decoded value,
so the engine reads exactly what was judged.
"""

from __future__ import annotations

import json
from typing import Any

from fta.socketproxy.errors import Refused

MAX_BODY_BYTES = 1_000_000


def decode_object(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_BODY_BYTES:
        raise Refused(413, f"body over {MAX_BODY_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Refused(400, "body is not UTF-8") from error
    try:
        value = json.loads(text, object_pairs_hook=_unique_ascii_members, parse_constant=_refuse)
    except Refused:
        raise
    except (ValueError, RecursionError) as error:
        raise Refused(400, "body is not one plain JSON document") from error
    if not isinstance(value, dict):
        raise Refused(400, "body is not a JSON object")
    return value


def encode(value: dict[str, Any]) -> bytes:
    """The canonical form sent to the engine: ASCII only, no insignificant whitespace."""
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode()


def _unique_ascii_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if not (key.isascii() and key.isprintable()):
            raise Refused(403, f"key {key!r} is not printable ASCII")
        # For ASCII keys, lower() is the whole of Unicode simple folding.
        folded = key.lower()
        if folded in seen:
            raise Refused(403, f"key {key!r} appears twice (ignoring case)")
        seen.add(folded)
    return dict(pairs)


def _refuse(constant: str) -> Any:
    raise Refused(400, f"{constant} is not JSON")
