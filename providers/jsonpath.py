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

from collections.abc import Callable
from typing import Any

from providers.gocompat import format_json, format_v, json_marshal, sprint
from providers.jsonpath_parse import (
    ArrayNode,
    FieldNode,
    FilterNode,
    IdentifierNode,
    JSONPathError,
    ListNode,
    LiteralNode,
    Parser,
    RecursiveNode,
    TextNode,
    UnionNode,
    WildcardNode,
)

__all__ = ["JSONPath", "JSONPathError", "compile_jsonpath", "go_json", "go_print"]


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

    def eval_ListNode(self, values: list[Any], node: ListNode) -> list[Any]:
        for child in node.nodes:
            values = self.walk(values, child)
        return values

    def eval_TextNode(self, values: list[Any], node: TextNode) -> list[Any]:
        return [node.text]

    def eval_LiteralNode(self, values: list[Any], node: LiteralNode) -> list[Any]:
        return [node.value for _ in values]

    def eval_IdentifierNode(self, values: list[Any], node: IdentifierNode) -> list[Any]:
        if node.name == "range":
            self.begin_range += 1
            return values
        if node.name == "end":
            if self.in_range > 0:
                self.end_range += 1
                return []
            raise JSONPathError("not in range, nothing to end")
        raise JSONPathError(f"unrecognized identifier {node.name}")

    def eval_ArrayNode(self, values: list[Any], node: ArrayNode) -> list[Any]:
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

    def eval_UnionNode(self, values: list[Any], node: UnionNode) -> list[Any]:
        result: list[Any] = []
        for branch in node.lists:
            result.extend(self.eval_ListNode(values, branch))
        return result

    def eval_FieldNode(self, values: list[Any], node: FieldNode) -> list[Any]:
        if not values:
            return []
        result = [
            value[node.name] for value in values if isinstance(value, dict) and node.name in value
        ]
        if not result:
            raise JSONPathError(f"{node.name} is not found")
        return result

    def eval_WildcardNode(self, values: list[Any], node: WildcardNode) -> list[Any]:
        result: list[Any] = []
        for value in values:
            if value is not None:
                result.extend(_children(value))
        return result

    def eval_RecursiveNode(self, values: list[Any], node: RecursiveNode) -> list[Any]:
        result: list[Any] = []
        for value in values:
            if value is None:
                continue
            children = _children(value)
            if children:
                result.append(value)
                result.extend(self.eval_RecursiveNode(children, node))
        return result

    def eval_FilterNode(self, values: list[Any], node: FilterNode) -> list[Any]:
        result: list[Any] = []
        for value in values:
            if not isinstance(value, list):
                shown = "<nil>" if value is None else go_print(value)
                raise JSONPathError(f"{shown} is not array or slice and cannot be filtered")
            for item in value:
                if node.op == "exists":
                    try:
                        lefts = self.eval_ListNode([item], node.left)
                    except JSONPathError:
                        continue
                    if lefts:
                        result.append(item)
                    continue
                lefts = self.eval_ListNode([item], node.left)
                if not lefts:
                    continue
                if len(lefts) > 1:
                    raise JSONPathError("can only compare one element at a time")
                rights = self.eval_ListNode([item], node.right)
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
        self._root = Parser(template).parse()
        # "{$.a.b}" (one list of plain field names), the usual Web jsonPath: `first` walks
        # the keys itself while each is there, and leaves anything else (a missing key,
        # a value that is not an object) to the evaluator, which words the error.
        nodes = self._root.nodes
        fields: tuple[str, ...] | None = None
        plain = len(nodes) == 1 and isinstance(nodes[0], ListNode) and bool(nodes[0].nodes)
        if plain and all(type(node) is FieldNode for node in nodes[0].nodes):
            fields = tuple(node.name for node in nodes[0].nodes)
        self._fields = fields

    def find_results(self, data: Any) -> list[list[Any]]:
        """One list of matched values per template node (client-go FindResults)."""
        return _Evaluator().find(data, self._root.nodes)

    def first(self, data: Any) -> tuple[bool, Any]:
        """(found, value) of the first match, as Argo's Web provider takes it."""
        if self._fields is not None:
            value = data
            for name in self._fields:
                if type(value) is not dict or name not in value:
                    break
                value = value[name]
            else:
                return True, value
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
