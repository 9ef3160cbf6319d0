"""Operator tables: arithmetic, string tests and `matches` (Go's RE2, through gocompat)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from analysisd.expr import values as v
from analysisd.expr.errors import ExprEvalError
from providers.gocompat import GoError, regexp_match


def _matches(op: str, text: Any, pattern: Any) -> bool:
    if text is None or pattern is None:
        return False  # vm.go OpMatches / OpMatchesConst: nil on either side is false
    if not (isinstance(text, str) and isinstance(pattern, str)):
        raise v.mismatch(op, text, pattern)
    try:
        return regexp_match(pattern, text)
    except GoError as exc:
        raise ExprEvalError(str(exc)) from None


def _string_test(method: Callable[[str, str], bool]) -> Callable[[str, Any, Any], bool]:
    def test(op: str, left: Any, right: Any) -> bool:
        if left is None or right is None:
            return False  # vm.go: nil on either side is false, not an error
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
