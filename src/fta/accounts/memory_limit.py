"""How many password hashes fit in this process's memory limit, read from its cgroup."""

from __future__ import annotations

from pathlib import Path

# cgroup v2 names the limit memory.max ("max" when unlimited); v1 memory.limit_in_bytes (a
# huge number when unlimited).
_LIMIT_FILES = (
    Path("/sys/fs/cgroup/memory.max"),
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
)
# v1 reports "no limit" as the largest page-aligned 63-bit value; anything this large is none.
_UNLIMITED_FROM = 1 << 60
# A quarter of the limit is for hashing: the portal itself holds about 200 MiB of a 512 MiB
# limit, and a burst of requests allocates besides (measured: half of it for hashing peaked at
# 88% of the limit under 100 concurrent log-ins).
HASHING_SHARE = 4
SLOTS_WITHOUT_LIMIT = 4
MAX_SLOTS = 64


def cgroup_memory_limit(files: tuple[Path, ...] = _LIMIT_FILES) -> int | None:
    """The memory limit in bytes, or None when there is none (or no cgroup file to read)."""
    for path in files:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text == "max" or not text.isdigit():
            return None
        limit = int(text)
        return None if limit >= _UNLIMITED_FROM else limit
    return None


def hash_slots_for(hash_bytes: int, limit: int | None) -> int:
    """At least one slot; as many hashes as fill the hashing share of the limit."""
    if limit is None:
        return SLOTS_WITHOUT_LIMIT
    return max(1, min(MAX_SLOTS, limit // HASHING_SHARE // hash_bytes))
