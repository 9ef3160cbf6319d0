"""Parse tree -> nested Python closures, compiled once per source string.

A compiled node is a function of one frame, a list ``[env, it, budget]``: the
environment, the closure element ``#`` and the remaining iteration budget (which bounds
ranges and closures so no expression can run away). Node types are tracked statically
where literals and function results make them known, so mismatches Argo's checker
rejects at compile time (``asFloat(result) == "1.1"``) are compile errors here too.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from lark import Token, Tree

from analysisd.expr import values as v
from analysisd.expr.builtins import BUILTINS
from analysisd.expr.closures import (
    CLOSURE_BUILTINS,
    ENV,
    IT,
    Fn,
    Frame,
    compile_closure_call,
    spend,
)
from analysisd.expr.errors import ExprEvalError, ExprSyntaxError, ExprTypeError
from analysisd.expr.grammar import parse
from analysisd.expr.literals import parse_float_literal, parse_int_literal, unquote

EVAL_BUDGET = 1_000_000
NAMES = frozenset({"result"})
_SAMPLES: Mapping[str, Any] = {
    "int": 1,
    "float": 1.0,
    "string": "",
    "bool": True,
    "nil": None,
    "array": [],
    "map": {},
}
_ORDER = {"<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge}


@dataclass(frozen=True, slots=True)
class Node:
    fn: Fn
    type: str = "any"  # int, float, string, bool, nil, array, map or any


class Program:
    """A compiled expression; evaluate it as often as you like (it holds no state)."""

    __slots__ = ("_fn", "source", "type")

    def __init__(self, source: str, node: Node) -> None:
        self.source = source
        self._fn = node.fn
        self.type = node.type

    def evaluate(self, env: Mapping[str, Any]) -> Any:
        try:
            return self._fn([env, None, EVAL_BUDGET])
        except (ExprEvalError, ExprSyntaxError):
            raise
        except RecursionError:
            raise ExprEvalError("expression too deep to evaluate") from None
        except (ArithmeticError, ValueError, TypeError, re.error, IndexError, KeyError) as exc:
            # Backstop: a Python error escaping an operation is reported, never leaked.
            raise ExprEvalError(f"evaluation failed: {exc}") from None

    def __repr__(self) -> str:
        return f"Program({self.source!r})"


@lru_cache(maxsize=1024)
def compile_expr(source: str) -> Program:
    """Compile (cached per source string); ExprSyntaxError with the column on failure."""
    tree = parse(source)
    try:
        node = Compiler(source).node(tree)
    except RecursionError:
        raise ExprSyntaxError("expression nested too deeply", source=source, column=1) from None
    return Program(source, node)


def _column(item: Tree[Token] | Token | None) -> int:
    if isinstance(item, Token):
        return item.column or 0
    if isinstance(item, Tree) and not item.meta.empty:
        return item.meta.column
    return 0


def _go_name(static: str) -> str:
    return v.go_type(_SAMPLES[static])


class Compiler:
    """One compilation; methods are named after the grammar's rule aliases."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.closure_depth = 0

    def error(self, message: str, where: Tree[Token] | Token | None) -> ExprSyntaxError:
        column = _column(where)
        return ExprSyntaxError(message, source=self.source, column=column or 1)

    def node(self, tree: Tree[Token] | Token) -> Node:
        if isinstance(tree, Token):
            raise self.error(f"unexpected token {str(tree)!r}", tree)
        method: Callable[[Tree[Token]], Node] | None = getattr(self, f"n_{tree.data}", None)
        if method is None:
            raise self.error(f"unsupported syntax {tree.data!s}", tree)
        return method(tree)

    # literals and names

    def n_int_lit(self, tree: Tree[Token]) -> Node:
        token = tree.children[0]
        assert isinstance(token, Token)
        value = parse_int_literal(str(token))
        if value is None:
            raise self.error(f"invalid integer literal {str(token)!r}", token)
        return _const(value, "int")

    def n_float_lit(self, tree: Tree[Token]) -> Node:
        token = tree.children[0]
        assert isinstance(token, Token)
        return _const(parse_float_literal(str(token)), "float")

    def n_string_lit(self, tree: Tree[Token]) -> Node:
        token = tree.children[0]
        assert isinstance(token, Token)
        text = unquote(str(token))
        if text is None:
            raise self.error(f"invalid string literal {token!s}", token)
        return _const(text, "string")

    def n_true_lit(self, tree: Tree[Token]) -> Node:
        return _const(True, "bool")

    def n_false_lit(self, tree: Tree[Token]) -> Node:
        return _const(False, "bool")

    def n_nil_lit(self, tree: Tree[Token]) -> Node:
        return _const(None, "nil")

    def n_atom(self, tree: Tree[Token]) -> Node:
        raise self.error("unexpected token", tree.children[0])

    def n_name(self, tree: Tree[Token]) -> Node:
        token = tree.children[0]
        assert isinstance(token, Token)
        name = str(token)
        if name not in NAMES:
            raise self.error(f"unknown name {name}", token)

        def lookup(frame: Frame) -> Any:
            return frame[ENV].get(name)

        return Node(lookup)

    def n_pointer(self, tree: Tree[Token]) -> Node:
        if not self.closure_depth:
            raise self.error("cannot use pointer accessor # outside closure", tree)
        return Node(operator.itemgetter(IT))

    def n_pointer_member(self, tree: Tree[Token]) -> Node:
        return self._member(self.n_pointer(tree), tree.children[0], optional=False)

    def n_array(self, tree: Tree[Token]) -> Node:
        args = tree.children[0]
        items = [self.node(child) for child in args.children] if isinstance(args, Tree) else []
        fns = [item.fn for item in items]
        return Node(lambda frame: [fn(frame) for fn in fns], "array")

    def n_map(self, tree: Tree[Token]) -> Node:
        pairs = tree.children[0]
        entries: list[tuple[str, Fn]] = []
        for pair in pairs.children if isinstance(pairs, Tree) else []:
            assert isinstance(pair, Tree)
            key_token, value_tree = pair.children
            assert isinstance(key_token, Token)
            key = str(key_token)
            if key_token.type == "STRING_KEY":
                unquoted = unquote(key)
                if unquoted is None:
                    raise self.error(f"invalid string literal {key}", key_token)
                key = unquoted
            entries.append((key, self.node(value_tree).fn))
        return Node(lambda frame: {key: fn(frame) for key, fn in entries}, "map")

    def n_closure(self, tree: Tree[Token]) -> Node:
        raise self.error("a closure {...} is only allowed as a function argument", tree)

    # member access

    def n_member(self, tree: Tree[Token]) -> Node:
        return self._member(self.node(tree.children[0]), tree.children[1], optional=False)

    def n_opt_member(self, tree: Tree[Token]) -> Node:
        return self._member(self.node(tree.children[0]), tree.children[1], optional=True)

    def _member(self, target: Node, member: Any, *, optional: bool) -> Node:
        assert isinstance(member, Tree)
        key = str(member.children[0])
        self._static_fetch(target, key, member)
        get = target.fn

        def fetch_member(frame: Frame) -> Any:
            container = get(frame)
            if type(container) is dict:
                return container.get(key)
            return v.fetch(container, key, optional=optional)

        return Node(fetch_member)

    def _static_fetch(self, target: Node, key: Any, where: Any) -> None:
        if target.type in ("int", "float", "bool", "nil") or (
            target.type == "array" and not v.is_int(key)
        ):
            raise self.error(f"cannot fetch {v.format_go(key)} from {_go_name(target.type)}", where)

    def n_index(self, tree: Tree[Token]) -> Node:
        return self._index(tree, optional=False)

    def n_opt_index(self, tree: Tree[Token]) -> Node:
        return self._index(tree, optional=True)

    def _index(self, tree: Tree[Token], *, optional: bool) -> Node:
        target = self.node(tree.children[0])
        key_node = self.node(tree.children[1])
        get = target.fn
        constant = getattr(key_node.fn, "constant", _NO_CONST)
        if constant is not _NO_CONST:
            self._static_fetch(target, constant, tree)
            key: Any = constant
            if v.is_int(key):

                def fetch_index(frame: Frame) -> Any:
                    container = get(frame)
                    if type(container) is list and -len(container) <= key < len(container):
                        return container[key]
                    return v.fetch(container, key, optional=optional)

                return Node(fetch_index)

            def fetch_key(frame: Frame) -> Any:
                return v.fetch(get(frame), key, optional=optional)

            return Node(fetch_key)
        key_fn = key_node.fn
        return Node(lambda frame: v.fetch(get(frame), key_fn(frame), optional=optional))

    def n_slice(self, tree: Tree[Token]) -> Node:
        target = self.node(tree.children[0]).fn
        bounds: list[Fn | None] = []
        for bound in tree.children[1:]:
            assert isinstance(bound, Tree)
            bounds.append(self.node(bound.children[0]).fn if bound.children else None)
        low, high = bounds

        def slice_fn(frame: Frame) -> Any:
            start = low(frame) if low else None
            stop = high(frame) if high else None
            return v.slice_of(target(frame), start, stop)

        return Node(slice_fn)

    # operators

    def n_logic_not(self, tree: Tree[Token]) -> Node:
        operand = self.node(tree.children[1])
        self._static_bool("!", operand, tree)
        get = operand.fn
        return Node(lambda frame: not v.truth("!", get(frame)), "bool")

    def n_sign(self, tree: Tree[Token]) -> Node:
        op = str(tree.children[0])
        operand = self.node(tree.children[1])
        apply = v.negate if op == "-" else v.plus
        if operand.type != "any":
            self._static_try(lambda: apply(_SAMPLES[operand.type]), tree)
        get = operand.fn
        return Node(lambda frame: apply(get(frame)), operand.type)

    def n_logic_and(self, tree: Tree[Token]) -> Node:
        return self._logic(tree, "&&", stop_at=False)

    def n_logic_or(self, tree: Tree[Token]) -> Node:
        return self._logic(tree, "||", stop_at=True)

    def _logic(self, tree: Tree[Token], op: str, *, stop_at: bool) -> Node:
        left = self.node(tree.children[0])
        right = self.node(tree.children[2])
        self._static_bool(op, left, tree)
        self._static_bool(op, right, tree)
        first, second = left.fn, right.fn

        def logic_and(frame: Frame) -> bool:
            value = first(frame)
            if value is False:
                return False
            if value is not True:
                raise v.mismatch(op, value, True)
            outcome = second(frame)
            if outcome is True or outcome is False:
                return bool(outcome)
            raise v.mismatch(op, True, outcome)

        def logic_or(frame: Frame) -> bool:
            value = first(frame)
            if value is True:
                return True
            if value is not False:
                raise v.mismatch(op, value, False)
            outcome = second(frame)
            if outcome is True or outcome is False:
                return bool(outcome)
            raise v.mismatch(op, False, outcome)

        return Node(logic_or if stop_at else logic_and, "bool")

    def _static_bool(self, op: str, operand: Node, where: Tree[Token]) -> None:
        if operand.type not in ("any", "bool"):
            raise self.error(
                f"invalid operation: {op} (mismatched types {_go_name(operand.type)} and bool)",
                where,
            )

    def _static_try(self, attempt: Callable[[], Any], where: Tree[Token]) -> None:
        try:
            attempt()
        except ExprTypeError as exc:
            raise self.error(str(exc), where) from None

    def n_compare(self, tree: Tree[Token]) -> Node:
        op = str(tree.children[1])
        left = self.node(tree.children[0])
        right = self.node(tree.children[2])
        first, second = left.fn, right.fn
        known = left.type != "any" and right.type != "any"
        if op in ("==", "!="):
            comparable = {left.type, right.type} <= {"int", "float"} or "nil" in (
                left.type,
                right.type,
            )
            if known and left.type != right.type and not comparable:
                raise self.error(str(v.mismatch(op, *self._samples(left, right))), tree)
            if op == "==":
                return Node(lambda frame: v.equal(first(frame), second(frame)), "bool")
            return Node(lambda frame: not v.equal(first(frame), second(frame)), "bool")
        if op in _ORDER:
            return self._ordering(op, left, right, tree)
        test = _STRING_TESTS.get(op)
        if test is not None:
            if known:
                self._static_try(lambda: test(op, *self._samples(left, right)), tree)
            return Node(lambda frame: test(op, first(frame), second(frame)), "bool")
        # op == "in"
        if known:
            self._static_try(lambda: v.contained(*self._samples(left, right)), tree)
        return Node(lambda frame: v.contained(first(frame), second(frame)), "bool")

    def n_not_in(self, tree: Tree[Token]) -> Node:
        inner = self.n_compare(
            Tree("compare", [tree.children[0], Token("CMP_OP", "in"), tree.children[1]], tree.meta)
        )
        get = inner.fn
        return Node(lambda frame: not get(frame), "bool")

    def _samples(self, left: Node, right: Node) -> tuple[Any, Any]:
        return _SAMPLES[left.type], _SAMPLES[right.type]

    def _ordering(self, op: str, left: Node, right: Node, tree: Tree[Token]) -> Node:
        if left.type != "any" and right.type != "any":
            self._static_try(lambda: v.less(op, *self._samples(left, right)), tree)
        first, second = left.fn, right.fn
        compare = _ORDER[op]
        constant = getattr(second, "constant", _NO_CONST)
        if v.is_number(constant):
            bound: Any = constant

            def against_constant(frame: Frame) -> bool:
                value = first(frame)
                kind = type(value)
                if kind is float or kind is int:
                    return bool(compare(value, bound))
                return v.less(op, value, bound)

            return Node(against_constant, "bool")

        def ordering(frame: Frame) -> bool:
            return v.less(op, first(frame), second(frame))

        return Node(ordering, "bool")

    def n_arith(self, tree: Tree[Token]) -> Node:
        op = str(tree.children[1])
        left = self.node(tree.children[0])
        right = self.node(tree.children[2])
        apply = _ARITH[op]
        result_type = "any"
        if left.type != "any" and right.type != "any":
            self._static_try(lambda: apply(*self._samples(left, right)), tree)
            result_type = _static_arith_type(op, left.type, right.type)
        elif op in ("/", "**", "^"):
            result_type = "float"
        first, second = left.fn, right.fn
        return Node(lambda frame: apply(first(frame), second(frame)), result_type)

    def n_range(self, tree: Tree[Token]) -> Node:
        low = self.node(tree.children[0])
        high = self.node(tree.children[1])
        for side in (low, high):
            if side.type not in ("any", "int"):
                raise self.error(
                    f"invalid operation: .. (mismatched type {_go_name(side.type)})", tree
                )
        first, second = low.fn, high.fn

        def make_range(frame: Frame) -> list[int]:
            start, stop = first(frame), second(frame)
            if not (v.is_int(start) and v.is_int(stop)):
                raise v.mismatch("..", start, stop)
            spend(frame, max(stop - start + 1, 0))
            return list(range(start, stop + 1))

        return Node(make_range, "array")

    def n_coalesce(self, tree: Tree[Token]) -> Node:
        first = self.node(tree.children[0]).fn
        second = self.node(tree.children[1]).fn

        def coalesce(frame: Frame) -> Any:
            value = first(frame)
            return second(frame) if value is None else value

        return Node(coalesce)

    def n_ternary(self, tree: Tree[Token]) -> Node:
        condition = self.node(tree.children[0])
        self._static_bool("?:", condition, tree)
        yes = self.node(tree.children[1])
        no = self.node(tree.children[2])
        test, then, otherwise = condition.fn, yes.fn, no.fn

        def ternary(frame: Frame) -> Any:
            chosen = test(frame)
            if chosen is True:
                return then(frame)
            if chosen is False:
                return otherwise(frame)
            raise ExprTypeError(f"non-bool expression (type {v.go_type(chosen)}) used as condition")

        return Node(ternary, yes.type if yes.type == no.type else "any")

    def n_call(self, tree: Tree[Token]) -> Node:
        name_token = tree.children[0]
        assert isinstance(name_token, Token)
        name = str(name_token)
        args_tree = tree.children[1]
        arg_trees = list(args_tree.children) if isinstance(args_tree, Tree) else []
        if name in CLOSURE_BUILTINS:
            return self._closure_call(name, arg_trees, tree)
        builtin = BUILTINS.get(name)
        if builtin is None:
            raise self.error(f"unknown name {name}", name_token)
        if len(arg_trees) < builtin.min_args:
            raise self.error(f"not enough arguments to call {name}", name_token)
        if len(arg_trees) > builtin.max_args:
            raise self.error(f"too many arguments to call {name}", name_token)
        fns = [self.node(arg).fn for arg in arg_trees]
        impl = builtin.impl
        if len(fns) == 1:
            (only,) = fns
            return Node(lambda frame: impl(frame[ENV], (only(frame),)), builtin.returns)
        return Node(lambda frame: impl(frame[ENV], [fn(frame) for fn in fns]), builtin.returns)

    def _closure_call(self, name: str, arg_trees: list[Any], tree: Tree[Token]) -> Node:
        if not arg_trees:
            raise self.error(f"not enough arguments to call {name}", tree)
        items = self.node(arg_trees[0])
        predicates: list[Fn] = []
        self.closure_depth += 1
        try:
            for arg in arg_trees[1:]:
                body = arg.children[0] if isinstance(arg, Tree) and arg.data == "closure" else arg
                predicates.append(self.node(body).fn)
        finally:
            self.closure_depth -= 1
        try:
            fn, result_type = compile_closure_call(name, items.fn, predicates)
        except ValueError as exc:
            raise self.error(str(exc), tree) from None
        return Node(fn, result_type)


