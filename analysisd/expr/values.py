"""Operations on expr-lang values, with Go's typing: int vs float64, nil, arrays, maps.

Python stands in for Go: int is Go int (wrapped to 64 bits), float is float64, str, bool,
None is nil, list/tuple are arrays, Mapping is map[string]any.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from analysisd.expr.errors import ExprEvalError, ExprTypeError
from providers.gocompat import format_float, go_pow, sprint

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1


def wrap_int(value: int) -> int:
    """Go int64 arithmetic wraps around instead of growing."""
    if INT64_MIN <= value <= INT64_MAX:
        return value
    return ((value - INT64_MIN) % (1 << 64)) + INT64_MIN


def is_int(value: Any) -> bool:
    return type(value) is int


def is_number(value: Any) -> bool:
    kind = type(value)
    if kind is int or kind is float:
        return True
    # float subclasses (numpy.float64 from a provider) count too; bool never does.
    return isinstance(value, float)


def is_array(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def go_type(value: Any) -> str:
    """The Go type name expr-lang would print for this value."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if is_array(value):
        return "[]interface {}"
    if isinstance(value, Mapping):
        return "map[string]interface {}"
    return type(value).__name__


def mismatch(op: str, left: Any, right: Any) -> ExprTypeError:
    return ExprTypeError(
        f"invalid operation: {op} (mismatched types {go_type(left)} and {go_type(right)})"
    )


def equal(left: Any, right: Any) -> bool:
    """expr-lang's runtime.Equal: an int meets a float as float64; arrays element by element
    with Equal; anything else (maps) reflect.DeepEqual."""
    if is_number(left) and is_number(right):
        if type(left) is not type(right):
            return float(left) == float(right)
        return bool(left == right)
    if left is None or right is None:
        return left is None and right is None
    if is_array(left) and is_array(right):
        return len(left) == len(right) and all(
            equal(a, b) for a, b in zip(left, right, strict=True)
        )
    return deep_equal(left, right)


def deep_equal(left: Any, right: Any) -> bool:
    """Go's reflect.DeepEqual: same types all the way down (1 and 1.0 differ; NaN != NaN)."""
    if is_array(left) and is_array(right):
        return len(left) == len(right) and all(
            deep_equal(a, b) for a, b in zip(left, right, strict=True)
        )
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        if left.keys() != right.keys():
            return False
        return all(deep_equal(left[key], right[key]) for key in left)
    if type(left) is not type(right):
        return False
    return bool(left == right)


def less(op: str, left: Any, right: Any) -> bool:
    """Ordering: numbers (NaN compares false) and strings; anything else is a type error."""
    if is_number(left) and is_number(right):
        if type(left) is not type(right):  # Go compares int with float64 as float64
            left, right = float(left), float(right)
        if op == "<":
            return bool(left < right)
        if op == ">":
            return bool(left > right)
        if op == "<=":
            return bool(left <= right)
        return bool(left >= right)
    if isinstance(left, str) and isinstance(right, str):
        if op == "<":
            return left < right
        if op == ">":
            return left > right
        if op == "<=":
            return left <= right
        return left >= right
    raise mismatch(op, left, right)


def _numbers(op: str, left: Any, right: Any) -> None:
    if not (is_number(left) and is_number(right)):
        raise mismatch(op, left, right)


def add(left: Any, right: Any) -> Any:
    if is_int(left) and is_int(right):
        return wrap_int(left + right)
    if is_number(left) and is_number(right):
        return float(left) + float(right)
    if isinstance(left, str) and isinstance(right, str):
        return left + right
    raise mismatch("+", left, right)


def subtract(left: Any, right: Any) -> Any:
    _numbers("-", left, right)
    if is_int(left) and is_int(right):
        return wrap_int(left - right)
    return float(left) - float(right)


def multiply(left: Any, right: Any) -> Any:
    _numbers("*", left, right)
    if is_int(left) and is_int(right):
        return wrap_int(left * right)
    return float(left) * float(right)


def divide(left: Any, right: Any) -> float:
    """`/` always yields float64, as in expr-lang; division by zero follows IEEE 754."""
    _numbers("/", left, right)
    numerator, denominator = float(left), float(right)
    if denominator == 0.0:
        if numerator == 0.0 or math.isnan(numerator):
            return math.nan
        negative = (numerator < 0) != (math.copysign(1.0, denominator) < 0)
        return -math.inf if negative else math.inf
    return numerator / denominator


def modulo(left: Any, right: Any) -> int:
    if not (is_int(left) and is_int(right)):
        raise mismatch("%", left, right)
    if right == 0:
        raise ExprEvalError("runtime error: integer divide by zero")
    # Go's % truncates toward zero; Python's floors.
    return int(math.fmod(left, right)) if abs(left) < 2**53 else left - right * int(left / right)


def power(left: Any, right: Any) -> float:
    """`**` / `^` is Go's math.Pow (always float64)."""
    if not (is_number(left) and is_number(right)):
        raise mismatch("**", left, right)
    return go_pow(float(left), float(right))


def negate(value: Any) -> Any:
    if is_int(value):
        return wrap_int(-value)
    if isinstance(value, float):
        return -value
    raise ExprTypeError(f"invalid operation: - {go_type(value)}")


