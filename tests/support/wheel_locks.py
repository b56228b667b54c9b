"""The images' lock files (images/lock.sh), read."""

from __future__ import annotations

import re
from pathlib import Path

from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^ \\]+) \\$")
HASH = re.compile(r"^    --hash=sha256:[0-9a-f]{64}( \\)?$")


def locked(image: str) -> dict[str, str]:
    """The lock's pins, by canonical name; checks each carries at least one hash."""
    pins: dict[str, str] = {}
    lines = (REPO / "images" / image / "requirements.lock").read_text().splitlines()
    name = None
    hashes = 0
    for line in lines:
        if not line or line.startswith("#"):
            continue
        if pin := PIN.match(line):
            assert name is None or hashes, f"{name} has no hash"
            name, hashes = canonicalize_name(pin.group(1)), 0
            pins[name] = pin.group(2)
        else:
            assert HASH.match(line), f"{image}'s lock: unexpected line {line!r}"
            hashes += 1
    assert name is not None and hashes, f"{image}'s lock ends without a hash"
    return pins
