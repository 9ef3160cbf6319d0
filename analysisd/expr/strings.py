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


def _byte_offset(text: str, index: int) -> int:
    """strings.Index counts bytes: the UTF-8 offset of a character index (-1 stays -1)."""
    return index if index <= 0 else len(text[:index].encode("utf-8"))


def index_of(env: Mapping[str, Any], args: Sequence[Any]) -> int:
    text = str_arg("indexOf", args[0])
    return _byte_offset(text, text.find(str_arg("indexOf", args[1])))


def last_index_of(env: Mapping[str, Any], args: Sequence[Any]) -> int:
    text = str_arg("lastIndexOf", args[0])
    return _byte_offset(text, text.rfind(str_arg("lastIndexOf", args[1])))


def _per_rune(method: Callable[[str], str]) -> Callable[[str], str]:
    """strings.ToUpper/ToLower map each rune alone (simple case mapping): a rune whose full
    mapping is several characters (ß -> SS, İ -> i̇) keeps Go's single-rune answer."""

    def convert(text: str) -> str:
        if text.isascii():
            return method(text)
        out = []
        for char in text:
            mapped = method(char)
            if len(mapped) != 1:
                mapped = _SIMPLE_SPECIAL.get(char, char)
            out.append(mapped)
        return "".join(out)

    return convert


# Runes whose full mapping has several characters but whose simple mapping is one rune.
_SIMPLE_SPECIAL = {"İ": "i"}


def split_after(env: Mapping[str, Any], args: Sequence[Any]) -> list[str]:
    text, sep = str_arg("splitAfter", args[0]), str_arg("splitAfter", args[1])
    limit = -1
    if len(args) == 3:
        if not is_int(args[2]):
            raise ExprTypeError(f"splitAfter: expected int, got {go_type(args[2])}")
        limit = args[2]
    if limit == 0:
        return []
    if sep == "":
        parts = list(text)
        if 0 < limit < len(parts):
            parts = [*parts[: limit - 1], "".join(parts[limit - 1 :])]
        return parts
    pieces = text.split(sep) if limit < 0 else text.split(sep, limit - 1)
    return [piece + sep for piece in pieces[:-1]] + [pieces[-1]]


# name -> (implementation, fewest arguments, most arguments, static result type)
STRING_FUNCTIONS: Mapping[str, tuple[Impl, int, int, str]] = {
    "trim": (trim, 1, 2, "string"),
    "join": (join, 1, 2, "string"),
    "indexOf": (index_of, 2, 2, "int"),
    "upper": (_strings("upper", _per_rune(str.upper)), 1, 1, "string"),
    "lower": (_strings("lower", _per_rune(str.lower)), 1, 1, "string"),
    "splitAfter": (split_after, 2, 3, "array"),
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
    "lastIndexOf": (last_index_of, 2, 2, "int"),
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