def plus(value: Any) -> Any:
    """Unary `+` compiles to nothing in expr-lang: the value passes through unchecked."""
    return value


def truth(op: str, value: Any) -> bool:
    if type(value) is bool:
        return value
    raise ExprTypeError(f"invalid operation: {op} (mismatched type {go_type(value)})")


def to_index(key: Any, what: str) -> int:
    """runtime.ToInt: ints as they are, floats truncated toward zero."""
    if is_int(key):
        return int(key)
    if isinstance(key, float) and math.isfinite(key):
        return int(key)
    raise ExprTypeError(f"invalid operation: int({go_type(key)}) in {what}")


class _IntKey(int):
    """An int key of a Go map[any]: never the same key as a float64 or a bool."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return type(other) is _IntKey and int(self) == int(other)

    def __hash__(self) -> int:
        return hash(("int", int(self)))


class _FloatKey(float):
    """A float64 key of a Go map[any]: never the same key as an int or a bool."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return type(other) is _FloatKey and float(self) == float(other)

    def __hash__(self) -> int:
        return hash(("float64", float(self)))


def go_key(key: Any) -> Any:
    """A key as a Go map[any] tells keys apart (1, 1.0 and true are three keys)."""
    if type(key) is int:
        return _IntKey(key)
    if type(key) is float:
        return _FloatKey(key)
    return key


class GoAnyMap(dict[Any, Any]):
    """A Go map[any]... (groupBy's result): keys told apart by Go type, see go_key."""


def fetch(container: Any, key: Any, *, optional: bool = False) -> Any:
    """`a.b` / `a[b]`: map keys (missing is nil), array indexes (negative too), string bytes."""
    if container is None:
        if optional:
            return None
        raise ExprEvalError(f"cannot fetch {format_go(key)} from <nil>")
    if isinstance(container, Mapping):
        if isinstance(container, GoAnyMap):
            return container.get(go_key(key))
        if not isinstance(key, str) and all(isinstance(k, str) for k in container):
            raise ExprTypeError(f"cannot use {go_type(key)} as map[string]interface {{}} key")
        return container.get(key)
    if is_array(container) or isinstance(container, str):
        if isinstance(key, str):
            raise ExprTypeError(f"cannot fetch {key} from {go_type(container)}")
        items = container.encode("utf-8") if isinstance(container, str) else container
        position = to_index(key, "index")
        index = position + len(items) if position < 0 else position
        if not 0 <= index < len(items):
            raise ExprEvalError(f"index out of range: {index} (array length is {len(items)})")
        return items[index]  # a string yields a byte (uint8), as in Go
    raise ExprTypeError(f"cannot fetch {format_go(key)} from {go_type(container)}")


def slice_of(container: Any, start: Any, stop: Any) -> Any:
    """`a[i:j]`: bounds are clamped like expr-lang's runtime.Slice."""
    if not (is_array(container) or isinstance(container, str)):
        raise ExprTypeError(f"cannot slice {go_type(container)}")
    if isinstance(container, str):
        # reflect's Slice of a Go string cuts bytes, not characters; a cut inside a
        # character keeps its bytes (invalid UTF-8, as Go keeps them) as surrogate escapes.
        raw = container.encode("utf-8", "surrogateescape")
        lo, hi = _bounds(len(raw), start, stop)
        return raw[lo:hi].decode("utf-8", "surrogateescape")
    lo, hi = _bounds(len(container), start, stop)
    part = container[lo:hi]
    return list(part) if isinstance(part, tuple) else part


def _bounds(size: int, start: Any, stop: Any) -> tuple[int, int]:
    lo = 0 if start is None else to_index(start, "slice")
    hi = size if stop is None else to_index(stop, "slice")
    lo = max(lo + size if lo < 0 else lo, 0)
    hi = max(min(hi + size if hi < 0 else hi, size), 0)
    return min(lo, hi), hi


def contained(needle: Any, haystack: Any) -> bool:
    """`x in y`: array membership by equality, map key presence."""
    if is_array(haystack):
        return any(equal(needle, item) for item in haystack)
    if isinstance(haystack, Mapping):
        if isinstance(haystack, GoAnyMap):
            return go_key(needle) in haystack
        if needle is None:
            needle = ""  # runtime.In looks nil up as the key type's zero value
        elif not isinstance(needle, str):
            # reflect's MapIndex panics on a key of another type
            raise ExprTypeError(
                f"reflect.Value.MapIndex: value of type {go_type(needle)} is not assignable "
                "to type string"
            )
        return needle in haystack
    if haystack is None:
        return False
    raise ExprTypeError(f'operator "in" not defined on {go_type(haystack)}')


def format_go(value: Any) -> str:
    """Go's fmt %v of a value (what expr-lang's string() returns)."""
    return sprint(value)
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, str):
        return value
    if is_array(value):
        return "[" + " ".join(format_go(item) for item in value) + "]"
    if isinstance(value, Mapping):
        items = sorted(value.items(), key=lambda item: str(item[0]))
        return "map[" + " ".join(f"{key}:{format_go(item)}" for key, item in items) + "]"
    return str(value)
