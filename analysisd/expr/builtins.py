"""Built-in functions: the cheap expr-lang ones plus Argo's asInt, asFloat, isNaN, isInf, ...


Each takes the evaluation environment and the evaluated arguments (isNil and default
look at the whole `result`, exactly as Argo's helpers do, whatever argument they are given).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from analysisd.expr.errors import ExprEvalError, ExprTypeError
from analysisd.expr.more_builtins import MORE_FUNCTIONS
from analysisd.expr.strings import STRING_FUNCTIONS, str_arg
from analysisd.expr.values import (
    fetch,
    format_go,
    go_type,
    is_array,
    is_int,
    is_number,
    less,
    wrap_int,
)
from providers.gocompat import (
    GoError,
    float_to_int64,
    go_round,
)
from providers.gocompat import (
    parse_float as go_parse_float,
)
from providers.gocompat import (
    parse_int as go_parse_int,
)

Impl = Callable[[Mapping[str, Any], Sequence[Any]], Any]


@dataclass(frozen=True, slots=True)
class Builtin:
    impl: Impl
    min_args: int
    max_args: int
    returns: str  # static type: int, float, string, bool, array, map or any


def parse_int(text: str) -> int:
    try:
        return go_parse_int(text)
    except GoError as exc:
        raise ExprEvalError(str(exc)) from None


def parse_float(text: str) -> float:
    try:
        return go_parse_float(text)
    except GoError as exc:
        raise ExprEvalError(str(exc)) from None


def _float_arg(name: str, value: Any) -> float:
    if is_number(value):
        return float(value)
    raise ExprTypeError(f"{name}: cannot use {go_type(value)} as float64")


def _array_arg(name: str, value: Any) -> Sequence[Any]:
    if is_array(value):
        return value  # type: ignore[no-any-return]
    raise ExprTypeError(f"{name}: expected array, got {go_type(value)}")


def as_int(env: Mapping[str, Any], args: Sequence[Any]) -> int:
    value = args[0]
    if isinstance(value, bool) or value is None or not (is_number(value) or isinstance(value, str)):
        raise ExprEvalError(f"asInt() not supported on {go_type(value)} {format_go(value)}")
    if isinstance(value, str):
        return parse_int(value)
    if isinstance(value, float):
        return float_to_int64(value)  # int64(f): truncation; amd64 gives MinInt64 out of range
    return int(value)


def as_float(env: Mapping[str, Any], args: Sequence[Any]) -> float:
    value = args[0]
    if isinstance(value, str):
        return parse_float(value)
    if is_number(value):
        return float(value)
    raise ExprEvalError(f"asFloat() not supported on {go_type(value)} {format_go(value)}")


def _result(env: Mapping[str, Any]) -> Any:
    return env.get("result")


def is_nil(env: Mapping[str, Any], args: Sequence[Any]) -> bool:
    # Argo's isNil ignores its argument and asks whether the whole result is nil.
    result = _result(env)
    return result is None


def default(env: Mapping[str, Any], args: Sequence[Any]) -> Any:
    # Argo's default ignores its first argument: the whole result, or the default if nil.
    result = _result(env)
    return args[1] if result is None else result


def is_nan(env: Mapping[str, Any], args: Sequence[Any]) -> bool:
    return math.isnan(_float_arg("isNaN", args[0]))


def is_inf(env: Mapping[str, Any], args: Sequence[Any]) -> bool:
    return math.isinf(_float_arg("isInf", args[0]))


def length(env: Mapping[str, Any], args: Sequence[Any]) -> int:
    value = args[0]
    if isinstance(value, str):
        return len(value)  # expr-lang's len counts runes (utf8.RuneCountInString)
    if is_array(value) or isinstance(value, Mapping):
        return len(value)
    raise ExprTypeError(f"invalid argument for len (type {go_type(value)})")


def absolute(env: Mapping[str, Any], args: Sequence[Any]) -> Any:
    value = args[0]
    if is_int(value):
        return wrap_int(-value) if value < 0 else value
    if is_number(value):
        return -value if value < 0 else value  # keeps -0, as expr-lang's Abs does
    raise ExprTypeError(f"invalid argument for abs (type {go_type(value)})")


def _flatten(name: str, args: Sequence[Any]) -> list[Any]:
    """Numbers from the arguments, descending into arrays (expr-lang's aggregate helpers)."""
    numbers: list[Any] = []
    pending = list(reversed(args))
    while pending:
        item = pending.pop()
        if is_array(item):
            pending.extend(reversed(item))
        elif is_number(item):
            numbers.append(item)
        else:
            raise ExprTypeError(f"invalid argument for {name} (type {go_type(item)})")
    return numbers


def _extreme(name: str, op: str) -> Impl:
    def pick(env: Mapping[str, Any], args: Sequence[Any]) -> Any:
        if len(args) == 1 and not (is_array(args[0]) or is_number(args[0])):
            return args[0]  # expr-lang hands a lone non-number back unchanged
        best: Any = None
        for item in _flatten(name, args):
            if best is None or less(op, item, best):
                best = item
        return best  # nil for an empty array

    return pick


def _mean_parts(value: Any) -> tuple[float, int]:
    """builtin mean's helper: a float64 running total, arrays summed first, left to right."""
    if is_array(value):
        total, count = 0.0, 0
        for item in value:
            part, size = _mean_parts(item)
            total += part
            count += size
        return total, count
    if is_number(value):
        return float(value), 1
    raise ExprTypeError(f"invalid argument for mean (type {go_type(value)})")


def mean(env: Mapping[str, Any], args: Sequence[Any]) -> float:
    total, count = 0.0, 0
    for arg in args:
        part, size = _mean_parts(arg)
        total += part
        count += size
    return total / count if count else 0.0


def _nan_first(value: float) -> tuple[bool, float]:
    # sort.Float64s orders NaN before every number
    return (not math.isnan(value), 0.0 if math.isnan(value) else value)


def median(env: Mapping[str, Any], args: Sequence[Any]) -> float:
    items = sorted((float(item) for item in _flatten("median", args)), key=_nan_first)
    if not items:
        return 0.0
    middle = len(items) // 2
    if len(items) % 2:
        return items[middle]
    return (items[middle - 1] + items[middle]) / 2


def to_int(env: Mapping[str, Any], args: Sequence[Any]) -> int:
    value = args[0]
    if isinstance(value, str):
        try:
            return go_parse_int(value, func="Atoi")
        except GoError:
            raise ExprEvalError(f"invalid operation: int({value})") from None
    if isinstance(value, float):
        return float_to_int64(value)
    if is_number(value):
        return int(value)
    raise ExprTypeError(f"invalid operation: int({go_type(value)})")


def to_float(env: Mapping[str, Any], args: Sequence[Any]) -> float:
    value = args[0]
    if isinstance(value, str):
        try:
            return parse_float(value)
        except ExprEvalError:
            raise ExprEvalError(f"invalid operation: float({value})") from None
    if is_number(value):
        return float(value)
    raise ExprTypeError(f"invalid operation: float({go_type(value)})")


def _rounding(name: str, fn: Callable[[float], float]) -> Impl:
    def apply(env: Mapping[str, Any], args: Sequence[Any]) -> float:
        value = _float_arg(name, args[0])
        if not math.isfinite(value):
            return value
        rounded = float(fn(value))
        # math.Ceil/Floor keep the sign of zero: ceil(-0.5) is -0
        return math.copysign(rounded, value) if rounded == 0 else rounded

    return apply


def get(env: Mapping[str, Any], args: Sequence[Any]) -> Any:
    try:
        return fetch(args[0], args[1])
    except ExprEvalError:
        return None  # get() never fails: a missing key or index is nil


def from_json(env: Mapping[str, Any], args: Sequence[Any]) -> Any:
    try:
        # Go decodes every JSON number into float64.
        return json.loads(str_arg("fromJSON", args[0]), parse_int=float)
    except ValueError as exc:
        raise ExprEvalError(f"fromJSON: {exc}") from None


def _map_arg(name: str, value: Any) -> Mapping[str, Any]:
    if isinstance(value, Mapping):
        return value
    raise ExprTypeError(f"{name}: expected map, got {go_type(value)}")


def keys(env: Mapping[str, Any], args: Sequence[Any]) -> list[Any]:
    return sorted(_map_arg("keys", args[0]))


def values(env: Mapping[str, Any], args: Sequence[Any]) -> list[Any]:
    mapping = _map_arg("values", args[0])
    return [mapping[key] for key in sorted(mapping)]


def first(env: Mapping[str, Any], args: Sequence[Any]) -> Any:
    return get(env, (args[0], 0))


def last(env: Mapping[str, Any], args: Sequence[Any]) -> Any:
    return get(env, (args[0], -1))


def reverse(env: Mapping[str, Any], args: Sequence[Any]) -> list[Any]:
    return list(reversed(_array_arg("reverse", args[0])))


def type_name(env: Mapping[str, Any], args: Sequence[Any]) -> str:
    value = args[0]
    names = {"<nil>": "nil", "float64": "float", "[]interface {}": "array"}
    return names.get(go_type(value), "map" if isinstance(value, Mapping) else go_type(value))


BUILTINS: Mapping[str, Builtin] = {
    "asInt": Builtin(as_int, 1, 1, "int"),
    "asFloat": Builtin(as_float, 1, 1, "float"),
    "isNaN": Builtin(is_nan, 1, 1, "bool"),
    "isInf": Builtin(is_inf, 1, 1, "bool"),
    "isNil": Builtin(is_nil, 1, 1, "bool"),
    "default": Builtin(default, 2, 2, "any"),
    "len": Builtin(length, 1, 1, "int"),
    "abs": Builtin(absolute, 1, 1, "any"),
    "max": Builtin(_extreme("max", ">"), 1, 1 << 16, "any"),
    "min": Builtin(_extreme("min", "<"), 1, 1 << 16, "any"),
    "mean": Builtin(mean, 1, 1 << 16, "float"),
    "median": Builtin(median, 1, 1 << 16, "float"),
    "int": Builtin(to_int, 1, 1, "int"),
    "float": Builtin(to_float, 1, 1, "float"),
    "string": Builtin(lambda env, args: format_go(args[0]), 1, 1, "string"),
    "ceil": Builtin(_rounding("ceil", math.ceil), 1, 1, "float"),
    "floor": Builtin(_rounding("floor", math.floor), 1, 1, "float"),
    "round": Builtin(_rounding("round", go_round), 1, 1, "float"),
    "get": Builtin(get, 2, 2, "any"),
    "fromJSON": Builtin(from_json, 1, 1, "any"),
    "keys": Builtin(keys, 1, 1, "array"),
    "values": Builtin(values, 1, 1, "array"),
    "first": Builtin(first, 1, 1, "any"),
    "last": Builtin(last, 1, 1, "any"),
    "reverse": Builtin(reverse, 1, 1, "array"),
    "type": Builtin(type_name, 1, 1, "string"),
    **{
        name: Builtin(impl, low, high, returns)
        for name, (impl, low, high, returns) in STRING_FUNCTIONS.items()
    },
    **{
        name: Builtin(impl, low, high, returns)
        for name, (impl, low, high, returns) in MORE_FUNCTIONS.items()
    },
}
