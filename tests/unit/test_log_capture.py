"""Job output handling: caps, redaction, and the result line kept apart."""

from __future__ import annotations

import base64

from fta.worker.log_capture import RESULT_PREFIX, TRUNCATION_NOTICE, LogCapture


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


def test_archive_lines_are_collected_apart_and_capped() -> None:
    capture = LogCapture(max_line=100, max_total=1000, max_archive=10)
    capture.feed("FTA-ARCHIVE:name:result.zip\n")
    capture.feed("FTA-ARCHIVE:data:" + base64.b64encode(b"hello").decode() + "\n")
    capture.feed("FTA-ARCHIVE:data:" + base64.b64encode(b"!").decode() + "\n")
    capture.feed("FTA-ARCHIVE:end\n")
    assert capture.archive is not None
    assert (capture.archive.filename, capture.archive.content) == ("result.zip", b"hello!")
    assert capture.take_pending() == ""

    for name, chunks in (("../../etc/passwd", [b"x"]), ("big.zip", [b"123456", b"789012"])):
        capture = LogCapture(max_line=100, max_total=1000, max_archive=10)
        capture.feed(f"FTA-ARCHIVE:name:{name}\n")
        for chunk in chunks:
            capture.feed("FTA-ARCHIVE:data:" + base64.b64encode(chunk).decode() + "\n")
        capture.feed("FTA-ARCHIVE:end\n")
        assert capture.archive is None, name
