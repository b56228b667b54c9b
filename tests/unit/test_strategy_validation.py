"""Static strategy checks: the source is parsed, never executed."""

from __future__ import annotations

import pytest

from fta.errors import Invalid
from fta.strategies.validation import (
    MAX_SOURCE_BYTES,
    InvalidStrategy,
    SourceNotPython,
    check_name,
    check_source,
)


def test_a_valid_strategy_passes() -> None:
    check_source("Mine", "class Mine:\n    pass\n")


def test_source_is_never_executed() -> None:
    # Would raise at import time if executed; parsing alone must accept it.
    check_source("Bomb", "raise SystemExit('ran')\nclass Bomb:\n    pass\n")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def (:", "not valid Python"),
        ("class Other:\n    pass\n", "no class named 'Mine'"),
        ("class Mine:\n    pass\n" + "#" * MAX_SOURCE_BYTES, "limit is"),
        ("class Mine:\n    pass\n\x00", "NUL"),
    ],
)
def test_bad_sources(source: str, message: str) -> None:
    with pytest.raises(Invalid, match=message):
        check_source("Mine", source)


@pytest.mark.parametrize("name", ["", "1abc", "a-b", "../x", "a" * 101, "naïve"])
def test_bad_names(name: str) -> None:
    with pytest.raises(Invalid):
        check_name(name)


@pytest.mark.parametrize(
    ("source", "line"),
    [
        ("class Mine:\n    pass\ndef (:\n", 3),
        ("class Mine:\n    x = (\n", 2),
        ("class Mine:\n  x = 1\n    y = 2\n", 3),
        ("class Mine:\n    pass\n\x00", 3),
        ("class Other:\n    pass\n", None),
    ],
)
def test_a_refusal_names_the_line_at_fault(source: str, line: int | None) -> None:
    with pytest.raises(InvalidStrategy) as refused:
        check_source("Mine", source)
    assert refused.value.line == line
    assert refused.value.problem_members() == ({} if line is None else {"line": line})


@pytest.mark.parametrize("source", ["x = " + "-" * 100_000 + "1\n", "x = a" + ".b" * 50_000 + "\n"])
def test_nesting_past_the_parsers_bounds_is_refused_as_such(source: str) -> None:
    with pytest.raises(SourceNotPython, match="nested too deeply"):
        check_source("Mine", source + "class Mine:\n    pass\n")
