"""Job output handling: caps, redaction, and the result line kept apart."""

from __future__ import annotations

import base64
import hashlib
import logging

import pytest

from fta.freqtrade.markers import RESULT_PREFIX
from fta.worker.log_capture import (
    ARCHIVE_LOST_NOTICE,
    TRUNCATION_NOTICE,
    LogCapture,
    ResultArchive,
)


def test_lines_are_cut_and_total_is_capped() -> None:
    capture = LogCapture(max_line=10, max_total=40)
    capture.feed("x" * 50 + "\n")
    for _ in range(10):
        capture.feed("short line\n")
    text = capture.take_pending()
    assert text.startswith("x" * 10 + " [fta: line cut]\n")
    assert text.endswith(TRUNCATION_NOTICE)
    assert len(text) <= 40 + len(TRUNCATION_NOTICE)
    assert capture.truncated
    capture.feed("more\n")
    assert capture.take_pending() == ""


def test_result_line_is_not_logged() -> None:
    capture = LogCapture(max_line=100, max_total=1000)
    capture.feed("hello\n")
    capture.feed(RESULT_PREFIX + '{"trades": 3}\n')
    assert capture.take_pending() == "hello\n"
    assert capture.result_line == RESULT_PREFIX + '{"trades": 3}'


def test_secrets_are_redacted_and_last_error_found() -> None:
    capture = LogCapture(max_line=200, max_total=1000)
    capture.feed("password=hunter2hunter2\n")
    capture.feed("ERROR - Impossible to load Strategy 'Broken'\n")
    capture.feed("bye\n")
    assert "hunter2" not in capture.take_pending()
    assert capture.last_error_line() == "ERROR - Impossible to load Strategy 'Broken'"


def archive_lines(name: str, chunks: list[bytes], end: str | None = None) -> list[str]:
    """What the container entry prints for a file made of `chunks`."""
    content = b"".join(chunks)
    if end is None:
        end = f"end:{len(content)}:{hashlib.sha256(content).hexdigest()}"
    return [
        f"FTA-ARCHIVE:name:{name}\n",
        *(f"FTA-ARCHIVE:data:{base64.b64encode(chunk).decode()}\n" for chunk in chunks),
        f"FTA-ARCHIVE:{end}\n",
    ]


def feed_all(capture: LogCapture, lines: list[str]) -> None:
    for line in lines:
        capture.feed(line)


def test_archive_lines_are_collected_apart_and_capped() -> None:
    capture = LogCapture(max_line=100, max_total=1000, max_archive=10)
    feed_all(capture, archive_lines("result.zip", [b"hello", b"!"]))
    assert capture.archive is not None
    assert (capture.archive.filename, capture.archive.content) == ("result.zip", b"hello!")
    assert capture.archive_problem is None
    assert capture.take_pending() == ""

    for name, chunks in (("../../etc/passwd", [b"x"]), ("big.zip", [b"123456", b"789012"])):
        capture = LogCapture(max_line=100, max_total=1000, max_archive=10)
        feed_all(capture, archive_lines(name, chunks))
        assert capture.archive is None, name
        assert capture.archive_problem, name


def test_an_archive_that_lost_or_repeated_a_line_is_not_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    chunks = [b"first chunk ", b"second chunk ", b"third chunk"]
    whole = archive_lines("result.zip", chunks)
    damaged = {
        "a lost line": (whole[:2] + whole[3:], "23 bytes arrived of 36"),
        "a repeated line": (whole[:3] + whole[2:], "49 bytes arrived of 36"),
        "a changed line": (
            archive_lines("result.zip", [b"first chunk ", b"SECOND chunk ", b"third chunk"])[:-1]
            + whole[-1:],
            "its SHA-256 does not match",
        ),
        "an end line without size and digest": (
            archive_lines("result.zip", chunks, end="end"),
            "its end line carries no size and SHA-256",
        ),
        "a lost end line": (
            whole[:-1] + archive_lines("other.zip", [b"x"]),
            "a new archive started before its end line",
        ),
    }
    for case, (lines, reason) in damaged.items():
        capture = LogCapture(max_line=200, max_total=1000)
        capture.feed("before\n")
        with caplog.at_level(logging.WARNING, logger="fta.worker.log_capture"):
            feed_all(capture, lines)
        capture.feed(RESULT_PREFIX + "{}\n")
        if case == "a lost end line":
            # The next archive, whole, is still kept.
            assert capture.archive == ResultArchive("other.zip", b"x"), case
        else:
            assert capture.archive is None, case
        assert capture.archive_problem == reason, case
        assert reason in caplog.text, case
        # The job's own log says so; the result line is still set aside.
        assert capture.take_pending() == "before\n" + ARCHIVE_LOST_NOTICE, case
        assert capture.result_line == RESULT_PREFIX + "{}", case
        caplog.clear()


@pytest.mark.parametrize("stored_after", [0, 2, 5, 9])
def test_a_capture_resumed_after_what_was_stored_gives_the_rest_once(stored_after: int) -> None:
    """A worker that adopts a job reads its output again from the first line: what the first
    worker stored is not given again, the cap and the result line hold as if one worker had
    read it all."""
    lines = [f"line {n} " + "x" * 30 for n in range(10)] + [RESULT_PREFIX + '{"kind": "x"}']
    first = LogCapture(max_line=40, max_total=200)
    for line in lines[:stored_after]:
        first.feed(line)
    stored = first.take_pending()
    adopter = LogCapture(max_line=40, max_total=200)
    adopter.resume_after(len(stored))
    for line in lines[:6]:
        adopter.feed(line)
    middle = adopter.take_pending()
    for line in lines[6:]:
        adopter.feed(line)
    rest = adopter.take_pending()

    whole = LogCapture(max_line=40, max_total=200)
    for line in lines:
        whole.feed(line)
    assert stored + middle + rest == whole.take_pending()
    assert adopter.truncated and whole.truncated
    assert adopter.result_line == whole.result_line is not None
