"""Static checks of an uploaded strategy. The source is parsed, never executed here.

Each refusal is an `InvalidStrategy` of its own kind, carrying what it found (the portal's
pages say it in the visitor's language) and, where the refusal is about one line of the
source, that line (the API's problem document carries it as `line`)."""

from __future__ import annotations

import ast
import re

from fta.errors import Invalid

MAX_SOURCE_BYTES = 256 * 1024
NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")


class InvalidStrategy(Invalid):
    """A refused strategy; `line` is the line of its source at fault (from 1), where one is."""

    def __init__(self, detail: str, *, line: int | None = None) -> None:
        super().__init__(detail)
        self.line = line

    def problem_members(self) -> dict[str, object]:
        return {} if self.line is None else {"line": self.line}


class BadName(InvalidStrategy):
    pass


class SourceTooLarge(InvalidStrategy):
    def __init__(self, size: int) -> None:
        super().__init__(
            f"the strategy source is {size} bytes; the limit is {MAX_SOURCE_BYTES} bytes (256 KiB)"
        )
        self.size = size


class SourceNotText(InvalidStrategy):
    """NUL bytes: a binary file, not Python text."""


class SourceNotPython(InvalidStrategy):
    """The parser refused it; `message` is the parser's own (English) words."""

    def __init__(self, message: str, line: int | None) -> None:
        where = f"line {line}: " if line is not None else ""
        super().__init__(f"the strategy source is not valid Python ({where}{message})", line=line)
        self.message = message


class ClassMissing(InvalidStrategy):
    def __init__(self, name: str, classes: list[str]) -> None:
        found = ", ".join(classes) or "none"
        super().__init__(
            f"the source defines no class named {name!r} (classes found: {found}); "
            "the strategy name must be the strategy's class name"
        )
        self.name = name
        self.classes = classes


def check_name(name: str) -> None:
    if not NAME_PATTERN.fullmatch(name):
        raise BadName(
            "the strategy name must be its Python class name: letters, digits and _, "
            "not starting with a digit, at most 100 characters"
        )


def check_source(name: str, source: str) -> None:
    size = len(source.encode("utf-8"))
    if size > MAX_SOURCE_BYTES:
        raise SourceTooLarge(size)
    if "\x00" in source:
        raise SourceNotText(
            "the strategy source contains NUL bytes: upload the .py text file",
            line=source.count("\n", 0, source.index("\x00")) + 1,
        )
    try:
        tree = ast.parse(source, filename=f"{name}.py")
    except SyntaxError as exc:
        raise SourceNotPython(exc.msg, exc.lineno) from exc
    except (MemoryError, RecursionError) as exc:
        # The parser's own bounds on nesting (a very long chain of operators or attributes).
        raise SourceNotPython("nested too deeply for the parser", None) from exc
    classes = [node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    if name not in classes:
        raise ClassMissing(name, sorted(classes)[:10])
