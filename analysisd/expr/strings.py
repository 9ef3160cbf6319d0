"""String functions of expr-lang: trim, split, replace, join, case, prefixes, search."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from analysisd.expr.errors import ExprTypeError
from analysisd.expr.values import go_type, is_array, is_int

Impl = Callable[[Mapping[str, Any], Sequence[Any]], Any]


def str_arg(name: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    raise ExprTypeError(f"{name}: expected string, got {go_type(value)}")


def _array_arg(name: str, value: Any) -> Sequence[Any]:
    if is_array(value):
        return value  # type: ignore[no-any-return]
    raise ExprTypeError(f"{name}: expected array, got {go_type(value)}")


def _strings(name: str, fn: Callable[[str], Any]) -> Impl:
    def apply(env: Mapping[str, Any], args: Sequence[Any]) -> Any:
        return fn(str_arg(name, args[0]))

    return apply


def trim(env: Mapping[str, Any], args: Sequence[Any]) -> str:
    text = str_arg("trim", args[0])
    return text.strip() if len(args) == 1 else text.strip(str_arg("trim", args[1]))


def split(env: Mapping[str, Any], args: Sequence[Any]) -> list[str]:
    text, sep = str_arg("split", args[0]), str_arg("split", args[1])
    limit = -1
    if len(args) == 3:
        if not is_int(args[2]):
            raise ExprTypeError(f"split: expected int, got {go_type(args[2])}")
        limit = args[2]
    if limit == 0:
        return []
    if sep == "":
        parts = list(text)
        if 0 < limit < len(parts):
            parts = [*parts[: limit - 1], "".join(parts[limit - 1 :])]
        return parts
    return text.split(sep) if limit < 0 else text.split(sep, limit - 1)


def replace(env: Mapping[str, Any], args: Sequence[Any]) -> str:
    text, old, new = (str_arg("replace", arg) for arg in args[:3])
    count = -1
    if len(args) == 4:
        if not is_int(args[3]):
            raise ExprTypeError(f"replace: expected int, got {go_type(args[3])}")
        count = args[3]
    return text.replace(old, new, count)


def join(env: Mapping[str, Any], args: Sequence[Any]) -> str:
    items = _array_arg("join", args[0])
    sep = str_arg("join", args[1]) if len(args) > 1 else ""
    return sep.join(str_arg("join", item) for item in items)


def index_of(env: Mapping[str, Any], args: Sequence[Any]) -> int:
    return str_arg("indexOf", args[0]).find(str_arg("indexOf", args[1]))


# name -> (implementation, fewest arguments, most arguments, static result type)
STRING_FUNCTIONS: Mapping[str, tuple[Impl, int, int, str]] = {
    "trim": (trim, 1, 2, "string"),
    "join": (join, 1, 2, "string"),
    "indexOf": (index_of, 2, 2, "int"),
    "upper": (_strings("upper", str.upper), 1, 1, "string"),
    "lower": (_strings("lower", str.lower), 1, 1, "string"),
    "trimPrefix": (
        lambda env, args: str_arg("trimPrefix", args[0]).removeprefix(
            str_arg("trimPrefix", args[1]) if len(args) > 1 else " "
        ),
        1,
        2,
        "string",
    ),
    "trimSuffix": (
        lambda env, args: str_arg("trimSuffix", args[0]).removesuffix(
            str_arg("trimSuffix", args[1]) if len(args) > 1 else " "
        ),
        1,
        2,
        "string",
    ),
    "split": (split, 2, 3, "array"),
    "replace": (replace, 3, 4, "string"),
    "lastIndexOf": (
        lambda env, args: str_arg("lastIndexOf", args[0]).rfind(str_arg("lastIndexOf", args[1])),
        2,
        2,
        "int",
    ),
    "hasPrefix": (
        lambda env, args: str_arg("hasPrefix", args[0]).startswith(str_arg("hasPrefix", args[1])),
        2,
        2,
        "bool",
    ),
    "hasSuffix": (
        lambda env, args: str_arg("hasSuffix", args[0]).endswith(str_arg("hasSuffix", args[1])),
        2,
        2,
        "bool",
    ),
}
