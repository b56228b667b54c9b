"""Small, strict shape checks for decoded JSON: every object lists its keys, every value its
type (a bool is never an int), every string its pattern. Anything not listed is refused."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from fta.socketproxy.errors import Refused

Check = Callable[[Any, str], None]


def _refuse(where: str, why: str) -> Refused:
    return Refused(403, f"{where}: {why}")


def exactly(expected: object) -> Check:
    def check(value: Any, where: str) -> None:
        if type(value) is not type(expected) or value != expected:
            raise _refuse(where, f"must be {expected!r}")

    return check


def text(pattern: str) -> Check:
    compiled = re.compile(pattern)

    def check(value: Any, where: str) -> None:
        if not isinstance(value, str) or not value.isascii() or not compiled.fullmatch(value):
            raise _refuse(where, "not an allowed value")

    return check


def boolean(value: Any, where: str) -> None:
    if not isinstance(value, bool):
        raise _refuse(where, "must be true or false")


def null(value: Any, where: str) -> None:
    if value is not None:
        raise _refuse(where, "must be null")


def integer(low: int, high: int) -> Check:
    def check(value: Any, where: str) -> None:
        if type(value) is not int or not low <= value <= high:
            raise _refuse(where, f"must be an integer in [{low}, {high}]")

    return check


def array(item: Check, *, max_items: int) -> Check:
    def check(value: Any, where: str) -> None:
        if not isinstance(value, list) or len(value) > max_items:
            raise _refuse(where, f"must be a list of at most {max_items}")
        for index, element in enumerate(value):
            item(element, f"{where}[{index}]")

    return check


def mapping(key: str, item: Check, *, max_items: int) -> Check:
    """A JSON object used as a map (labels, options): free keys of a pattern."""
    key_check = text(key)

    def check(value: Any, where: str) -> None:
        if not isinstance(value, dict) or len(value) > max_items:
            raise _refuse(where, f"must be an object of at most {max_items} entries")
        for name, element in value.items():
            key_check(name, f"{where} key {name!r}")
            item(element, f"{where}.{name}")

    return check


def record(required: Mapping[str, Check], optional: Mapping[str, Check] | None = None) -> Check:
    """A JSON object read into a Go struct: exactly these keys, spelled exactly."""
    allowed = {**required, **(optional or {})}

    def check(value: Any, where: str) -> None:
        if not isinstance(value, dict):
            raise _refuse(where, "must be an object")
        for name in value:
            if name not in allowed:
                raise _refuse(where, f"key {name!r} is not allowed")
        for name in required:
            if name not in value:
                raise _refuse(where, f"key {name!r} is required")
        for name, element in value.items():
            allowed[name](element, f"{where}.{name}")

    return check
