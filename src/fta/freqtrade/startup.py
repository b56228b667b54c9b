"""How many startup candles a strategy declares, read from its source without running it.

freqtrade loads `startup_candle_count` candles before a backtest's start so that indicators
are warm when it begins. The worker fills the shared candle cache that far back, so it must
know the count before any client code runs: it reads the class-level
`startup_candle_count = <int>` of the strategy class, or of a base class defined in the same
file, and otherwise freqtrade's default of 0. The job container checks that freqtrade used
this count; a count computed at run time is refused there with a clear message.
"""

from __future__ import annotations

import ast

ATTRIBUTE = "startup_candle_count"
# freqtrade's IStrategy.startup_candle_count.
DEFAULT = 0
# A class body that never binds the attribute.
_UNSET = object()


def declared_startup_candles(source: str, strategy_name: str) -> int:
    """The count a plain integer literal on the class (or an in-file base) declares, else 0.

    A value that is not a literal (an expression, a property) reads as undeclared here."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return DEFAULT
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    seen: set[str] = set()

    def lookup(name: str) -> object:
        node = classes.get(name)
        if node is None or name in seen:
            return _UNSET
        seen.add(name)
        found = _assigned(node)
        # Bases in order, like Python's attribute lookup for single-file hierarchies.
        for base in node.bases:
            if found is not _UNSET:
                break
            if isinstance(base, ast.Name):
                found = lookup(base.id)
        return found

    count = lookup(strategy_name)
    return count if isinstance(count, int) else DEFAULT


def _assigned(node: ast.ClassDef) -> object:
    """The last class-level binding of the attribute: its int value, None when it is bound to
    anything but a non-negative int literal, `_UNSET` when the class body never binds it."""
    found: object = _UNSET
    for statement in node.body:
        if isinstance(statement, ast.Assign):
            targets = statement.targets
            value: ast.expr | None = statement.value
        elif isinstance(statement, ast.AnnAssign):
            targets, value = [statement.target], statement.value
        elif isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if statement.name == ATTRIBUTE:
                found = None
            continue
        else:
            continue
        if any(isinstance(target, ast.Name) and target.id == ATTRIBUTE for target in targets):
            found = _int_literal(value)
    return found


def _int_literal(value: ast.expr | None) -> int | None:
    if (
        isinstance(value, ast.Constant)
        and type(value.value) is int  # True is an int too, but not a count
        and value.value >= 0
    ):
        return value.value
    return None
