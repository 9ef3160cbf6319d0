"""Compiling operators: logic, comparison, arithmetic, ranges, `??` and `?:`."""

from __future__ import annotations

import operator
from typing import Any

from analysisd.expr import values as v
from analysisd.expr.closures import Fn, Frame, spend
from analysisd.expr.errors import ExprTypeError
from analysisd.expr.nodes import (
    NO_CONST,
    CompilerBase,
    Node,
    comparable,
    const,
    go_name,
    static_type_of,
)
from analysisd.expr.operators import ARITH, STRING_TESTS, static_arith_type
from analysisd.expr.tree import Token, Tree
from providers.gocompat import GoError, compile_regexp

_ORDER = {"<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge}


_STRICT_EQUALITY: dict[str, type] = {"int": int, "string": str}


def _is_as_int(tree: Any) -> bool:
    # Argo's asInt returns int64, not int: equalBinaryNode's OpEqualInt is for int only
    return isinstance(tree, Tree) and tree.data == "call" and str(tree.children[0]) == "asInt"


def _against_number(op: str, first: Fn, bound: Any) -> Fn:
    """`x OP 0.95`: one closure per operator, so the hot path makes no further call.

    Go compares an int with a float64 as float64 and Python compares them exactly; the two
    agree whenever the int converts to float64 exactly. So a float takes the fast path
    against any bound an int bound that exact (|bound| <= 2^53), an int only against an int
    bound; the rest goes through v.less, which converts as Go does."""
    fast_a: type = float
    fast_b: type = int if type(bound) is int else float
    if type(bound) is int and abs(bound) > 2**53:
        fast_a = int
    if op == ">=":

        def at_least(frame: Frame) -> bool:
            value = first(frame)
            kind = type(value)
            if kind is fast_a or kind is fast_b:
                outcome: bool = value >= bound
                return outcome
            return v.less(op, value, bound)

        return at_least
    if op == ">":

        def above(frame: Frame) -> bool:
            value = first(frame)
            kind = type(value)
            if kind is fast_a or kind is fast_b:
                outcome: bool = value > bound
                return outcome
            return v.less(op, value, bound)

        return above
    if op == "<=":

        def at_most(frame: Frame) -> bool:
            value = first(frame)
            kind = type(value)
            if kind is fast_a or kind is fast_b:
                outcome: bool = value <= bound
                return outcome
            return v.less(op, value, bound)

        return at_most

    def below(frame: Frame) -> bool:
        value = first(frame)
        kind = type(value)
        if kind is fast_a or kind is fast_b:
            outcome: bool = value < bound
            return outcome
        return v.less(op, value, bound)

    return below


def _string_literals(tree: Any) -> bool:
    """A non-empty array literal of string literals only."""
    if not (isinstance(tree, Tree) and tree.data == "array" and isinstance(tree.children[0], Tree)):
        return False
    items = tree.children[0].children
    return bool(items) and all(
        isinstance(item, Tree) and item.data == "string_lit" for item in items
    )


def _fold_logic(stop_at: bool, left: Node, right: Node) -> Node | None:
    """optimizer/fold.go: a literal operand decides `and`/`or` at compile time, so
    `x or true` is true and `x and false` is false without evaluating (or typing) x, and
    `x and true` / `x or false` are x itself."""
    a = getattr(left.fn, "constant", NO_CONST)
    b = getattr(right.fn, "constant", NO_CONST)
    if not stop_at:  # and
        if a is True:
            return right
        if b is True:
            return left
        if a is False or b is False:
            return const(False, "bool")
        return None
    if a is False:
        return right
    if b is False:
        return left
    if a is True or b is True:
        return const(True, "bool")
    return None


class OperatorNodes(CompilerBase):
    """Node compilers for the operator rules of the grammar."""

    def n_logic_not(self, tree: Tree[Token]) -> Node:
        operand = self.node(tree.children[1])
        self.static_bool("!", operand, tree)
        get = operand.fn
        constant = getattr(get, "constant", NO_CONST)
        if constant is True or constant is False:  # optimizer/fold.go folds !true
            return const(not constant, "bool")
        return Node(lambda frame: not v.truth("!", get(frame)), "bool")

    def n_sign(self, tree: Tree[Token]) -> Node:
        op = str(tree.children[0])
        operand = self.node(tree.children[1])
        if operand.type not in ("any", "int", "float"):
            raise self.error(
                f"invalid operation: {op} (mismatched type {go_name(operand.type)})", tree
            )
        if op == "+":
            return operand  # expr-lang compiles unary + to nothing
        apply = v.negate
        get = operand.fn
        constant = getattr(get, "constant", NO_CONST)
        if constant is not NO_CONST:
            return const(apply(constant), operand.type)
        return Node(lambda frame: apply(get(frame)), operand.type)

    def n_logic_and(self, tree: Tree[Token]) -> Node:
        return self._logic(tree, "&&", stop_at=False)

    def n_logic_or(self, tree: Tree[Token]) -> Node:
        return self._logic(tree, "||", stop_at=True)

    def _logic(self, tree: Tree[Token], op: str, *, stop_at: bool) -> Node:
        left = self.node(tree.children[0])
        right = self.node(tree.children[2])
        self.static_bool(op, left, tree)
        self.static_bool(op, right, tree)
        first, second = left.fn, right.fn
        folded = _fold_logic(stop_at, left, right)
        if folded is not None:
            return folded

        def logic_and(frame: Frame) -> bool:
            value = first(frame)
            if value is False:
                return False
            if value is not True:
                raise v.mismatch(op, value, True)
            outcome: bool = second(frame)
            if outcome is True or outcome is False:
                return outcome
            raise v.mismatch(op, True, outcome)

        def logic_or(frame: Frame) -> bool:
            value = first(frame)
            if value is True:
                return True
            if value is not False:
                raise v.mismatch(op, value, False)
            outcome: bool = second(frame)
            if outcome is True or outcome is False:
                return outcome
            raise v.mismatch(op, False, outcome)

        return Node(logic_or if stop_at else logic_and, "bool")

    def n_compare(self, tree: Tree[Token]) -> Node:
        op = str(tree.children[1])
        left, right = self.stale_operands(self.node(tree.children[0]), self.node(tree.children[2]))
        first, second = left.fn, right.fn
        known = left.type != "any" and right.type != "any"
        if op in ("==", "!="):
            return self._equality(op, left, right, tree)
        if op in _ORDER:
            return self._ordering(op, left, right, tree)
        test = STRING_TESTS.get(op)
        if test is not None:
            if (known or "nil" in (left.type, right.type)) and not (
                {left.type, right.type} <= {"string", "any"}
            ):
                raise self.error(
                    f"invalid operation: {op} (mismatched types "
                    f"{go_name(left.type)} and {go_name(right.type)})",
                    tree,
                )
            pattern = getattr(second, "constant", NO_CONST)
            if op == "matches" and isinstance(pattern, str):
                try:  # a constant pattern is compiled with the expression, as expr-lang does
                    compile_regexp(pattern)
                except GoError as exc:
                    raise self.error(str(exc), tree) from None
            return Node(lambda frame: test(op, first(frame), second(frame)), "bool")
        # op == "in"
        if known:
            self.static_try(lambda: v.contained(*self.samples(left, right)), tree)
        if _string_literals(tree.children[2]):
            # optimizer/in_array.go turns `x in ["a", "b"]` into a map[string] lookup, where
            # a key of another type is a run-time error rather than false (nil looks up "").
            def in_strings(frame: Frame) -> bool:
                needle = first(frame)
                if needle is None:
                    needle = ""  # reflect.Zero of the key type
                elif not isinstance(needle, str):
                    raise ExprTypeError(f"cannot use {v.go_type(needle)} as type string as map key")
                return v.contained(needle, second(frame))

            return Node(in_strings, "bool")
        return Node(lambda frame: v.contained(first(frame), second(frame)), "bool")

    def n_not_in(self, tree: Tree[Token]) -> Node:
        inner = self.n_compare(
            Tree("compare", [tree.children[0], Token("CMP_OP", "in"), tree.children[1]], tree.meta)
        )
        get = inner.fn
        return Node(lambda frame: not get(frame), "bool")

    def _equality(self, op: str, left: Node, right: Node, tree: Tree[Token]) -> Node:
        if not comparable(left.type, right.type):
            raise self.error(str(v.mismatch(op, *self.samples(left, right))), tree)
        first, second = left.fn, right.fn
        negate = op == "!="
        # Argo compiles with the result's concrete Go type, so `result == "x"` with a bool
        # result is a type error there, not false: check the bare result's runtime type.
        typed = (
            (left, right.type)
            if left.is_result
            else (right, left.type)
            if right.is_result
            else None
        )
        if typed is not None and typed[1] not in ("any", "nil"):
            result_first, other_type = left.is_result, typed[1]

            def typed_equality(frame: Frame) -> bool:
                a, b = first(frame), second(frame)
                mine = static_type_of(a if result_first else b)
                if not comparable(mine, other_type):
                    raise v.mismatch(op, a, b)
                return v.equal(a, b) is not negate

            return Node(typed_equality, "bool")
        if (
            left.type == right.type
            and left.type in _STRICT_EQUALITY
            and not any(_is_as_int(tree.children[i]) for i in (0, 2))
        ):
            # compiler.equalBinaryNode: two statically int (or string) operands compile to
            # OpEqualInt / OpEqualString, which assert the Go type of both values at run
            # time (`median(1) == 1` fails there: median returns a float64).
            kind = _STRICT_EQUALITY[left.type]

            def strict_equality(frame: Frame) -> bool:
                a, b = first(frame), second(frame)
                for value in (a, b):
                    if type(value) is not kind:
                        raise ExprTypeError(
                            f"interface conversion: interface {{}} is {v.go_type(value)}, "
                            f"not {go_name(left.type)}"
                        )
                return (a == b) is not negate

            return Node(strict_equality, "bool")
        if negate:
            return Node(lambda frame: not v.equal(first(frame), second(frame)), "bool")
        return Node(lambda frame: v.equal(first(frame), second(frame)), "bool")

    def _ordering(self, op: str, left: Node, right: Node, tree: Tree[Token]) -> Node:
        if left.type != "any" and right.type != "any":
            self.static_try(lambda: v.less(op, *self.samples(left, right)), tree)
        first, second = left.fn, right.fn
        constant = getattr(second, "constant", NO_CONST)
        if v.is_number(constant):
            return Node(_against_number(op, first, constant), "bool")

        def ordering(frame: Frame) -> bool:
            return v.less(op, first(frame), second(frame))

        return Node(ordering, "bool")

    def n_arith(self, tree: Tree[Token]) -> Node:
        op = str(tree.children[1])
        left, right = self.stale_operands(self.node(tree.children[0]), self.node(tree.children[2]))
        apply = ARITH[op]
        result_type = "any"
        if left.type != "any" and right.type != "any":
            self.static_try(lambda: apply(*self.samples(left, right)), tree)
            result_type = static_arith_type(op, left.type, right.type)
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
                    f"invalid operation: .. (mismatched type {go_name(side.type)})", tree
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
        self.static_bool("?:", condition, tree)
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
