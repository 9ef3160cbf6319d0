"""The result-type checker: expr-lang's checker pass, run against the Go type of `result`.

Argo compiles every condition with ``expr.Env({"result": value, ...})``, so expr's checker
knows the concrete Go type of the result and rejects, before running anything, operations
that type cannot take — in every branch, including branches that would never run
(``isNil(result) || result[0] > 0.9`` with a nil result fails to compile). This module walks
the parse tree the same way, for one Go type at a time; ``Conditions`` caches the outcome per
(condition, Go type) for the life of a run.

Providers name the Go type they hand to Argo (``Reading.go_type``: ``[]float64`` for a
Prometheus vector even when empty, JSON values by their dynamic type, ``[]types.MetricDataResult``
for CloudWatch); ``type_of_go_name`` reads that name. Where none is given the type is inferred
from the Python value: None is a typed nil, bool/int/float/str their Go kinds, a non-empty list
of floats ``[]float64``, any other list ``[]interface {}``, a mapping ``map[string]interface {}``.
Members of maps and elements of ``[]interface {}`` are unknown, as they are to expr's checker.

The checker only rejects what expr's checker rejects for sure; where in doubt it lets the
evaluator decide at run time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from analysisd.expr.errors import ExprTypeError
from analysisd.expr.go_types import (
    ANY,
    NUMBERS,
    STRUCT_FIELDS,
    Type,
    go_name,
)
from analysisd.expr.go_types import comparable_types as _comparable
from analysisd.expr.go_types import is_array_type as _array
from analysisd.expr.go_types import is_kind as _is
from analysisd.expr.go_types import is_map_type as _map
from analysisd.expr.tree import Token, Tree


# A type is a kind name ("nil", "bool", "int", "float", "string", "any") or a pair
# ("array", element) / ("map", element).
def _error(message: str) -> ExprTypeError:
    return ExprTypeError(message)


_STRING_ARGS = {
    "trim",
    "trimPrefix",
    "trimSuffix",
    "upper",
    "lower",
    "split",
    "splitAfter",
    "replace",
    "indexOf",
    "lastIndexOf",
    "hasPrefix",
    "hasSuffix",
    "fromJSON",
    "toBase64",
    "fromBase64",
    "repeat",
}
_RETURNS: Mapping[str, Type] = {
    "len": "int",
    "int": "int",
    "float": "float",
    "string": "string",
    "type": "string",
    "ceil": "float",
    "floor": "float",
    "round": "float",
    "mean": "float",
    "median": "float",
    "asInt": "int",
    "asFloat": "float",
    "isNaN": "bool",
    "isInf": "bool",
    "isNil": "bool",
    "toJSON": "string",
    "trim": "string",
    "trimPrefix": "string",
    "trimSuffix": "string",
    "upper": "string",
    "lower": "string",
    "replace": "string",
    "indexOf": "int",
    "lastIndexOf": "int",
    "hasPrefix": "bool",
    "hasSuffix": "bool",
    "join": "string",
    "toBase64": "string",
    "fromBase64": "string",
    "repeat": "string",
    "split": ("array", "string"),
    "splitAfter": ("array", "string"),
    "keys": ("array", ANY),
    "values": ("array", ANY),
    "all": "bool",
    "any": "bool",
    "none": "bool",
    "one": "bool",
    "count": "int",
    "filter": ("array", ANY),
    "map": ("array", ANY),
}


class Checker:
    """One walk of one parse tree for one result type."""

    def __init__(self, result: Type) -> None:
        self.result = result
        self.elements: list[Type] = []  # `#` of the enclosing closures, innermost last
        self.variables: dict[str, Type] = {}

    def visit(self, tree: Tree[Token] | Token | None) -> Type:
        if not isinstance(tree, Tree):
            return ANY
        method = getattr(self, f"t_{tree.data}", None)
        if method is None:
            for child in tree.children:
                self.visit(child)
            return ANY
        return method(tree)

    # literals and names

    def t_int_lit(self, tree: Tree[Token]) -> Type:
        return "int"

    def t_float_lit(self, tree: Tree[Token]) -> Type:
        return "float"

    def t_string_lit(self, tree: Tree[Token]) -> Type:
        return "string"

    def t_true_lit(self, tree: Tree[Token]) -> Type:
        return "bool"

    t_false_lit = t_true_lit

    def t_nil_lit(self, tree: Tree[Token]) -> Type:
        return "nil"

    def t_name(self, tree: Tree[Token]) -> Type:
        name = str(tree.children[0])
        if name in self.variables:
            return self.variables[name]
        if name == "result":
            return self.result
        return ("map", ANY) if name == "$env" else ANY

    def t_pointer(self, tree: Tree[Token]) -> Type:
        if tree.children:
            return "int" if str(tree.children[0]) == "index" else ANY
        return self.elements[-1] if self.elements else ANY

    def t_pointer_member(self, tree: Tree[Token]) -> Type:
        base = self.elements[-1] if self.elements else ANY
        return self._member(base, "string", str(tree.children[0].children[0]))  # type: ignore[union-attr]

    def t_array(self, tree: Tree[Token]) -> Type:
        args = tree.children[0]
        kinds = [self.visit(child) for child in args.children] if isinstance(args, Tree) else []
        common = kinds[0] if kinds and all(kind == kinds[0] for kind in kinds) else ANY
        return ("array", common if not isinstance(common, tuple) else ANY)

    def t_map(self, tree: Tree[Token]) -> Type:
        pairs = tree.children[0]
        for pair in pairs.children if isinstance(pairs, Tree) else []:
            if isinstance(pair, Tree):
                for child in pair.children:
                    self.visit(child)
        return ("map", ANY)

    def t_sequence(self, tree: Tree[Token]) -> Type:
        kinds = [self.visit(child) for child in tree.children]
        return kinds[-1]

    def t_let(self, tree: Tree[Token]) -> Type:
        name_token, value, body = tree.children
        name = str(name_token)
        saved = self.variables.get(name, None)
        self.variables[name] = self.visit(value)
        try:
            return self.visit(body)
        finally:
            if saved is None:
                del self.variables[name]
            else:
                self.variables[name] = saved

    # access

    def _member(self, base: Type, key: Type, name: str | None) -> Type:
        if base == ANY:
            return ANY
        if base == "nil":
            if name is not None:
                raise _error(f"type <nil> has no field {name}")
            raise _error(f"type <nil>[{go_name(key)}] is undefined")
        if _map(base):
            if not _is(key, "string", "nil"):
                raise _error(f"cannot use {go_name(key)} to get an element from {go_name(base)}")
            return base[1]
        if _array(base):
            if not _is(key, "int"):
                raise _error(
                    f"array elements can only be selected using an integer (got {go_name(key)})"
                )
            return base[1]
        if isinstance(base, tuple) and base[0] == "struct":
            if name is None:
                if not _is(key, "string"):
                    raise _error(f"type {go_name(base)}[{go_name(key)}] is undefined")
                return ANY  # a field named by a computed string: checked when it runs
            fields = STRUCT_FIELDS.get(base[1], {})
            if name not in fields:
                raise _error(f"type {go_name(base)} has no field {name}")
            return fields[name]
        raise _error(f"type {go_name(base)}[{go_name(key)}] is undefined")

    def t_member(self, tree: Tree[Token]) -> Type:
        base = self.visit(tree.children[0])
        name = str(tree.children[1].children[0])  # type: ignore[union-attr]
        return self._member(base, "string", name)

    def t_opt_member(self, tree: Tree[Token]) -> Type:
        # `?.` forgives a nil value, not a type without that member: a typed nil (from
        # find or get over []float64) is still a float64 to the checker.
        base = self.visit(tree.children[0])
        if base == "nil":
            return ANY
        name = str(tree.children[1].children[0])  # type: ignore[union-attr]
        self._member(base, "string", name)
        return ANY

    def t_index(self, tree: Tree[Token]) -> Type:
        base = self.visit(tree.children[0])
        key = self.visit(tree.children[1])
        return self._member(base, key, None)

    def t_opt_index(self, tree: Tree[Token]) -> Type:
        base = self.visit(tree.children[0])
        key = self.visit(tree.children[1])
        if base != "nil":
            self._member(base, key, None)
        return ANY

    def t_slice(self, tree: Tree[Token]) -> Type:
        base = self.visit(tree.children[0])
        for bound in tree.children[1:]:
            if isinstance(bound, Tree) and bound.children:
                kind = self.visit(bound.children[0])
                if not _is(kind, "int"):
                    raise _error(f"non-integer slice index {go_name(kind)}")
        if base == ANY or base == "string" or _array(base):
            return base
        raise _error(f"cannot slice {go_name(base)}")

    # operators

    def t_logic_not(self, tree: Tree[Token]) -> Type:
        kind = self.visit(tree.children[1])
        if not _is(kind, "bool"):
            raise _error(f"invalid operation: ! (mismatched type {go_name(kind)})")
        return "bool"

    def t_sign(self, tree: Tree[Token]) -> Type:
        kind = self.visit(tree.children[1])
        if not _is(kind, *NUMBERS):
            op = str(tree.children[0])
            raise _error(f"invalid operation: {op} (mismatched type {go_name(kind)})")
        return kind

    def _logic(self, tree: Tree[Token]) -> Type:
        left = self.visit(tree.children[0])
        right = self.visit(tree.children[2])
        op = str(tree.children[1])
        for kind in (left, right):
            if not _is(kind, "bool"):
                raise _error(
                    f"invalid operation: {op} (mismatched types {go_name(left)} and "
                    f"{go_name(right)})"
                )
        return "bool"

    t_logic_and = _logic
    t_logic_or = _logic

    def t_compare(self, tree: Tree[Token]) -> Type:
        left = self.visit(tree.children[0])
        right = self.visit(tree.children[2])
        op = str(tree.children[1])
        mismatch = _error(
            f"invalid operation: {op} (mismatched types {go_name(left)} and {go_name(right)})"
        )
        if op in ("==", "!="):
            if not _comparable(left, right):
                raise mismatch
        elif op in ("<", ">", "<=", ">="):
            numbers = _is(left, *NUMBERS) and _is(right, *NUMBERS)
            strings = _is(left, "string") and _is(right, "string")
            if not (numbers or strings):
                raise mismatch
        elif op == "in":
            if _array(right):
                if not _comparable(left, right[1]):
                    raise mismatch
            elif _map(right):
                if not _is(left, "string", "nil"):
                    raise mismatch
            elif right != ANY:
                raise mismatch
        elif not (_is(left, "string") and _is(right, "string")):
            raise mismatch
        return "bool"

    def t_arith(self, tree: Tree[Token]) -> Type:
        left = self.visit(tree.children[0])
        right = self.visit(tree.children[2])
        op = str(tree.children[1])
        if op == "+" and _is(left, "string") and _is(right, "string") and "string" in (left, right):
            return "string"
        allowed = ("int",) if op == "%" else NUMBERS
        if not (_is(left, *allowed) and _is(right, *allowed)):
            raise _error(
                f"invalid operation: {op} (mismatched types {go_name(left)} and {go_name(right)})"
            )
        if op in ("/", "**", "^"):
            return "float"
        if ANY in (left, right):
            return ANY
        return "int" if left == right == "int" else "float"

    def t_range(self, tree: Tree[Token]) -> Type:
        for child in tree.children:
            kind = self.visit(child)
            if not _is(kind, "int"):
                raise _error(f"invalid operation: .. (mismatched type {go_name(kind)})")
        return ("array", "int")

    def t_coalesce(self, tree: Tree[Token]) -> Type:
        left = self.visit(tree.children[0])
        right = self.visit(tree.children[1])
        return left if left == right else ANY

    def t_ternary(self, tree: Tree[Token]) -> Type:
        condition = self.visit(tree.children[0])
        if not _is(condition, "bool"):
            raise _error(f"non-bool expression (type {go_name(condition)}) used as condition")
        yes = self.visit(tree.children[1])
        no = self.visit(tree.children[2])
        return yes if yes == no else ANY

    # calls

    def t_call(self, tree: Tree[Token]) -> Type:
        name = str(tree.children[0])
        args_tree = tree.children[1]
        args = list(args_tree.children) if isinstance(args_tree, Tree) else []
        if any(isinstance(arg, Tree) and arg.data == "closure" for arg in args):
            return self._closure_call(name, args)
        kinds = [self.visit(arg) for arg in args]
        if name == "get" and len(kinds) == 2:
            return self._get(*kinds)
        self._check_args(name, kinds)
        if name in ("first", "last") and kinds and _array(kinds[0]):
            return kinds[0][1]
        if name in ("max", "min", "mean", "median") and kinds:
            # builtin validateAggregateFunc: numbers only -> the first argument's type
            if all(kind in NUMBERS for kind in kinds):
                return kinds[0]
            return ANY
        return _RETURNS.get(name, ANY)

    def _get(self, base: Type, key: Type) -> Type:
        """checker.checkBuiltinGet: typed like an index; a miss is a nil of that type."""
        if base == ANY:
            return ANY
        if _array(base):
            if not _is(key, "int"):
                raise _error(f"non-integer slice index {go_name(key)}")
            return base[1]
        if _map(base):
            if not _is(key, "string"):
                raise _error(f"cannot use {go_name(key)} to get an element from {go_name(base)}")
            return base[1]
        raise _error(f"type {go_name(base)} does not support indexing")

    def _check_args(self, name: str, kinds: list[Type]) -> None:
        def bad(kind: Type) -> ExprTypeError:
            return _error(f"invalid argument for {name} (type {go_name(kind)})")

        if (
            name == "len"
            and kinds
            and not (_is(kinds[0], "string") or _array(kinds[0]) or _map(kinds[0]))
        ):
            raise bad(kinds[0])
        rounding = ("abs", "ceil", "floor", "round", "isNaN", "isInf")
        if name in rounding and kinds and not _is(kinds[0], *NUMBERS):
            raise bad(kinds[0])
        if name in ("int", "float") and kinds and not _is(kinds[0], *NUMBERS, "string"):
            raise bad(kinds[0])
        if name in ("max", "min", "mean", "median"):
            for kind in kinds:
                if not (_is(kind, *NUMBERS) or _array(kind)):
                    raise bad(kind)
        if name in ("sum", "count") and kinds and not (kinds[0] == ANY or _array(kinds[0])):
            raise _error(f"builtin {name} takes only array (got {go_name(kinds[0])})")
        if name in ("first", "last") and kinds and not (kinds[0] == ANY or _array(kinds[0])):
            raise _error(f"cannot get {name} element from {go_name(kinds[0])}")
        if name in ("keys", "values") and kinds and not (kinds[0] == ANY or _map(kinds[0])):
            raise bad(kinds[0])
        if name in _STRING_ARGS and kinds and not _is(kinds[0], "string"):
            raise _error(f"cannot use {go_name(kinds[0])} as argument (type string) to call {name}")

    def _closure_call(self, name: str, args: list[Any]) -> Type:
        collection = self.visit(args[0])
        if not (collection == ANY or _array(collection)):
            raise _error(f"builtin {name} takes only array (got {go_name(collection)})")
        element = collection[1] if _array(collection) else ANY
        body_type: Type = ANY
        for arg in args[1:]:
            if isinstance(arg, Tree) and arg.data == "closure":
                self.elements.append(element)
                try:
                    body_type = self.visit(arg.children[0])
                finally:
                    self.elements.pop()
            else:
                self.visit(arg)
        predicates = ("all", "any", "none", "one", "filter", "find", "findIndex", "findLast")
        if name in predicates and not _is(body_type, "bool"):
            raise _error(f"predicate should return boolean (got {go_name(body_type)})")
        if name in ("filter", "sortBy"):
            return collection if collection != ANY else ("array", ANY)
        if name in ("find", "findLast"):
            return element
        return _RETURNS.get(name, ANY)


def check_tree(tree: Tree[Token], result_type: Type) -> None:
    """Raise ExprTypeError if expr's checker would reject the tree for this result type."""
    Checker(result_type).visit(tree)