_NO_CONST = object()


def _const(value: Any, static: str) -> Node:
    def constant(frame: Frame) -> Any:
        return value

    constant.constant = value  # type: ignore[attr-defined]
    return Node(constant, static)


def _matches(op: str, text: Any, pattern: Any) -> bool:
    if not (isinstance(text, str) and isinstance(pattern, str)):
        raise v.mismatch(op, text, pattern)
    try:
        return _regex(pattern).search(text) is not None
    except re.error as exc:
        raise ExprEvalError(f"error parsing regexp: {exc}") from None


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _string_test(method: Callable[[str, str], bool]) -> Callable[[str, Any, Any], bool]:
    def test(op: str, left: Any, right: Any) -> bool:
        if not (isinstance(left, str) and isinstance(right, str)):
            raise v.mismatch(op, left, right)
        return method(left, right)

    return test


_STRING_TESTS: Mapping[str, Callable[[str, Any, Any], bool]] = {
    "matches": _matches,
    "contains": _string_test(lambda left, right: right in left),
    "startsWith": _string_test(str.startswith),
    "endsWith": _string_test(str.endswith),
}

_ARITH: Mapping[str, Callable[[Any, Any], Any]] = {
    "+": v.add,
    "-": v.subtract,
    "*": v.multiply,
    "/": v.divide,
    "%": v.modulo,
    "**": v.power,
    "^": v.power,
}


def _static_arith_type(op: str, left: str, right: str) -> str:
    if op in ("/", "**", "^"):
        return "float"
    if op == "%":
        return "int"
    if left == right:
        return left
    return "float" if {left, right} <= {"int", "float"} else "any"
