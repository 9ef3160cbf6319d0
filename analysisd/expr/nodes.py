"""Compiled nodes, static types and the compiler's shared plumbing.

A compiled node is a function of one frame, a list ``[env, it, budget]``: the
environment, the closure element ``#`` and the remaining iteration budget. Its static type
is known where literals and function results make it so ("any" otherwise); ``is_result``
marks the bare name ``result``, whose Go type Argo's checker knows exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from analysisd.expr import values as v
from analysisd.expr.closures import Fn, Frame
from analysisd.expr.errors import ExprSyntaxError, ExprTypeError
from analysisd.expr.tree import Token, Tree

# One value per static type, to ask the runtime operations whether a pairing is legal.
SAMPLES: Mapping[str, Any] = {
    "int": 1,
    "float": 1.0,
    "string": "",
    "bool": True,
    "nil": None,
    "array": [],
    "map": {},
}
NO_CONST = object()


@dataclass(frozen=True, slots=True)
class Node:
    fn: Fn
    type: str = "any"  # int, float, string, bool, nil, array, map or any
    is_result: bool = False
    # For a loop expr-lang v1.17.8 runs backwards (findLast, findLastIndex, and
    # last(filter(...)) / filter(...)[-1] after its optimiser): (value, stale) where stale
    # is the loop test's bool emitLoopBackwards leaves under the value (true after a
    # match, false after none). An operator that pops two values takes it as its left
    # operand: Argo users live with that bug, so it is reproduced (expr-lang#950).
    stale: Fn | None = None


def const(value: Any, static: str) -> Node:
    def constant(frame: Frame) -> Any:
        return value

    constant.constant = value  # type: ignore[attr-defined]
    return Node(constant, static)


def static_type_of(value: Any) -> str:
    """The static type name of a runtime value."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if v.is_array(value):
        return "array"
    return "map" if isinstance(value, Mapping) else "any"


def comparable(left: str, right: str) -> bool:
    """Whether Go's checker lets `==` compare values of these static types."""
    if "any" in (left, right) or "nil" in (left, right) or left == right:
        return True
    return {left, right} <= {"int", "float"}


def go_name(static: str) -> str:
    if static not in SAMPLES:
        return "interface {}"
    return v.go_type(SAMPLES[static])


def column_of(item: Tree[Token] | Token | None) -> int:
    if isinstance(item, Token):
        return item.column or 0
    if isinstance(item, Tree) and not item.meta.empty:
        return item.meta.column
    return 0


class CompilerBase:
    """Error reporting, dispatch and static checks shared by the node compilers."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.closure_depth = 0
        self.variables: dict[str, int] = {}  # `let` name -> frame slot
        self.variable_types: dict[str, str] = {}
        self.variable_count = 0

    def error(self, message: str, where: Tree[Token] | Token | None) -> ExprSyntaxError:
        column = column_of(where)
        return ExprSyntaxError(message, source=self.source, column=column or 1)

    def node(self, tree: Tree[Token] | Token) -> Node:
        if isinstance(tree, Token):
            raise self.error(f"unexpected token {str(tree)!r}", tree)
        method: Callable[[Tree[Token]], Node] | None = getattr(self, f"n_{tree.data}", None)
        if method is None:
            raise self.error(f"unsupported syntax {tree.data!s}", tree)
        return method(tree)

    def static_bool(self, op: str, operand: Node, where: Tree[Token]) -> None:
        if operand.type not in ("any", "bool"):
            raise self.error(
                f"invalid operation: {op} (mismatched types {go_name(operand.type)} and bool)",
                where,
            )

    def static_try(self, attempt: Callable[[], Any], where: Tree[Token]) -> None:
        try:
            attempt()
        except ExprTypeError as exc:
            raise self.error(str(exc), where) from None

    def stale_operands(self, left: Node, right: Node) -> tuple[Node, Node]:
        """The operands as expr-lang's VM pops them (see Node.stale): unchanged, except when
        the right one is a backwards loop, whose stale bool is popped as the left operand
        (the left one is still evaluated first). Static types stay those of the tree."""
        if right.stale is None:
            return left, right
        evaluate_left, evaluate_right = left.fn, right.stale

        def stale_left(frame: Frame) -> Any:
            evaluate_left(frame)
            value, below = evaluate_right(frame)
            frame.append(value)  # handed to the right operand, read straight after
            return below

        def right_value(frame: Frame) -> Any:
            return frame.pop()

        return Node(stale_left, left.type), Node(right_value, right.type)

    def samples(self, left: Node, right: Node) -> tuple[Any, Any]:
        return SAMPLES[left.type], SAMPLES[right.type]
