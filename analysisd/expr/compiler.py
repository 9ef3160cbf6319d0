"""Parse tree -> nested Python closures, compiled once per source string.

Node types are tracked statically where literals and function results make them known,
so mismatches Argo's checker rejects at compile time (``asFloat(result) == "1.1"``) are
compile errors here too (see nodes.py). This module compiles literals, names, access and
calls; operator_nodes.py the operators.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from analysisd.expr import values as v
from analysisd.expr.builtins import BUILTINS
from analysisd.expr.closures import (
    ACC,
    CLOSURE_BUILTINS,
    ENV,
    FIRST_VARIABLE,
    INDEX,
    IT,
    Fn,
    Frame,
    backwards_finder,
    compile_closure_call,
)
from analysisd.expr.errors import ExprEvalError, ExprSyntaxError, ExprTypeError
from analysisd.expr.grammar import parse
from analysisd.expr.literals import parse_float_literal, parse_int_literal, unquote
from analysisd.expr.nodes import NO_CONST, Node, const, go_name
from analysisd.expr.operator_nodes import OperatorNodes
from analysisd.expr.tree import Token, Tree

EVAL_BUDGET = 1_000_000
NAMES = frozenset({"result"})
# Deliberately left out: a condition is a pure function of the result, with no clock.
DATE_FUNCTIONS = frozenset({"now", "date", "duration", "timezone"})
DATE_REASON = "analysisd leaves out expr-lang's date and time functions (conditions have no clock)"


class Program:
    """A compiled expression; evaluate it as often as you like (it holds no state)."""

    __slots__ = ("_fn", "_variables", "source", "tree", "type")

    def __init__(self, source: str, node: Node, tree: Tree[Token], variables: int = 0) -> None:
        self.source = source
        self._fn = node.fn
        self.type = node.type
        self.tree = tree  # kept for the result-type checker (checker.py)
        self._variables = variables

    def evaluate(self, env: Mapping[str, Any]) -> Any:
        try:
            if self._variables:
                frame = [env, None, EVAL_BUDGET, None, None, *([None] * self._variables)]
                return self._fn(frame)
            return self._fn([env, None, EVAL_BUDGET, None, None])
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
    return compile_expr_uncached(source)


def _result(frame: Frame) -> Any:
    """The one name a condition has (NAMES): one function shared by every program, so a
    measurement touches no per-program objects to read it."""
    return frame[ENV].get("result")


_AGGREGATES = frozenset({"max", "min", "mean", "median"})
_FLOAT64_PARAMETER = frozenset({"isNaN", "isInf"})


def _float_literal(tree: Any) -> bool:
    """What expr's traverseAndReplaceIntegerNodesWithFloatNodes turns into float64: integer
    literals, signed or combined with + - *; and anything already not an integer literal
    but a float one."""
    if not isinstance(tree, Tree):
        return False
    if tree.data in ("int_lit", "float_lit"):
        return True
    if tree.data == "sign":
        return _float_literal(tree.children[1])
    if tree.data == "arith" and str(tree.children[1]) in ("+", "-", "*"):
        return _float_literal(tree.children[0]) and _float_literal(tree.children[2])
    return False


def _float64_only(name: str, fn: Fn) -> Fn:
    def argument(frame: Frame) -> Any:
        value = fn(frame)
        if type(value) is int:
            raise ExprTypeError(
                f"interface conversion: interface {{}} is int, not float64 ({name})"
            )
        return value

    return argument


def _is_filter(tree: Any) -> bool:
    """A call filter(xs, {predicate}) with two arguments, as expr's optimiser matches it."""
    if not (isinstance(tree, Tree) and tree.data == "call" and str(tree.children[0]) == "filter"):
        return False
    args = tree.children[1]
    return isinstance(args, Tree) and len(args.children) == 2


def compile_expr_uncached(source: str) -> Program:
    """Compile without the cache (a prepared run keeps its own compiled conditions)."""
    tree = parse(source)
    compiler = Compiler(source)
    try:
        node = compiler.node(tree)
    except RecursionError:
        raise ExprSyntaxError("expression nested too deeply", source=source, column=1) from None
    return Program(source, node, tree, compiler.variable_count)


