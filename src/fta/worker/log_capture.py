"""Turns a job container's raw output into stored, redacted, capped log text.

Tenant output is hostile input: lines are cut at a fixed length, the total kept is
capped, every line is redacted, and the single result line is set aside for schema
validation instead of being trusted or logged. Only the container's entry can start a line
with a marker (it escapes the job's own lines that would). The result archive is kept only
when it arrived whole: the engine's log can lose or repeat lines across a rotation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from fta.freqtrade.markers import ARCHIVE_PREFIX, ERROR_PREFIX, RESULT_PREFIX
from fta.redaction import LineRedactor
from fta.settings import Settings

log = logging.getLogger(__name__)

ARCHIVE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
ARCHIVE_END = re.compile(r"end:([0-9]{1,12}):([0-9a-f]{64})")
TRUNCATION_NOTICE = "[fta] log limit reached: further output of this job is not kept\n"
ARCHIVE_LOST_NOTICE = (
    "[fta] the result file did not arrive whole and is not kept: run the job again to get it\n"
)


@dataclass(frozen=True)
class ResultArchive:
    filename: str
    content: bytes


@dataclass
class LogCapture:
    max_line: int
    # None: no cap (a bot's output, whose old chunks are pruned as it runs).
    max_total: int | None
    secrets: tuple[str, ...] = ()
    max_archive: int = 8 * 1024 * 1024
    result_line: str | None = None
    archive: ResultArchive | None = None
    archive_problem: str | None = None
    _archive_parts: list[bytes] | None = None
    _archive_name: str = ""
    _archive_size: int = 0
    kept_bytes: int = 0
    truncated: bool = False
    tail: list[str] = field(default_factory=list)
    _pending: list[str] = field(default_factory=list)
    _pending_chars: int = 0
    # Characters of the output already stored, by the worker that started the container.
    _stored_before: int = 0
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
        self._keep(text + "\n")

    def _keep(self, text: str) -> None:
        self.tail = [*self.tail[-19:], text]
        if self.truncated:
            return
        if self.max_total is not None and self.kept_bytes + len(text) > self.max_total:
            self.truncated = True
            self._pending.append(TRUNCATION_NOTICE)
            self._pending_chars += len(TRUNCATION_NOTICE)
            return
        self.kept_bytes += len(text)
        self._pending.append(text)
        self._pending_chars += len(text)

    def _archive_line(self, rest: str) -> None:
        """Collects the opaque result file: decoded, size-capped and checked, never parsed."""
        if rest.startswith("name:"):
            if self._archive_parts is not None:
                self._drop_archive("a new archive started before its end line")
            name = rest[len("name:") :]
            self._archive_name, self._archive_size = name, 0
            self._archive_parts = []
            if ARCHIVE_NAME.fullmatch(name) is None:
                self._drop_archive("its name is not a plain file name")
        elif self._archive_parts is None:
            return
        elif rest.startswith("data:"):
            try:
                chunk = base64.b64decode(rest[len("data:") :], validate=True)
            except (binascii.Error, ValueError):
                self._drop_archive("a line of it is not base64")
                return
            self._archive_size += len(chunk)
            if self._archive_size > self.max_archive:
                self._drop_archive(f"it is over {self.max_archive} bytes")
                return
            self._archive_parts.append(chunk)
        elif rest.startswith("end"):
            self._end_archive(rest)

    def _end_archive(self, rest: str) -> None:
        assert self._archive_parts is not None  # noqa: S101 - checked by the caller
        content = b"".join(self._archive_parts)
        end = ARCHIVE_END.fullmatch(rest)
        if end is None:
            self._drop_archive("its end line carries no size and SHA-256")
        elif len(content) != int(end.group(1)):
            self._drop_archive(f"{len(content)} bytes arrived of {end.group(1)}")
        elif hashlib.sha256(content).hexdigest() != end.group(2):
            self._drop_archive("its SHA-256 does not match")
        else:
            self.archive = ResultArchive(self._archive_name, content)
            self._archive_parts = None

    def _drop_archive(self, reason: str) -> None:
        self._archive_parts = None
        self.archive_problem = reason
        log.warning("result archive %r not kept: %s", self._archive_name[:100], reason)
        self._keep(ARCHIVE_LOST_NOTICE)

    def take_pending(self) -> str:
        """Returns the text not yet stored, and forgets it."""
        with self._lock:
            text, self._pending = "".join(self._pending), []
            self._pending_chars = 0
            if self._stored_before:
                skipped = min(self._stored_before, len(text))
                text, self._stored_before = text[skipped:], self._stored_before - skipped
        return text

    def resume_after(self, stored_chars: int) -> None:
        """Continues a capture another worker began: the container's output is fed again
        from its first line (its result and archive lines included), and the first
        `stored_chars` characters of text, already stored, are not given again. The capture is
        deterministic, so the same output gives the same text."""
        with self._lock:
            self._stored_before = stored_chars

    @property
    def pending_chars(self) -> int:
        """How much text waits to be stored."""
        with self._lock:
            return self._pending_chars

    def last_error_line(self) -> str | None:
        """Why the container ended, from its last lines (see `crash_cause`)."""
        return crash_cause(self.tail)


def output_capture(settings: Settings, *, capped: bool = True) -> LogCapture:
    """The capture of a job's or a bot's container output: lines cut at `job_log_max_line`,
    all redacted; `capped`, at most `job_log_max_bytes` kept in all (a job's), else no cap (a
    bot's, which runs for months, its old chunks pruned as it goes)."""
    return LogCapture(
        max_line=settings.job_log_max_line,
        max_total=settings.job_log_max_bytes if capped else None,
    )


def crash_cause(lines: Sequence[str]) -> str | None:
    """The most telling of a container's last lines: the entry's own `FTA-ERROR:` line if
    there is one, else the last that reads like an error, else the last line; None if it
    printed nothing."""
    texts = [line.strip() for line in lines if line.strip()]
    for text in reversed(texts):
        if text.startswith(ERROR_PREFIX):
            return text.removeprefix(ERROR_PREFIX).strip()
    for text in reversed(texts):
        lowered = text.lower()
        if "error" in lowered or "exception" in lowered or "impossible" in lowered:
            return text
    return texts[-1] if texts else None


def exit_error(exit_code: int | None, lines: Sequence[str]) -> str:
    """The error a container that ended on its own is recorded with."""
    cause = crash_cause(lines) or "no output"
    return f"freqtrade exited with code {exit_code}: {cause}"
