"""Turns a job container's raw output into stored, redacted, capped log text.

Tenant output is hostile input: lines are cut at a fixed length, the total kept is
capped, every line is redacted, and the single result line is set aside for schema
validation instead of being trusted or logged.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
from dataclasses import dataclass, field

from fta.redaction import LineRedactor

RESULT_PREFIX = "FTA-RESULT:"
ARCHIVE_PREFIX = "FTA-ARCHIVE:"
ARCHIVE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
TRUNCATION_NOTICE = "[fta] log limit reached: further output of this job is not kept\n"


@dataclass(frozen=True)
class ResultArchive:
    filename: str
    content: bytes


@dataclass
class LogCapture:
    max_line: int
    max_total: int
    secrets: tuple[str, ...] = ()
    max_archive: int = 8 * 1024 * 1024
    result_line: str | None = None
    archive: ResultArchive | None = None
    _archive_parts: list[bytes] | None = None
    _archive_name: str = ""
    _archive_size: int = 0
    kept_bytes: int = 0
    truncated: bool = False
    tail: list[str] = field(default_factory=list)
    _pending: list[str] = field(default_factory=list)
    # Fed by the log-following thread, drained by the supervising one.
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _redactor: LineRedactor = field(init=False)

    def __post_init__(self) -> None:
        self._redactor = LineRedactor(self.secrets)

    def feed(self, raw: str) -> None:
        with self._lock:
            self._feed(raw)

    def _feed(self, raw: str) -> None:
        line = raw.rstrip("\r\n")
        if line.startswith(RESULT_PREFIX):
            self.result_line = line[: 512 * 1024]
            return
        if line.startswith(ARCHIVE_PREFIX):
            self._archive_line(line[len(ARCHIVE_PREFIX) :])
            return
        text = self._redactor.redact_line(line, self.max_line)
        if len(line) > self.max_line:
            text += " [fta: line cut]"
        text += "\n"
        self.tail = [*self.tail[-19:], text]
        if self.truncated:
            return
        if self.kept_bytes + len(text) > self.max_total:
            self.truncated = True
            self._pending.append(TRUNCATION_NOTICE)
            return
        self.kept_bytes += len(text)
        self._pending.append(text)

    def _archive_line(self, rest: str) -> None:
        """Collects the opaque result file: decoded and size-capped, never parsed."""
        if rest.startswith("name:"):
            name = rest[len("name:") :]
            valid = ARCHIVE_NAME.fullmatch(name) is not None
            self._archive_parts = [] if valid else None
            self._archive_name, self._archive_size = name, 0
        elif rest.startswith("data:") and self._archive_parts is not None:
            try:
                chunk = base64.b64decode(rest[len("data:") :], validate=True)
            except (binascii.Error, ValueError):
                self._archive_parts = None
                return
            self._archive_size += len(chunk)
            if self._archive_size > self.max_archive:
                self._archive_parts = None
                return
            self._archive_parts.append(chunk)
        elif rest == "end" and self._archive_parts is not None:
            self.archive = ResultArchive(self._archive_name, b"".join(self._archive_parts))
            self._archive_parts = None

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
