"""Operator tables: arithmetic, string tests and `matches` (with a backtracking guard).

Go's regular expressions (RE2) run in linear time; Python's `re` backtracks. So patterns
whose running time can explode (a repeated group that itself repeats or alternates, like
`(a+)+` or `(a|aa)*`) are refused instead of being allowed to hang the daemon.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from analysisd.expr import values as v
from analysisd.expr.errors import ExprEvalError

_REPEAT_AFTER = re.compile(r"[*+]|\{\d*,\d*\}|\{\d{2,}\}")


def explosive(pattern: str) -> bool:
    """True if a repeated group contains a repetition or an alternation."""
    stack: list[bool] = []  # per open group: does it contain + * {n,} or |
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            index += 2
            continue
        if char == "[":  # a character class: skip to its end
            end = index + 1
            if end < len(pattern) and pattern[end] == "^":
                end += 1
            if end < len(pattern) and pattern[end] == "]":
                end += 1
            while end < len(pattern) and pattern[end] != "]":
                end += 2 if pattern[end] == "\\" else 1
            index = end + 1
            continue
        if char == "(":
            stack.append(False)
        elif char == ")" and stack:
            risky = stack.pop()
            repeated = _REPEAT_AFTER.match(pattern, index + 1) is not None
            if risky and repeated:
                return True
            if stack and (risky or repeated):
                stack[-1] = True
        elif stack and (char in "*+|" or _REPEAT_AFTER.match(pattern, index)):
            stack[-1] = True
        index += 1
    return False


def _matches(op: str, text: Any, pattern: Any) -> bool:
    if not (isinstance(text, str) and isinstance(pattern, str)):
        raise v.mismatch(op, text, pattern)
    if explosive(pattern):
        raise ExprEvalError(
            f"regexp {pattern!r} is refused: a repeated group that repeats or alternates "
            "can backtrack for a very long time"
        )
    try:
        return _regex(pattern).search(text) is not None
    except re.error as exc:
        raise ExprEvalError(f"error parsing regexp: {exc}") from None


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _string_test(method: Callable[[str, str], bool]) -> Callable[[str, Any, Any], bool]:
    def test(op: str, left: Any, right: Any) -> bool:
        if not (isinstance(left, str) and isinstance(right, str)):
            raise v.mismatch(op, left, right)
        return method(left, right)

    return test


STRING_TESTS: Mapping[str, Callable[[str, Any, Any], bool]] = {
    "matches": _matches,
    "contains": _string_test(lambda left, right: right in left),
    "startsWith": _string_test(str.startswith),
    "endsWith": _string_test(str.endswith),
}

ARITH: Mapping[str, Callable[[Any, Any], Any]] = {
    "+": v.add,
    "-": v.subtract,
    "*": v.multiply,
    "/": v.divide,
    "%": v.modulo,
    "**": v.power,
    "^": v.power,
}


def static_arith_type(op: str, left: str, right: str) -> str:
    if op in ("/", "**", "^"):
        return "float"
    if op == "%":
        return "int"
    if left == right:
        return left
    return "float" if {left, right} <= {"int", "float"} else "any"
