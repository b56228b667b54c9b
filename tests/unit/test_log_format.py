"""The services' log lines as JSON (FTA_LOG_FORMAT=json): one object per record, each text
redacted, a traceback included."""

from __future__ import annotations

import json
import logging

from fta.logs import JsonFormatter

URL = "postgresql://fta_app:s3cr3t-passw0rd@postgres:5432/fta"  # pragma: allowlist secret


def _record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ConnectionError(f"cannot reach {URL}")
        except ConnectionError as error:
            exc_info = (type(error), error, error.__traceback__)
    return logging.LogRecord("fta.worker", logging.ERROR, __file__, 1, message, args, exc_info)


def test_a_record_is_one_json_object_with_its_secrets_redacted() -> None:
    line = JsonFormatter().format(_record("connecting to %s", URL))
    assert "\n" not in line and "s3cr3t-passw0rd" not in line
    entry = json.loads(line)
    assert entry["level"] == "ERROR" and entry["logger"] == "fta.worker"
    assert entry["message"].startswith("connecting to postgresql://fta_app:")
    assert entry["time"].endswith("+00:00")


def test_a_traceback_is_kept_and_redacted_too() -> None:
    entry = json.loads(JsonFormatter().format(_record("failed", exc=True)))
    assert "ConnectionError" in entry["exception"]
    assert "s3cr3t-passw0rd" not in entry["exception"]
