"""The rest of expr-lang v1.17.8's builtins: uniq, toJSON, toPairs, fromPairs, sort, take,
concat, flatten, base64, repeat and the bit functions (builtin/builtin.go)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from analysisd.expr.closures import sort_pairs
from analysisd.expr.errors import ExprEvalError, ExprTypeError
from analysisd.expr.strings import str_arg
from analysisd.expr.values import equal, go_type, is_array, is_int, wrap_int
from providers.gocompat import GoError, json_marshal

Impl = Callable[[Mapping[str, Any], Sequence[Any]], Any]
MAX_STRING = 1_000_000  # repeat's budget, as expr-lang's (n > 1e6 is "memory budget exceeded")


def _array(name: str, value: Any) -> Sequence[Any]:
    if is_array(value):
        return value  # type: ignore[no-any-return]
    raise ExprTypeError(f"cannot {name} {go_type(value)}")


def _int(name: str, value: Any) -> int:
    if is_int(value):
        return int(value)
    raise ExprTypeError(f"invalid argument for {name} (type {go_type(value)})")


def uniq(env: Mapping[str, Any], args: Sequence[Any]) -> list[Any]:
    kept: list[Any] = []
    for item in _array("uniq", args[0]):
        if not any(equal(item, seen) for seen in kept):
            kept.append(item)
    return kept


def _json(value: Any, indent: str, depth: int = 0) -> str:
    """encoding/json.MarshalIndent(value, "", indent): sorted keys, Go float text."""
    try:
        return json_marshal(value, indent)
    except GoError as exc:
        raise ExprEvalError(str(exc)) from None


def to_json(env: Mapping[str, Any], args: Sequence[Any]) -> str:
    return _json(args[0], "  ", 0)


def to_pairs(env: Mapping[str, Any], args: Sequence[Any]) -> list[list[Any]]:
    mapping = args[0]
    if not isinstance(mapping, Mapping):
        raise ExprTypeError(f"cannot transform {go_type(mapping)} to pairs")
    return [[key, mapping[key]] for key in sorted(mapping, key=str)]


def from_pairs(env: Mapping[str, Any], args: Sequence[Any]) -> dict[Any, Any]:
    made: dict[Any, Any] = {}
    for pair in _array("transform to map", args[0]):
        if not (is_array(pair) and len(pair) == 2):
            raise ExprTypeError(f"invalid pair {go_type(pair)}: expected an array of two")
        made[pair[0]] = pair[1]
    return made


def sort_values(env: Mapping[str, Any], args: Sequence[Any]) -> list[Any]:
    items = _array("sort", args[0])
    order = args[1] if len(args) > 1 else "asc"
    if order not in ("asc", "desc"):
        raise ExprEvalError(f"unknown order {order}, use asc or desc")
    return [item for _, item in sort_pairs([(x, x) for x in items], descending=order == "desc")]


def take(env: Mapping[str, Any], args: Sequence[Any]) -> list[Any]:
    items = _array("take from", args[0])
    count = _int("take", args[1])
    return list(items[: max(count, 0)])


def concat(env: Mapping[str, Any], args: Sequence[Any]) -> list[Any]:
    joined: list[Any] = []
    for arg in args:
        joined.extend(_array("concat", arg))
    return joined


def flatten(env: Mapping[str, Any], args: Sequence[Any]) -> list[Any]:
    flat: list[Any] = []
    pending = [iter(_array("flatten", args[0]))]
    while pending:
        for item in pending[-1]:
            if is_array(item):
                pending.append(iter(item))
                break
            flat.append(item)
        else:
            pending.pop()
    return flat


def to_base64(env: Mapping[str, Any], args: Sequence[Any]) -> str:
    return base64.b64encode(str_arg("toBase64", args[0]).encode()).decode("ascii")


def from_base64(env: Mapping[str, Any], args: Sequence[Any]) -> str:
    try:
        raw = base64.b64decode(str_arg("fromBase64", args[0]), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ExprEvalError(f"illegal base64 data: {exc}") from None
    return raw.decode("utf-8", "replace")


def repeat(env: Mapping[str, Any], args: Sequence[Any]) -> str:
    text = str_arg("repeat", args[0])
    count = _int("repeat", args[1])
    if count < 0:
        raise ExprEvalError(f"invalid argument for repeat (expected positive integer, got {count})")
    if count > MAX_STRING or len(text) * count > MAX_STRING:
        raise ExprEvalError("memory budget exceeded")
    return text * count


def _bits(name: str, fn: Callable[[int, int], int]) -> Impl:
    def apply(env: Mapping[str, Any], args: Sequence[Any]) -> int:
        return wrap_int(fn(_int(name, args[0]), _int(name, args[1])))

    return apply


def _shift(name: str, value: int, count: int) -> int:
    if count < 0:
        raise ExprEvalError(f"invalid operation: negative shift count {count}")
    return value


def _shl(value: int, count: int) -> int:
    return 0 if _shift("bitshl", value, count) and count >= 64 else value << min(count, 64)


def _shr(value: int, count: int) -> int:
    return _shift("bitshr", value, count) >> min(count, 64)


def _ushr(value: int, count: int) -> int:
    return (_shift("bitushr", value, count) & 0xFFFFFFFFFFFFFFFF) >> min(count, 64)


# name -> (implementation, fewest arguments, most arguments, static result type)
MORE_FUNCTIONS: Mapping[str, tuple[Impl, int, int, str]] = {
    "uniq": (uniq, 1, 1, "array"),
    "toJSON": (to_json, 1, 1, "string"),
    "toPairs": (to_pairs, 1, 1, "array"),
    "fromPairs": (from_pairs, 1, 1, "map"),
    "sort": (sort_values, 1, 2, "array"),
    "take": (take, 2, 2, "array"),
    "concat": (concat, 1, 1 << 16, "array"),
    "flatten": (flatten, 1, 1, "array"),
    "toBase64": (to_base64, 1, 1, "string"),
    "fromBase64": (from_base64, 1, 1, "string"),
    "repeat": (repeat, 2, 2, "string"),
    "bitnot": (lambda env, args: wrap_int(~_int("bitnot", args[0])), 1, 1, "int"),
    "bitand": (_bits("bitand", lambda a, b: a & b), 2, 2, "int"),
    "bitor": (_bits("bitor", lambda a, b: a | b), 2, 2, "int"),
    "bitxor": (_bits("bitxor", lambda a, b: a ^ b), 2, 2, "int"),
    "bitnand": (_bits("bitnand", lambda a, b: a & ~b), 2, 2, "int"),
    "bitshl": (_bits("bitshl", _shl), 2, 2, "int"),
    "bitshr": (_bits("bitshr", _shr), 2, 2, "int"),
    "bitushr": (_bits("bitushr", _ushr), 2, 2, "int"),
}
