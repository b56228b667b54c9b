"""Static checks of an uploaded strategy. The source is parsed, never executed here."""

from __future__ import annotations

import ast
import re

from fta.errors import Invalid

MAX_SOURCE_BYTES = 256 * 1024
NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")


def check_name(name: str) -> None:
    if not NAME_PATTERN.fullmatch(name):
        raise Invalid(
            "the strategy name must be its Python class name: letters, digits and _, "
            "not starting with a digit, at most 100 characters"
        )


def check_source(name: str, source: str) -> None:
    size = len(source.encode("utf-8"))
    if size > MAX_SOURCE_BYTES:
        raise Invalid(
            f"the strategy source is {size} bytes; the limit is {MAX_SOURCE_BYTES} bytes (256 KiB)"
        )
    if "\x00" in source:
        raise Invalid("the strategy source contains NUL bytes: upload the .py text file")
    try:
        tree = ast.parse(source, filename=f"{name}.py")
    except SyntaxError as exc:
        raise Invalid(
            f"the strategy source is not valid Python (line {exc.lineno}: {exc.msg})"
        ) from exc
    classes = [node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    if name not in classes:
        found = ", ".join(sorted(classes)[:10]) or "none"
        raise Invalid(
            f"the source defines no class named {name!r} (classes found: {found}); "
            "the strategy name must be the strategy's class name"
        )
