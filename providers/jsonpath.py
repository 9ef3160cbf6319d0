"""Kubernetes (client-go ``util/jsonpath``) compatible JSONPath, as Argo's Web provider uses it.

Supported: text outside braces, ``{.a.b}`` / ``{$.a.b}``, ``[n]``, ``[-1]``,
``[start:end:step]``, ``[*]``, ``.*``, ``..name`` (recursive), unions ``[0,2]``,
``['key']``, ``\\.`` escapes in field names, filters ``[?(@.x==1.0)]`` with
== != < > <= >= and existence ``[?(@.x)]``, and ``{range ...}...{end}``.

Semantics follow client-go with missing keys *not* allowed (Argo's setting):
a missing field is an error ("x is not found"), comparisons between different
kinds are errors ("incompatible types for comparison"), null values are skipped
when descending. Values are plain Python JSON values; the kind of a number is
its Python type (int -> Go int64, float -> Go float64), so a document decoded
with ``parse_int=float`` behaves as Argo (every number a float64) and one decoded
normally behaves as kubectl (integral numbers int64).

`find_results` returns one list of values per template node, like client-go's
FindResults; `render` prints them as ``kubectl -o jsonpath`` does; `go_json`
is Go's ``json.Marshal`` (sorted keys, HTML-safe escapes, Go float format).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from providers.gocompat import format_json, format_v, json_marshal, sprint

__all__ = ["JSONPath", "JSONPathError", "compile_jsonpath", "go_json", "go_print"]


class JSONPathError(ValueError):
    """Parse or evaluation error; str() is client-go's message."""


# -- Go value formatting and comparison -------------------------------------------


class GoUint8(int):
    """A byte of a string, as client-go yields when it descends into a string."""


# Go's float text and json.Marshal live in providers.gocompat (the one copy).
go_float_json = format_json
go_float_print = format_v


def go_json(value: Any) -> str:
    """Go's json.Marshal of a decoded JSON value (map keys sorted, HTML-safe)."""
    return json_marshal(value)


def go_print(value: Any) -> str:
    """fmt.Print of a decoded JSON value (providers.gocompat.sprint)."""
    return sprint(value)


def go_type_name(value: Any) -> str:
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, GoUint8):
        return "uint8"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    return "<nil>"


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, GoUint8):
        return "uint"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    raise ValueError("invalid type for comparison")


def _equal(left: Any, right: Any) -> bool:
    k1, k2 = _kind(left), _kind(right)
    if k1 != k2:
        if {k1, k2} == {"int", "uint"}:
            return bool(int(left) == int(right))
        raise ValueError("incompatible types for comparison")
    return bool(left == right)


def _less(left: Any, right: Any) -> bool:
    k1, k2 = _kind(left), _kind(right)
    if k1 != k2:
        if {k1, k2} == {"int", "uint"}:
            return bool(int(left) < int(right))
        raise ValueError("incompatible types for comparison")
    if k1 == "bool":
        raise ValueError("invalid type for comparison")
    return bool(left < right)


def compare(op: str, left: Any, right: Any) -> bool:
    """Go text/template's eq/ne/lt/le/gt/ge, as client-go's filters use them."""
    if op == "==":
        return _equal(left, right)
    if op == "!=":
        return not _equal(left, right)
    if op == "<":
        return _less(left, right)
    if op == "<=":
        return _less(left, right) or _equal(left, right)
    if op == ">":
        return not (_less(left, right) or _equal(left, right))
    if op == ">=":
        return not _less(left, right)
    raise ValueError(f"unrecognized filter operator {op}")


_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_SIMPLE_ESCAPES.update({"\\": "\\", "'": "'", '"': '"'})


