"""What the engine sends back that needs parsing: log streams and timestamps."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

UNSET_TIME = "0001-01-01T00:00:00Z"


def split_log_lines(chunks: Iterable[bytes], max_line: int) -> Iterator[str]:
    """Text lines from raw output chunks; a line longer than `max_line` bytes comes in
    pieces, so hostile output without newlines never grows a buffer."""
    pending = b""
    for chunk in chunks:
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            line = line.removesuffix(b"\r")
            for start in range(0, max(len(line), 1), max_line):
                yield _decode(line[start : start + max_line])
        while len(pending) >= max_line:
            yield _decode(pending[:max_line])
            pending = pending[max_line:]
    if pending:
        yield _decode(pending)


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def parse_docker_time(value: str | None) -> datetime | None:
    """Docker's times are UTC with nanoseconds; Python keeps microseconds."""
    if not value or value == UNSET_TIME:
        return None
    if not value.endswith("Z"):
        raise ValueError(f"not a UTC time: {value!r}")
    seconds, _, fraction = value.removesuffix("Z").partition(".")
    micros = int(fraction[:6].ljust(6, "0")) if fraction else 0
    return datetime.fromisoformat(seconds).replace(microsecond=micros, tzinfo=UTC)
