"""Closure builtins (all, any, none, one, filter, map, count, find, ...) over `#`.

A predicate is a compiled node evaluated with the frame's ``#`` slot set to each element
in turn; the slot is restored afterwards so closures nest.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from analysisd.expr.errors import ExprEvalError, ExprTypeError
from analysisd.expr.values import go_type, is_array, is_number

Frame = list[Any]
Fn = Callable[[Frame], Any]
ENV, IT, BUDGET = 0, 1, 2


def spend(frame: Frame, amount: int) -> None:
    """Charge iterations against the evaluation's budget (bounds ranges and closures)."""
    frame[BUDGET] -= amount
    if frame[BUDGET] < 0:
        raise ExprEvalError("memory budget exceeded: expression iterates too much")


def _items(name: str, value: Any) -> Sequence[Any]:
    if is_array(value):
        return value  # type: ignore[no-any-return]
    raise ExprTypeError(f"cannot iterate over {go_type(value)} in {name}")


def _truth(name: str, value: Any) -> bool:
    if value is True or value is False:
        return value
    raise ExprTypeError(f"predicate of {name} must return bool, got {go_type(value)}")


def _each(name: str, items_fn: Fn, predicate: Fn, frame: Frame) -> Any:
    """Yield (element, predicate outcome) pairs with `#` bound; restores `#` afterwards."""
    items = _items(name, items_fn(frame))
    spend(frame, len(items))
    saved = frame[IT]
    try:
        for item in items:
            frame[IT] = item
            yield item, predicate(frame)
    finally:
        frame[IT] = saved


def _quantifier(name: str, items_fn: Fn, predicate: Fn) -> Fn:
    def run(frame: Frame) -> Any:
        hits = 0
        for _, outcome in _each(name, items_fn, predicate, frame):
            passed = _truth(name, outcome)
            if name == "all" and not passed:
                return False
            if name == "any" and passed:
                return True
            if name == "none" and passed:
                return False
            hits += passed
        if name == "all" or name == "none":
            return True
        if name == "any":
            return False
        if name == "one":
            return hits == 1
        return hits  # count

    return run


def _identity(frame: Frame) -> Any:
    return frame[IT]


def _filter(items_fn: Fn, predicate: Fn) -> Fn:
    def run(frame: Frame) -> list[Any]:
        return [
            item for item, ok in _each("filter", items_fn, predicate, frame) if _truth("filter", ok)
        ]

    return run


def _map(items_fn: Fn, mapper: Fn) -> Fn:
    def run(frame: Frame) -> list[Any]:
        return [outcome for _, outcome in _each("map", items_fn, mapper, frame)]

    return run


def _sum(items_fn: Fn, mapper: Fn) -> Fn:
    def run(frame: Frame) -> Any:
        outcomes = [outcome for _, outcome in _each("sum", items_fn, mapper, frame)]
        for outcome in outcomes:
            if not is_number(outcome):
                raise ExprTypeError(f"invalid argument for sum (type {go_type(outcome)})")
        if all(type(outcome) is int for outcome in outcomes):
            return sum(outcomes)
        return math.fsum(float(outcome) for outcome in outcomes)

    return run


def _finder(name: str, items_fn: Fn, predicate: Fn) -> Fn:
    want_index = name.endswith("Index")
    from_end = name.startswith("findLast")

    def run(frame: Frame) -> Any:
        found: Any = -1 if want_index else None
        for position, (item, ok) in enumerate(_each(name, items_fn, predicate, frame)):
            if _truth(name, ok):
                found = position if want_index else item
                if not from_end:
                    return found
        return found

    return run


CLOSURE_BUILTINS = frozenset(
    {
        "all",
        "any",
        "none",
        "one",
        "filter",
        "map",
        "count",
        "find",
        "findIndex",
        "findLast",
        "findLastIndex",
    }
)


def compile_closure_call(name: str, items_fn: Fn, predicates: list[Fn]) -> tuple[Fn, str]:
    """The closure builtin `name` over compiled arguments -> (node function, static type)."""
    if name == "count" and not predicates:
        predicates = [_identity]
    if len(predicates) != 1:
        raise ValueError(f"{name} expects an array and one predicate")
    (predicate,) = predicates
    if name in ("all", "any", "none", "one"):
        return _quantifier(name, items_fn, predicate), "bool"
    if name == "count":
        return _quantifier(name, items_fn, predicate), "int"
    if name == "filter":
        return _filter(items_fn, predicate), "array"
    if name == "map":
        return _map(items_fn, predicate), "array"
    if name == "sum":
        return _sum(items_fn, predicate), "any"
    return _finder(name, items_fn, predicate), "int" if name.endswith("Index") else "any"