def unquote_extend(text: str) -> str:
    """strconv.Unquote that also accepts single-quoted strings (client-go UnquoteExtend)."""
    if len(text) < 2 or text[0] != text[-1] or text[0] not in "\"'":
        raise ValueError("invalid syntax")
    quote, body = text[0], text[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == quote:
            raise ValueError("invalid syntax")
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        if i + 1 >= len(body):
            raise ValueError("invalid syntax")
        esc = body[i + 1]
        if esc in _SIMPLE_ESCAPES:
            if esc in "'\"" and esc != quote:
                raise ValueError("invalid syntax")
            out.append(_SIMPLE_ESCAPES[esc])
            i += 2
        elif esc in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[esc]
            digits = body[i + 2 : i + 2 + width]
            if len(digits) != width or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise ValueError("invalid syntax")
            out.append(chr(int(digits, 16)))
            i += 2 + width
        elif esc in "01234567":
            digits = body[i + 1 : i + 4]
            if len(digits) != 3 or not all(c in "01234567" for c in digits):
                raise ValueError("invalid syntax")
            out.append(chr(int(digits, 8)))
            i += 4
        else:
            raise ValueError("invalid syntax")
    return "".join(out)


# -- nodes -------------------------------------------------------------------


@dataclass
class _List:
    nodes: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class _Text:
    text: str


@dataclass(frozen=True)
class _Field:
    name: str


@dataclass(frozen=True)
class _Param:
    value: int = 0
    known: bool = False
    derived: bool = False


@dataclass(frozen=True)
class _Array:
    params: tuple[_Param, _Param, _Param]


@dataclass(frozen=True)
class _Filter:
    left: _List
    right: _List
    op: str


@dataclass(frozen=True)
class _Literal:
    value: Any  # int, float or bool


@dataclass(frozen=True)
class _Wildcard:
    pass


@dataclass(frozen=True)
class _Recursive:
    pass


@dataclass(frozen=True)
class _Union:
    lists: tuple[_List, ...]


@dataclass(frozen=True)
class _Identifier:
    name: str


# -- parser (a port of client-go's state machine) ------------------------------

_DICT_KEY = re.compile(r"^'([^']*)'$")
_SLICE = re.compile(r"^(-?[0-9]*)(:-?[0-9]*)?(:-?[0-9]*)?$")
_FILTER = re.compile(r"^([^!<>=]+)([!<>=]+)(.+?)$", re.S)
_TERMINATORS = frozenset(" \t\r\n.,[]$@{}")


def _is_alnum(ch: str) -> bool:
    return ch == "_" or ch.isalpha() or ch.isdigit()


class _Parser:
    def __init__(self, text: str) -> None:
        self.input = text
        self.pos = 0
        self.start = 0
        self.root = _List()

    def consume(self) -> str:
        value = self.input[self.start : self.pos]
        self.start = self.pos
        return value

    def next(self) -> str:
        if self.pos >= len(self.input):
            return ""
        ch = self.input[self.pos]
        self.pos += 1
        return ch

    def peek(self) -> str:
        return self.input[self.pos] if self.pos < len(self.input) else ""

    def parse(self) -> _List:
        self.parse_text()
        return self.root

    def parse_text(self) -> None:
        while True:
            if self.input.startswith("{", self.pos):
                if self.pos > self.start:
                    self.root.nodes.append(_Text(self.consume()))
                self.pos += 1
                self.consume()
                action = _List()
                self.root.nodes.append(action)
                if self.parse_inside(action):
                    continue  # right delimiter reached: back to text
                return
            if self.next() == "":
                break
        if self.pos > self.start:
            self.root.nodes.append(_Text(self.consume()))

    def parse_inside(self, cur: _List) -> bool:
        """Parse one action; True when its closing brace was consumed."""
        while True:
            rest = self.input[self.pos :]
            if rest.startswith("}"):
                self.pos += 1
                self.consume()
                return True
            if rest.startswith("[?("):
                self.parse_filter(cur)
                continue
            if rest.startswith(".."):
                self.parse_recursive(cur)
                continue
            ch = self.next()
            if ch in ("", "\r", "\n"):
                raise JSONPathError("unclosed action")
            if ch in (" ", "@", "$"):
                self.consume()
            elif ch == "[":
                self.parse_array(cur)
            elif ch in ('"', "'"):
                self.parse_quote(cur, ch)
            elif ch == ".":
                self.parse_field(cur)
            elif ch in "+-" or ch.isdigit():
                self.pos -= 1
                self.parse_number(cur)
            elif _is_alnum(ch):
                self.pos -= 1
                self.parse_identifier(cur)
            else:
                raise JSONPathError(f"unrecognized character in action: U+{ord(ch):04X} {ch!r}")

    def parse_identifier(self, cur: _List) -> None:
        while True:
            ch = self.next()
            if ch == "" or ch in _TERMINATORS:
                if ch:
                    self.pos -= 1
                break
        value = self.consume()
        if value in ("true", "false"):
            cur.nodes.append(_Literal(value == "true"))
        else:
            cur.nodes.append(_Identifier(value))

    def parse_recursive(self, cur: _List) -> None:
        if cur.nodes and isinstance(cur.nodes[-1], _Recursive):
            raise JSONPathError("invalid multiple recursive descent")
        self.pos += 2
        self.consume()
        cur.nodes.append(_Recursive())
        if _is_alnum(self.peek()):
            self.parse_field(cur)

    def parse_number(self, cur: _List) -> None:
        if self.peek() in ("+", "-") and self.peek():
            self.next()
        while True:
            ch = self.next()
            if (ch != "." and not ch.isdigit()) or ch == "":
                if ch:
                    self.pos -= 1
                break
        value = self.consume()
        if re.fullmatch(r"[+-]?[0-9]+", value):
            cur.nodes.append(_Literal(int(value)))
            return
        try:
            cur.nodes.append(_Literal(float(value)))
        except ValueError:
            raise JSONPathError(f"cannot parse number {value}") from None

    def parse_array(self, cur: _List) -> None:
        while True:
            ch = self.next()
            if ch in ("", "\n"):
                raise JSONPathError("unterminated array")
            if ch == "]":
                break
        text = self.consume()[1:-1]
        if text == "*":
            text = ":"
        parts = text.split(",")
        if len(parts) > 1:
            lists = tuple(_parse_action(f"[{part.strip(' ')}]") for part in parts)
            cur.nodes.append(_Union(lists))
            return
        key = _DICT_KEY.match(text)
        if key is not None:
            cur.nodes.extend(_parse_action(f".{key.group(1)}").nodes)
            return
        match = _SLICE.match(text)
        if match is None:
            raise JSONPathError(f"invalid array index {text}")
        groups = [match.group(1) or "", match.group(2) or "", match.group(3) or ""]
        params: list[_Param] = []
        for i, raw in enumerate(groups):
            if raw:
                digits = raw[1:] if i > 0 else raw
                if i > 0 and digits == "":
                    params.append(_Param())
                else:
                    try:
                        params.append(_Param(int(digits), known=True))
                    except ValueError:
                        raise JSONPathError(f"array index {digits} is not a number") from None
            elif i == 1:
                params.append(_Param(params[0].value + 1, known=True, derived=True))
            else:
                params.append(_Param())
        cur.nodes.append(_Array((params[0], params[1], params[2])))

    def parse_filter(self, cur: _List) -> None:
        self.pos += 3
        self.consume()
        begin = end = False
        pair = ""
        while True:
            ch = self.next()
            if ch in ("", "\n"):
                raise JSONPathError("unterminated filter")
            if ch in ('"', "'"):
                if not begin:
                    begin, pair = True, ch
                    continue
                if self.input[self.pos - 2] != "\\" and ch == pair:
                    end = True
            elif ch == ")" and begin == end:
                break
        if self.next() != "]":
            raise JSONPathError("unclosed array expect ]")
        text = self.consume()[:-2]
        match = _FILTER.match(text)
        if match is None:
            cur.nodes.append(_Filter(_parse_action(text), _List(), "exists"))
        else:
            left = _parse_action(match.group(1))
            right = _parse_action(match.group(3))
            cur.nodes.append(_Filter(left, right, match.group(2)))

    def parse_quote(self, cur: _List, end: str) -> None:
        while True:
            ch = self.next()
            if ch in ("", "\n"):
                raise JSONPathError("unterminated quoted string")
            if ch == end and self.input[self.pos - 2] != "\\":
                break
        value = self.consume()
        try:
            cur.nodes.append(_Text(unquote_extend(value)))
        except ValueError as exc:
            raise JSONPathError(f"unquote string {value} error {exc}") from None

    def parse_field(self, cur: _List) -> None:
        self.consume()
        while True:
            ch = self.next()
            if ch == "\\":
                self.next()
            elif ch == "" or ch in _TERMINATORS:
                if ch:
                    self.pos -= 1
                break
        value = self.consume()
        if value == "*":
            cur.nodes.append(_Wildcard())
        else:
            cur.nodes.append(_Field(value.replace("\\", "")))


def _parse_action(text: str) -> _List:
    root = _Parser("{" + text + "}").parse()
    first = root.nodes[0]
    assert isinstance(first, _List)
    return first


# -- evaluation ------------------------------------------------------------------


def _children(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list):
        return list(value)
    if isinstance(value, str):
        return [GoUint8(b) for b in value.encode()]
    return []


class _Evaluator:
    def __init__(self) -> None:
        self.begin_range = 0
        self.in_range = 0
        self.end_range = 0
        self.last_end: int | None = None  # id() of the last {end} node met

    def find(self, data: Any, nodes: list[Any]) -> list[list[Any]]:
        cur = [data]
        full: list[list[Any]] = []
        i = 0
        while i < len(nodes):
            node = nodes[i]
            results = self.walk(cur, node)
            if self.end_range > 0 and self.end_range <= self.in_range:
                self.end_range -= 1
                self.last_end = id(node)
                break
            if self.begin_range > 0:
                self.begin_range -= 1
                self.in_range += 1
                inner = nodes[i + 1 :]
                if results:
                    for value in results:
                        full.extend(self.find(value, inner))
                else:
                    self.find(None, inner)
                self.in_range -= 1
                for k in range(i + 1, len(nodes)):
                    if id(nodes[k]) == self.last_end:
                        i = k
                        break
                i += 1
                continue
            full.append(results)
            i += 1
        return full

    def walk(self, values: list[Any], node: Any) -> list[Any]:
        method: Callable[[list[Any], Any], list[Any]] = getattr(self, "eval_" + type(node).__name__)
        return method(values, node)

    def eval__List(self, values: list[Any], node: _List) -> list[Any]:
        for child in node.nodes:
            values = self.walk(values, child)
        return values

    def eval__Text(self, values: list[Any], node: _Text) -> list[Any]:
        return [node.text]

    def eval__Literal(self, values: list[Any], node: _Literal) -> list[Any]:
        return [node.value for _ in values]

    def eval__Identifier(self, values: list[Any], node: _Identifier) -> list[Any]:
        if node.name == "range":
            self.begin_range += 1
            return values
        if node.name == "end":
            if self.in_range > 0:
                self.end_range += 1
                return []
            raise JSONPathError("not in range, nothing to end")
        raise JSONPathError(f"unrecognized identifier {node.name}")

    def eval__Array(self, values: list[Any], node: _Array) -> list[Any]:
        result: list[Any] = []
        for value in values:
            if value is None:
                continue
            if not isinstance(value, list):
                raise JSONPathError(f"{go_type_name(value)} is not array or slice")
            length = len(value)
            p0, p1, p2 = node.params
            start = p0.value if p0.known else 0
            if start < 0:
                start += length
            stop = p1.value if p1.known else length
            if stop < 0 or (stop == 0 and p1.derived):
                stop += length
            if stop == start:
                return result  # client-go returns here, dropping later inputs
            if start >= length or start < 0:
                raise JSONPathError(f"array index out of bounds: index {start}, length {length}")
            if stop > length or stop < 0:
                raise JSONPathError(f"array index out of bounds: index {stop - 1}, length {length}")
            if start > stop:
                raise JSONPathError(f"starting index {start} is greater than ending index {stop}")
            step = 1
            if p2.known:
                if p2.value <= 0:
                    raise JSONPathError("step must be > 0")
                step = p2.value
            result.extend(value[start:stop:step])
        return result

    def eval__Union(self, values: list[Any], node: _Union) -> list[Any]:
        result: list[Any] = []
        for branch in node.lists:
            result.extend(self.eval__List(values, branch))
        return result

    def eval__Field(self, values: list[Any], node: _Field) -> list[Any]:
        if not values:
            return []
        result = [
            value[node.name] for value in values if isinstance(value, dict) and node.name in value
        ]
        if not result:
            raise JSONPathError(f"{node.name} is not found")
        return result

    def eval__Wildcard(self, values: list[Any], node: _Wildcard) -> list[Any]:
        result: list[Any] = []
        for value in values:
            if value is not None:
                result.extend(_children(value))
        return result

    def eval__Recursive(self, values: list[Any], node: _Recursive) -> list[Any]:
        result: list[Any] = []
        for value in values:
            if value is None:
                continue
            children = _children(value)
            if children:
                result.append(value)
                result.extend(self.eval__Recursive(children, node))
        return result

    def eval__Filter(self, values: list[Any], node: _Filter) -> list[Any]:
        result: list[Any] = []
        for value in values:
            if not isinstance(value, list):
                shown = "<nil>" if value is None else go_print(value)
                raise JSONPathError(f"{shown} is not array or slice and cannot be filtered")
            for item in value:
                if node.op == "exists":
                    try:
                        lefts = self.eval__List([item], node.left)
                    except JSONPathError:
                        continue
                    if lefts:
                        result.append(item)
                    continue
                lefts = self.eval__List([item], node.left)
                if not lefts:
                    continue
                if len(lefts) > 1:
                    raise JSONPathError("can only compare one element at a time")
                rights = self.eval__List([item], node.right)
                if not rights:
                    continue
                if len(rights) > 1:
                    raise JSONPathError("can only compare one element at a time")
                try:
                    passed = compare(node.op, lefts[0], rights[0])
                except ValueError as exc:
                    raise JSONPathError(str(exc)) from None
                if passed:
                    result.append(item)
        return result


class JSONPath:
    """A parsed template; immutable, so one instance may serve many evaluations."""

    def __init__(self, template: str) -> None:
        self.template = template
        self._root = _Parser(template).parse()

    def find_results(self, data: Any) -> list[list[Any]]:
        """One list of matched values per template node (client-go FindResults)."""
        return _Evaluator().find(data, self._root.nodes)

    def first(self, data: Any) -> tuple[bool, Any]:
        """(found, value) of the first match, as Argo's Web provider takes it."""
        for results in self.find_results(data):
            for value in results:
                return True, value
        return False, None

    def render(self, data: Any) -> str:
        """The text `kubectl -o jsonpath=<template>` prints."""
        out: list[str] = []
        for results in self.find_results(data):
            out.append(" ".join(_print(value) for value in results))
        return "".join(out)


def _print(value: Any) -> str:
    if value is None:
        return "null"  # kubectl (client-go >= 1.2x) prints a JSON null as null
    if isinstance(value, (dict, list)):
        return go_json(value)
    return go_print(value)


def compile_jsonpath(template: str) -> JSONPath:
    """Parse a template (raises JSONPathError with client-go's message)."""
    return JSONPath(template)
