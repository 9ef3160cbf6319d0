"""Closure builtins over `#`: all any none one filter map count sum find findIndex findLast
findLastIndex groupBy sortBy reduce, as expr-lang's compiler lays out their loops.

A predicate is a compiled node evaluated with the frame's ``#`` slot (and ``#index``, and
``#acc`` in reduce) set to each element in turn; the slots are restored afterwards so
closures nest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from analysisd.expr import values as v
from analysisd.expr.errors import ExprEvalError, ExprTypeError

Frame = list[Any]
Fn = Callable[[Frame], Any]
# Frame slots: environment, `#`, iteration budget, `#index`, `#acc`; `let` variables follow.
ENV, IT, BUDGET, INDEX, ACC = 0, 1, 2, 3, 4
FIRST_VARIABLE = 5


def spend(frame: Frame, amount: int) -> None:
    """Charge iterations against the evaluation's budget (bounds ranges and closures)."""
    frame[BUDGET] -= amount
    if frame[BUDGET] < 0:
        raise ExprEvalError("memory budget exceeded: expression iterates too much")


def _items(name: str, value: Any) -> Sequence[Any]:
    if v.is_array(value):
        return value  # type: ignore[no-any-return]
    raise ExprTypeError(f"cannot iterate over {v.go_type(value)} in {name}")


def _truth(name: str, value: Any) -> bool:
    if value is True or value is False:
        return value
    raise ExprTypeError(f"predicate of {name} must return bool, got {v.go_type(value)}")


def _each(
    name: str, items: Sequence[Any], predicate: Fn, frame: Frame, *, reverse: bool = False
) -> Iterator[tuple[int, Any, Any]]:
    """(index, element, predicate outcome) with `#` and `#index` bound; restores them."""
    spend(frame, len(items))
    saved_it, saved_index = frame[IT], frame[INDEX]
    order = range(len(items) - 1, -1, -1) if reverse else range(len(items))
    try:
        for position in order:
            item = items[position]
            frame[IT] = item
            frame[INDEX] = position
            yield position, item, predicate(frame)
    finally:
        frame[IT], frame[INDEX] = saved_it, saved_index


def _quantifier(name: str, items_fn: Fn, predicate: Fn) -> Fn:
    def run(frame: Frame) -> Any:
        hits = 0
        for _, _, outcome in _each(name, _items(name, items_fn(frame)), predicate, frame):
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
        items = _items("filter", items_fn(frame))
        return [
            item for _, item, ok in _each("filter", items, predicate, frame) if _truth("filter", ok)
        ]

    return run


def _map(items_fn: Fn, mapper: Fn) -> Fn:
    def run(frame: Frame) -> list[Any]:
        items = _items("map", items_fn(frame))
        return [outcome for _, _, outcome in _each("map", items, mapper, frame)]

    return run


def _sum(items_fn: Fn, mapper: Fn) -> Fn:
    # expr-lang: an int 0 accumulator and OpAdd per element, left to right (no flattening).
    def run(frame: Frame) -> Any:
        total: Any = 0
        for _, _, outcome in _each("sum", _items("sum", items_fn(frame)), mapper, frame):
            total = v.add(total, outcome)
        return total

    return run


def _finder(name: str, items_fn: Fn, predicate: Fn) -> Fn:
    want_index = name.endswith("Index")
    from_end = name.startswith("findLast")

    def run(frame: Frame) -> Any:
        items = _items(name, items_fn(frame))
        for position, item, ok in _each(name, items, predicate, frame, reverse=from_end):
            if _truth(name, ok):
                return position if want_index else item
        return None  # expr-lang pushes nil when nothing matches, for the indexes too

    return run


def backwards_finder(name: str, items_fn: Fn, predicate: Fn) -> Fn:
    """findLast / findLastIndex -> (value, matched): the value and the stale loop bool."""
    want_index = name.endswith("Index")

    def run(frame: Frame) -> tuple[Any, bool]:
        items = _items(name, items_fn(frame))
        for position, item, ok in _each(name, items, predicate, frame, reverse=True):
            if _truth(name, ok):
                return (position if want_index else item), True
        return None, False

    return run


def _group_by(items_fn: Fn, key_fn: Fn) -> Fn:
    def run(frame: Frame) -> dict[Any, list[Any]]:
        # expr-lang groups into a map[any][]any: 1, 1.0 and true are three groups
        groups: v.GoAnyMap = v.GoAnyMap()
        for _, item, key in _each("groupBy", _items("groupBy", items_fn(frame)), key_fn, frame):
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise ExprTypeError(f"cannot use {v.go_type(key)} as a groupBy key")
            groups.setdefault(v.go_key(key), []).append(item)
        return groups

    return run


def _sort_by(items_fn: Fn, key_fn: Fn, order_fn: Fn | None) -> Fn:
    def run(frame: Frame) -> list[Any]:
        order = "asc" if order_fn is None else order_fn(frame)
        if order not in ("asc", "desc"):
            raise ExprEvalError(f"unknown order {v.format_go(order)}, use asc or desc")
        items = _items("sortBy", items_fn(frame))
        keyed = [(key, item) for _, item, key in _each("sortBy", items, key_fn, frame)]
        return [item for _, item in sort_pairs(keyed, descending=order == "desc")]

    return run


def sort_pairs(pairs: list[tuple[Any, Any]], *, descending: bool) -> list[tuple[Any, Any]]:
    """Sort (key, item) pairs by key with expr-lang's ordering (numbers or strings)."""
    import functools

    def compare(a: tuple[Any, Any], b: tuple[Any, Any]) -> int:
        if v.less("<", a[0], b[0]):
            return -1
        if v.less("<", b[0], a[0]):
            return 1
        return 0

    return sorted(pairs, key=functools.cmp_to_key(compare), reverse=descending)


def _reduce(items_fn: Fn, step: Fn, initial_fn: Fn | None) -> Fn:
    def run(frame: Frame) -> Any:
        items = _items("reduce", items_fn(frame))
        saved_acc = frame[ACC]
        try:
            if initial_fn is not None:
                frame[ACC] = initial_fn(frame)
                rest: Sequence[Any] = items
                offset = 0
            else:
                if not items:
                    raise ExprEvalError("reduce of empty array with no initial value")
                frame[ACC] = items[0]
                rest, offset = items[1:], 1
            spend(frame, len(rest))
            saved_it, saved_index = frame[IT], frame[INDEX]
            try:
                for position, item in enumerate(rest, start=offset):
                    frame[IT], frame[INDEX] = item, position
                    frame[ACC] = step(frame)
            finally:
                frame[IT], frame[INDEX] = saved_it, saved_index
            return frame[ACC]
        finally:
            frame[ACC] = saved_acc

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
        "sum",
        "find",
        "findIndex",
        "findLast",
        "findLastIndex",
        "groupBy",
        "sortBy",
        "reduce",
    }
)


def compile_closure_call(
    name: str, items_fn: Fn, predicates: list[Fn], extra: Fn | None = None
) -> tuple[Fn, str]:
    """The closure builtin `name` over compiled arguments -> (node function, static type)."""
    if name in ("count", "sum") and not predicates:
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
    if name == "groupBy":
        return _group_by(items_fn, predicate), "any"  # map[any][]any: any key goes
    if name == "sortBy":
        return _sort_by(items_fn, predicate, extra), "array"
    if name == "reduce":
        return _reduce(items_fn, predicate, extra), "any"
    return _finder(name, items_fn, predicate), "any"
