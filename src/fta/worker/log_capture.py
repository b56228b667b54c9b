"""Turns a job container's raw output into stored, redacted, capped log text.

Tenant output is hostile input: lines are cut at a fixed length, the total kept is
capped, every line is redacted, and the single result line is set aside for schema
validation instead of being trusted or logged.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from fta.redaction import redact

RESULT_PREFIX = "FTA-RESULT:"
TRUNCATION_NOTICE = "[fta] log limit reached: further output of this job is not kept\n"


@dataclass
class LogCapture:
    max_line: int
    max_total: int
    secrets: tuple[str, ...] = ()
    result_line: str | None = None
    kept_bytes: int = 0
    truncated: bool = False
    tail: list[str] = field(default_factory=list)
    _pending: list[str] = field(default_factory=list)
    # Fed by the log-following thread, drained by the supervising one.
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def feed(self, raw: str) -> None:
        with self._lock:
            self._feed(raw)

    def _feed(self, raw: str) -> None:
        line = raw.rstrip("\r\n")
        if line.startswith(RESULT_PREFIX):
            self.result_line = line[: 512 * 1024]
            return
        if len(line) > self.max_line:
            line = line[: self.max_line] + " [fta: line cut]"
        text = redact(line, self.secrets) + "\n"
        self.tail = [*self.tail[-19:], text]
        if self.truncated:
            return
        if self.kept_bytes + len(text) > self.max_total:
            self.truncated = True
            self._pending.append(TRUNCATION_NOTICE)
            return
        self.kept_bytes += len(text)
        self._pending.append(text)

    def take_pending(self) -> str:
        """Returns the text not yet stored, and forgets it."""
        with self._lock:
            text, self._pending = "".join(self._pending), []
        return text

    def last_error_line(self) -> str | None:
        """The most telling of the last lines: an error if there is one, else the last line."""
        for text in reversed(self.tail):
            lowered = text.lower()
            if "error" in lowered or "exception" in lowered or "impossible" in lowered:
                return text.strip()
        return self.tail[-1].strip() if self.tail else None