class Compiler(OperatorNodes):
    """One compilation; methods are named after the grammar's rule aliases."""

    # literals and names

    def n_int_lit(self, tree: Tree[Token]) -> Node:
        token = tree.children[0]
        assert isinstance(token, Token)
        value = parse_int_literal(str(token))
        if value is None:
            raise self.error(f"invalid integer literal {str(token)!r}", token)
        return const(value, "int")

    def n_float_lit(self, tree: Tree[Token]) -> Node:
        token = tree.children[0]
        assert isinstance(token, Token)
        value = parse_float_literal(str(token))
        if math.isinf(value):
            raise self.error("invalid float literal: value out of range", token)
        return const(value, "float")

    def n_string_lit(self, tree: Tree[Token]) -> Node:
        token = tree.children[0]
        assert isinstance(token, Token)
        text = unquote(str(token))
        if text is None:
            raise self.error(f"invalid string literal {token!s}", token)
        return const(text, "string")

    def n_true_lit(self, tree: Tree[Token]) -> Node:
        return const(True, "bool")

    def n_false_lit(self, tree: Tree[Token]) -> Node:
        return const(False, "bool")

    def n_nil_lit(self, tree: Tree[Token]) -> Node:
        return const(None, "nil")

    def n_atom(self, tree: Tree[Token]) -> Node:
        raise self.error("unexpected token", tree.children[0])

    def n_name(self, tree: Tree[Token]) -> Node:
        token = tree.children[0]
        assert isinstance(token, Token)
        name = str(token)
        slot = self.variables.get(name)
        if slot is not None:
            return Node(operator.itemgetter(slot), self.variable_types.get(name, "any"))
        if name == "$env":
            return Node(operator.itemgetter(ENV), "map")
        if name not in NAMES:
            if name in DATE_FUNCTIONS:
                raise self.error(f"{name} is not supported: {DATE_REASON}", token)
            raise self.error(f"unknown name {name}", token)
        return Node(_result, is_result=True)

    def n_pointer(self, tree: Tree[Token]) -> Node:
        if not self.closure_depth:
            raise self.error("cannot use pointer accessor outside predicate", tree)
        if not tree.children or tree.data == "pointer_member":
            return Node(operator.itemgetter(IT))
        name = str(tree.children[0])
        if name == "index":
            return Node(operator.itemgetter(INDEX), "int")
        if name == "acc":
            return Node(operator.itemgetter(ACC))
        raise self.error(f"unknown pointer #{name}", tree)

    def n_sequence(self, tree: Tree[Token]) -> Node:
        nodes = [self.node(child) for child in tree.children]
        fns = [node.fn for node in nodes]
        *leading, last = fns

        def sequence(frame: Frame) -> Any:
            for fn in leading:
                fn(frame)
            return last(frame)

        return Node(sequence, nodes[-1].type)

    def n_let(self, tree: Tree[Token]) -> Node:
        name_token, value_tree, body_tree = tree.children
        name = str(name_token)
        if name in self.variables or name in NAMES or name in BUILTINS or name == "$env":
            raise self.error(f"cannot redeclare {name}", name_token)
        value = self.node(value_tree)
        slot = FIRST_VARIABLE + self.variable_count
        self.variable_count += 1
        self.variables[name] = slot
        self.variable_types[name] = value.type
        try:
            body = self.node(body_tree)
        finally:
            del self.variables[name]
            del self.variable_types[name]
        compute, rest = value.fn, body.fn

        def let(frame: Frame) -> Any:
            frame[slot] = compute(frame)
            return rest(frame)

        return Node(let, body.type)

    def n_pointer_member(self, tree: Tree[Token]) -> Node:
        return self._member(self.n_pointer(tree), tree.children[0], optional=False)

    def n_array(self, tree: Tree[Token]) -> Node:
        args = tree.children[0]
        items = [self.node(child) for child in args.children] if isinstance(args, Tree) else []
        fns = [item.fn for item in items]
        return Node(lambda frame: [fn(frame) for fn in fns], "array")

    def n_map(self, tree: Tree[Token]) -> Node:
        pairs = tree.children[0]
        entries: list[tuple[Fn, Fn]] = []
        for pair in pairs.children if isinstance(pairs, Tree) else []:
            assert isinstance(pair, Tree)
            key_item, value_tree = pair.children
            if isinstance(key_item, Tree):  # (expression)
                key_fn = self.node(key_item.children[0]).fn
            else:
                key = str(key_item)
                if key_item.type == "STRING_KEY":
                    unquoted = unquote(key)
                    if unquoted is None:
                        raise self.error(f"invalid string literal {key}", key_item)
                    key = unquoted
                key_fn = const(key, "string").fn
            entries.append((key_fn, self.node(value_tree).fn))

        def make_map(frame: Frame) -> dict[Any, Any]:
            made: dict[Any, Any] = {}
            for key_fn, value_fn in entries:
                key = key_fn(frame)
                value = value_fn(frame)
                if key not in made:  # a repeated key keeps its first value
                    made[key] = value
            return made

        return Node(make_map, "map")

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
            raise self.error(f"cannot fetch {v.format_go(key)} from {go_name(target.type)}", where)

    def n_index(self, tree: Tree[Token]) -> Node:
        return self._index(tree, optional=False)

    def n_opt_index(self, tree: Tree[Token]) -> Node:
        return self._index(tree, optional=True)

    def _index(self, tree: Tree[Token], *, optional: bool) -> Node:
        target = self.node(tree.children[0])
        key_node = self.node(tree.children[1])
        get = target.fn
        constant = getattr(key_node.fn, "constant", NO_CONST)
        if constant is not NO_CONST:
            self._static_fetch(target, constant, tree)
            key: Any = constant
            if v.is_int(key) and target.is_result:
                # The commonest shape, `result[0]`: read the result without a nested call.

                def fetch_result_index(frame: Frame) -> Any:
                    container = frame[ENV].get("result")
                    if type(container) is list and -len(container) <= key < len(container):
                        return container[key]
                    return v.fetch(container, key, optional=optional)

                return Node(fetch_result_index)
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
            if name in DATE_FUNCTIONS:
                raise self.error(f"{name}() is not supported: {DATE_REASON}", name_token)
            raise self.error(f"unknown name {name}", name_token)
        if len(arg_trees) < builtin.min_args:
            raise self.error(f"not enough arguments to call {name}", name_token)
        if len(arg_trees) > builtin.max_args:
            raise self.error(f"too many arguments to call {name}", name_token)
        nodes = [self.node(arg) for arg in arg_trees]
        fns = [node.fn for node in nodes]
        impl = builtin.impl
        returns = builtin.returns
        if name in _AGGREGATES and all(node.type in ("int", "float") for node in nodes):
            returns = nodes[0].type  # validateAggregateFunc: typed by the first argument
        if name in _FLOAT64_PARAMETER and not _float_literal(arg_trees[0]):
            # Argo's isNaN/isInf are Go funcs of a float64: expr's checker turns integer
            # literals into floats, but any other int reaches reflect's call and fails there.
            fns = [_float64_only(name, fns[0])]
        if len(fns) == 1:
            (only,) = fns
            stale = None
            if name == "last" and _is_filter(arg_trees[0]):
                # optimizer/filter_last.go: last(filter(xs, p)) runs as findLast(xs, p)
                def stale(frame: Frame) -> tuple[Any, bool]:
                    kept = only(frame)
                    return impl(frame[ENV], (kept,)), bool(kept)

            return Node(lambda frame: impl(frame[ENV], (only(frame),)), returns, stale=stale)
        return Node(lambda frame: impl(frame[ENV], [fn(frame) for fn in fns]), returns)

    def _closure_call(self, name: str, arg_trees: list[Any], tree: Tree[Token]) -> Node:
        if not arg_trees:
            raise self.error(f"not enough arguments to call {name}", tree)
        items = self.node(arg_trees[0])
        predicates: list[Fn] = []
        extra: Fn | None = None
        for arg in arg_trees[1:]:
            if isinstance(arg, Tree) and arg.data == "closure":
                self.closure_depth += 1
                try:
                    predicates.append(self.node(arg.children[0]).fn)
                finally:
                    self.closure_depth -= 1
            else:
                extra = self.node(arg).fn
        try:
            fn, result_type = compile_closure_call(name, items.fn, predicates, extra)
        except ValueError as exc:
            raise self.error(str(exc), tree) from None
        stale = None
        if name in ("findLast", "findLastIndex"):
            stale = backwards_finder(name, items.fn, predicates[0])
        return Node(fn, result_type, stale=stale)
