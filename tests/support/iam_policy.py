"""A small IAM policy evaluator, for the tests of the ECS templates' roles.

It follows AWS's documented evaluation logic for the parts fta's policies use:

- an explicit Deny of any matching statement wins, then an Allow, else the implicit deny;
- ``Action``/``NotAction`` match case-insensitively, with ``*`` and ``?`` wildcards;
- ``Resource``/``NotResource`` (and ``ArnEquals``/``ArnLike``) match case-sensitively, segment
  by segment: an ARN's first five colons delimit its segments and a wildcard never spans one
  (the sixth, the resource part, may hold colons and slashes of its own);
- every operator of a ``Condition`` and every key under it must hold (AND); the values listed
  for one key are alternatives (OR); condition key names are case-insensitive;
- a key missing from the request makes a positive operator false and a negated one
  (``StringNotEquals``, ``ArnNotLike``…) true, as AWS documents; with ``…IfExists`` a
  missing key makes the condition true.

Principals, policy variables, set operators (``ForAnyValue``/``ForAllValues``), numeric and
date operators are not implemented: a policy that uses one raises ``UnsupportedPolicy``
rather than being judged wrongly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from typing import Any

Statement = Mapping[str, Any]


class UnsupportedPolicy(ValueError):
    """The policy uses something this evaluator does not implement."""


class Decision(Enum):
    ALLOW = "allow"
    EXPLICIT_DENY = "explicit deny"
    IMPLICIT_DENY = "implicit deny"


@dataclass(frozen=True)
class Request:
    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)


@lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    parts = []
    for char in pattern:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def glob_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """``*`` matches any run of characters, ``?`` exactly one."""
    return _glob(pattern, ignore_case).fullmatch(value) is not None


def arn_match(pattern: str, arn: str) -> bool:
    """An ARN pattern against an ARN, segment by segment (``*`` alone matches everything)."""
    if pattern == "*":
        return True
    pattern_parts = pattern.split(":", 5)
    arn_parts = arn.split(":", 5)
    if len(pattern_parts) != 6 or len(arn_parts) != 6:
        if pattern.startswith("arn:") or arn.startswith("arn:"):
            # An ARN of fewer than six segments is malformed: it matches nothing.
            return False
        return glob_match(pattern, arn)
    return all(glob_match(p, a) for p, a in zip(pattern_parts, arn_parts, strict=True))


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence):
        return list(value)
    raise UnsupportedPolicy(f"expected a string or a list, got {value!r}")


def _check_no_variables(values: Iterable[str]) -> None:
    for value in values:
        if "${" in value:
            raise UnsupportedPolicy(f"policy variables are not implemented: {value!r}")


def _action_matches(statement: Statement, action: str) -> bool:
    if ("Action" in statement) == ("NotAction" in statement):
        raise UnsupportedPolicy("a statement needs exactly one of Action and NotAction")
    key = "Action" if "Action" in statement else "NotAction"
    patterns = _as_list(statement[key])
    hit = any(glob_match(p, action, ignore_case=True) for p in patterns)
    return hit if key == "Action" else not hit


def _resource_matches(statement: Statement, resource: str) -> bool:
    if ("Resource" in statement) == ("NotResource" in statement):
        raise UnsupportedPolicy("a statement needs exactly one of Resource and NotResource")
    key = "Resource" if "Resource" in statement else "NotResource"
    patterns = _as_list(statement[key])
    _check_no_variables(patterns)
    hit = any(arn_match(p, resource) for p in patterns)
    return hit if key == "Resource" else not hit


def _string_equals(expected: str, actual: str) -> bool:
    return expected == actual


def _string_equals_ignore_case(expected: str, actual: str) -> bool:
    return expected.lower() == actual.lower()


def _string_like(expected: str, actual: str) -> bool:
    return glob_match(expected, actual)


def _bool(expected: str, actual: str) -> bool:
    return str(expected).lower() == str(actual).lower()


# operator → (comparison, negated)
_OPERATORS = {
    "StringEquals": (_string_equals, False),
    "StringNotEquals": (_string_equals, True),
    "StringEqualsIgnoreCase": (_string_equals_ignore_case, False),
    "StringNotEqualsIgnoreCase": (_string_equals_ignore_case, True),
    "StringLike": (_string_like, False),
    "StringNotLike": (_string_like, True),
    "ArnEquals": (arn_match, False),
    "ArnLike": (arn_match, False),
    "ArnNotEquals": (arn_match, True),
    "ArnNotLike": (arn_match, True),
    "Bool": (_bool, False),
}


def _lookup(context: Mapping[str, str], key: str) -> str | None:
    wanted = key.lower()
    for name, value in context.items():
        if name.lower() == wanted:
            if not isinstance(value, str):
                raise UnsupportedPolicy(f"multi-valued key {name!r} needs a set operator")
            return value
    return None


def condition_holds(condition: Mapping[str, Mapping[str, Any]], context: Mapping[str, str]) -> bool:
    """Every operator and every key must hold; a key's listed values are alternatives."""
    for operator, block in condition.items():
        if operator.startswith(("ForAnyValue:", "ForAllValues:")):
            raise UnsupportedPolicy(f"set operators are not implemented: {operator}")
        if_exists = operator.endswith("IfExists")
        base = operator.removesuffix("IfExists")
        if base not in _OPERATORS:
            raise UnsupportedPolicy(f"condition operator not implemented: {operator}")
        compare, negated = _OPERATORS[base]
        for key, expected in block.items():
            values = [str(v) for v in _as_list(expected)]
            _check_no_variables(values)
            actual = _lookup(context, key)
            if actual is None:
                if if_exists or negated:
                    continue
                return False
            matched = any(compare(value, actual) for value in values)
            if matched == negated:
                return False
    return True


def statement_applies(statement: Statement, request: Request) -> bool:
    if statement.get("Effect") not in ("Allow", "Deny"):
        raise UnsupportedPolicy(f"Effect must be Allow or Deny: {statement!r}")
    return (
        _action_matches(statement, request.action)
        and _resource_matches(statement, request.resource)
        and condition_holds(statement.get("Condition", {}), request.context)
    )


def evaluate(statements: Iterable[Statement], request: Request) -> Decision:
    allowed = False
    for statement in statements:
        if statement_applies(statement, request):
            if statement["Effect"] == "Deny":
                return Decision.EXPLICIT_DENY
            allowed = True
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY


def is_allowed(
    statements: Iterable[Statement],
    action: str,
    resource: str,
    context: Mapping[str, str] | None = None,
) -> bool:
    return evaluate(statements, Request(action, resource, dict(context or {}))) is Decision.ALLOW
