"""Turns a config validation error into one sentence a client can act on."""

from __future__ import annotations

from pydantic import ValidationError

from fta.freqtrade.options import ALLOWED_OPTIONS


def describe_config_error(
    exc: ValidationError, subject: str = "job", allowed: tuple[str, ...] = ALLOWED_OPTIONS
) -> str:
    problems: list[str] = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = f"unknown option; allowed: {', '.join(allowed)}"
        problems.append(f"{where}: {message}" if where else message)
    return f"invalid {subject} config: " + "; ".join(problems)
