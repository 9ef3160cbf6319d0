"""expr-lang's precedence-climbing parser, ported rule for rule (parser/parser.go of
v1.17.8; the lexer is lexer.py), producing ``Tree``/``Token`` values (tree.py) for the compiler.

What expr's own parser does, this one does: numbers like `.5` and `1.`, `//` and `/* */`
comments, chained comparisons (`0 < x < 1` is `0 < x && x < 1`), `not in` / `not contains`
/ `not startsWith` / `not endsWith` / `not matches`, `??` (which may not be mixed with other
binary operators without parentheses), `;` sequences, `let`, the pipe `|`, `::name()`,
`a ?: b`, `#index` / `#acc`, and predicates (`{...}` is always a closure where a builtin
takes a predicate).
"""

from __future__ import annotations

from typing import Any

from analysisd.expr.errors import ExprSyntaxError
from analysisd.expr.lexer import Lexeme, Lexer
from analysisd.expr.tree import Meta, Token, Tree

MAX_DEPTH = 200

# name -> precedence, right-associative?
BINARY: dict[str, tuple[int, bool]] = {
    "|": (0, False),
    "or": (10, False),
    "||": (10, False),
    "and": (15, False),
    "&&": (15, False),
    "==": (20, False),
    "!=": (20, False),
    "<": (20, False),
    ">": (20, False),
    ">=": (20, False),
    "<=": (20, False),
    "in": (20, False),
    "matches": (20, False),
    "contains": (20, False),
    "startsWith": (20, False),
    "endsWith": (20, False),
    "..": (25, False),
    "+": (30, False),
    "-": (30, False),
    "*": (60, False),
    "/": (60, False),
    "%": (60, False),
    "**": (100, True),
    "^": (100, True),
    "??": (500, False),
}
UNARY = {"not": 50, "!": 50, "-": 90, "+": 90}
ORDERING = frozenset({"<", ">", ">=", "<="})
NEGATABLE = frozenset({"in", "matches", "contains", "startsWith", "endsWith"})
# builtin -> argument kinds: e (expression), p (predicate); upper case = optional
PREDICATES: dict[str, str] = {
    "all": "ep",
    "none": "ep",
    "any": "ep",
    "one": "ep",
    "filter": "ep",
    "map": "ep",
    "count": "eP",
    "sum": "eP",
    "find": "ep",
    "findIndex": "ep",
    "findLast": "ep",
    "findLastIndex": "ep",
    "groupBy": "ep",
    "sortBy": "epE",
    "reduce": "epE",
}


def _tree(data: str, children: list[Any], meta: Meta | None = None) -> Tree[Token]:
    return Tree(data, children, meta)


def _meta(lexeme: Lexeme) -> Meta:
    meta = Meta()
    meta.line = lexeme.line
    meta.column = lexeme.column
    meta.empty = False
    return meta


def _tok(kind: str, lexeme: Lexeme, value: str | None = None) -> Token:
    return Token(
        kind,
        lexeme.value if value is None else value,
        start_pos=lexeme.offset,
        line=lexeme.line,
        column=lexeme.column,
    )


class Parser:
    """parser/parser.go: parseExpression with precedence climbing, errors at the first problem."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = Lexer(source).lex()
        self.pos = 0
        self.predicate_depth = 0
        self.depth = 0

    @property
    def current(self) -> Lexeme:
        return self.tokens[self.pos]

    def is_op(self, *values: str) -> bool:
        token = self.current
        return token.kind == "op" and (not values or token.value in values)

    def is_bracket(self, value: str) -> bool:
        return self.current.kind == "bracket" and self.current.value == value

    def error(self, message: str, lexeme: Lexeme | None = None) -> ExprSyntaxError:
        at = lexeme or self.current
        return ExprSyntaxError(message, source=self.source, column=at.column, line=at.line)

    def unexpected(self) -> ExprSyntaxError:
        token = self.current
        if token.kind == "eof":
            return self.error("unexpected end of expression")
        return self.error(f"unexpected token {token.value!r}")

    def advance(self) -> Lexeme:
        token = self.current
        if token.kind != "eof":
            self.pos += 1
        return token

    def expect_op(self, value: str) -> Lexeme:
        if not self.is_op(value):
            raise self.unexpected()
        return self.advance()

    def expect_bracket(self, value: str) -> Lexeme:
        if not self.is_bracket(value):
            raise self.unexpected()
        return self.advance()

    def parse(self) -> Tree[Token]:
        node = self.sequence()
        if self.current.kind != "eof":
            raise self.unexpected()
        return node

    def sequence(self) -> Tree[Token]:
        first = self.current
        nodes = [self.expression(0)]
        while self.is_op(";"):
            self.advance()
            if self.current.kind == "eof" or self.is_bracket("}"):
                break
            nodes.append(self.expression(0))
        if len(nodes) == 1:
            return nodes[0]
        return _tree("sequence", list(nodes), _meta(first))

    def expression(self, precedence: int) -> Tree[Token]:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"expression nested too deeply (more than {MAX_DEPTH} levels)")
        try:
            return self._expression(precedence)
        finally:
            self.depth -= 1

    def _expression(self, precedence: int) -> Tree[Token]:
        if precedence == 0 and self.is_op("let"):
            return self.let()
        left = self.primary()
        previous = ""
        while self.current.kind == "op":
            op_token = self.current
            negate: Lexeme | None = None
            if op_token.value == "not":
                after = self.tokens[self.pos + 1]
                if after.kind == "op" and after.value in NEGATABLE:
                    if BINARY[after.value][0] < precedence:
                        break
                    negate = op_token
                    self.advance()
                    op_token = self.current
                else:
                    self.advance()
                    raise self.unexpected()
            entry = BINARY.get(op_token.value)
            if entry is None or entry[0] < precedence:
                break
            op_precedence, right_assoc = entry
            self.advance()
            op = op_token.value
            if op == "|":
                name = self.current
                if name.kind != "ident":
                    raise self.unexpected()
                self.advance()
                left = self.call(name, [left])
                previous = op
                continue
            if previous == "??" and op != "??":
                raise self.error(
                    f"Operator ({op}) and coalesce expressions (??) cannot be mixed. "
                    "Wrap either by parentheses.",
                    op_token,
                )
            if op in ORDERING:
                left = self.comparison(left, op_token, op_precedence)
            else:
                right = self.expression(op_precedence if right_assoc else op_precedence + 1)
                left = self.binary(op_token, left, right)
            if negate is not None:
                left = _tree("logic_not", [_tok("NOT", negate), left], _meta(negate))
            previous = op
        if precedence == 0:
            left = self.conditional(left)
        return left

    def binary(self, op: Lexeme, left: Tree[Token], right: Tree[Token]) -> Tree[Token]:
        meta = _meta(op)
        value = op.value
        if value in ("or", "||"):
            return _tree("logic_or", [left, _tok("OR", op), right], meta)
        if value in ("and", "&&"):
            return _tree("logic_and", [left, _tok("AND", op), right], meta)
        if value == "..":
            return _tree("range", [left, right], meta)
        if value == "??":
            return _tree("coalesce", [left, right], meta)
        if value in ("==", "!=", "in", "matches", "contains", "startsWith", "endsWith"):
            return _tree("compare", [left, _tok("CMP_OP", op), right], meta)
        return _tree("arith", [left, _tok("OP", op), right], meta)

    def comparison(self, left: Tree[Token], op: Lexeme, precedence: int) -> Tree[Token]:
        root: Tree[Token] | None = None
        while True:
            comparator = self.expression(precedence + 1)
            node = _tree("compare", [left, _tok("CMP_OP", op), comparator], _meta(op))
            if root is None:
                root = node
            else:
                root = _tree("logic_and", [root, Token("AND", "&&"), node], _meta(op))
            left = comparator
            if not (self.current.kind == "op" and self.current.value in ORDERING):
                return root
            op = self.advance()

    def let(self) -> Tree[Token]:
        self.expect_op("let")
        name = self.current
        if name.kind != "ident":
            raise self.unexpected()
        self.advance()
        self.expect_op("=")
        value = self.expression(0)
        self.expect_op(";")
        body = self.sequence()
        return _tree("let", [_tok("NAME", name), value, body], _meta(name))

    def conditional(self, node: Tree[Token]) -> Tree[Token]:
        while self.is_op("?"):
            question = self.advance()
            if self.is_op(":"):
                self.advance()
                yes, no = node, self.expression(0)
            else:
                yes = self.expression(0)
                self.expect_op(":")
                no = self.expression(0)
            node = _tree("ternary", [node, yes, no], _meta(question))
        return node

    def primary(self) -> Tree[Token]:
        token = self.current
        if token.kind == "op" and token.value in UNARY:
            self.advance()
            operand = self.expression(UNARY[token.value])
            if token.value in ("not", "!"):
                node = _tree("logic_not", [_tok("NOT", token), operand], _meta(token))
            else:
                node = _tree("sign", [_tok("ADD_OP", token), operand], _meta(token))
            return self.postfix(node)
        if self.is_bracket("("):
            self.advance()
            inner = self.expression(0)
            self.expect_bracket(")")
            return self.postfix(inner)
        if token.kind == "op" and token.value in ("#", "."):
            if not self.predicate_depth:
                raise self.error("cannot use pointer accessor outside predicate")
            self.advance()
            if token.value == "#":
                children: list[Token | Tree[Token]] = []
                if self.current.kind == "ident":
                    children.append(_tok("NAME", self.advance()))
                return self.postfix(_tree("pointer", children, _meta(token)))
            member = self.member_name()
            return self.postfix(_tree("pointer_member", [member], _meta(token)))
        if token.kind == "op" and token.value == "::":
            self.advance()
            name = self.current
            if name.kind != "ident":
                raise self.unexpected()
            self.advance()
            return self.postfix(self.call(name, []))
        return self.secondary()

    def secondary(self) -> Tree[Token]:
        token = self.current
        meta = _meta(token)
        if token.kind == "ident":
            self.advance()
            if token.value == "true":
                return _tree("true_lit", [], meta)
            if token.value == "false":
                return _tree("false_lit", [], meta)
            if token.value == "nil":
                return _tree("nil_lit", [], meta)
            if self.is_bracket("("):
                node = self.call(token, [])
            else:
                node = _tree("name", [_tok("NAME", token)], meta)
        elif token.kind == "number":
            self.advance()
            lowered = token.value.lower()
            is_float = not lowered.startswith("0x") and ("." in lowered or "e" in lowered)
            node = _tree(
                "float_lit" if is_float else "int_lit",
                [_tok("FLOAT" if is_float else "INT", token)],
                meta,
            )
            return node
        elif token.kind == "string":
            self.advance()
            node = _tree("string_lit", [_tok("STRING", token)], meta)
        elif self.is_bracket("["):
            node = self.array()
        elif self.is_bracket("{"):
            node = self.map()
        else:
            raise self.unexpected()
        return self.postfix(node)

    def call(self, name: Lexeme, arguments: list[Tree[Token]]) -> Tree[Token]:
        kinds = PREDICATES.get(name.value)
        self.expect_bracket("(")
        args = list(arguments)
        if kinds is not None:
            for position_, kind in enumerate(kinds[len(arguments) :]):
                if self.is_bracket(")"):
                    if kind.isupper():
                        break
                    raise self.error(f"expected at least {len(kinds) - len(arguments)} arguments")
                if position_ > 0:
                    self.expect_op(",")
                args.append(self.predicate() if kind.lower() == "p" else self.expression(0))
            if self.is_op(","):
                self.advance()
        else:
            while not self.is_bracket(")"):
                if len(args) > len(arguments):
                    self.expect_op(",")
                if self.is_bracket(")"):
                    break
                args.append(self.expression(0))
        self.expect_bracket(")")
        children: list[Token | Tree[Token]] = [_tok("NAME", name)]
        children.append(_tree("args", list(args), _meta(name)) if args else _tree("args", []))
        return _tree("call", children, _meta(name))

    def predicate(self) -> Tree[Token]:
        start = self.current
        braces = self.is_bracket("{")
        if braces:
            self.advance()
        self.predicate_depth += 1
        try:
            body = self.sequence() if braces else self.expression(0)
        finally:
            self.predicate_depth -= 1
        if braces:
            self.expect_bracket("}")
        return _tree("closure", [body], _meta(start))

    def array(self) -> Tree[Token]:
        start = self.expect_bracket("[")
        items: list[Tree[Token]] = []
        while not self.is_bracket("]"):
            if items:
                self.expect_op(",")
                if self.is_bracket("]"):
                    break
            items.append(self.expression(0))
        self.expect_bracket("]")
        args = _tree("args", list(items), _meta(start)) if items else None
        return _tree("array", [args], _meta(start))

    def map(self) -> Tree[Token]:
        start = self.expect_bracket("{")
        pairs: list[Tree[Token]] = []
        while not self.is_bracket("}"):
            if pairs:
                self.expect_op(",")
                if self.is_bracket("}"):
                    break
                if self.is_op(","):
                    raise self.unexpected()
            key_token = self.current
            key: Token | Tree[Token]
            if key_token.kind == "string":
                key = _tok("STRING_KEY", self.advance())
            elif key_token.kind in ("number", "ident") or (
                key_token.kind == "op" and key_token.value.isalpha()
            ):
                key = _tok("KEY", self.advance())
            elif self.is_bracket("("):
                key = _tree("key_expr", [self.expression(0)], _meta(key_token))
            else:
                raise self.error(
                    "a map key must be a quoted string, a number, a identifier, or an "
                    f"expression enclosed in parentheses (unexpected token {key_token.value!r})"
                )
            self.expect_op(":")
            value = self.expression(0)
            pairs.append(_tree("pair", [key, value], _meta(key_token)))
        self.expect_bracket("}")
        return _tree("map", [Tree("pairs", list(pairs)) if pairs else None], _meta(start))

    def member_name(self) -> Tree[Token]:
        token = self.current
        if token.kind == "ident" or (token.kind == "op" and token.value.isalpha()):
            self.advance()
            return _tree("member", [_tok("NAME", token)], _meta(token))
        raise self.error("expected name")

    def postfix(self, node: Tree[Token]) -> Tree[Token]:
        while True:
            token = self.current
            if token.kind == "op" and token.value in (".", "?."):
                optional = token.value == "?."
                self.advance()
                if optional and self.is_bracket("["):
                    node = self.index(node, optional=True)
                    continue
                member = self.member_name()
                if self.is_bracket("("):
                    raise self.error("method calls are not supported", token)
                node = _tree("opt_member" if optional else "member", [node, member], _meta(token))
            elif token.kind == "bracket" and token.value == "[":
                node = self.index(node, optional=False)
            else:
                return node

    def index(self, node: Tree[Token], *, optional: bool) -> Tree[Token]:
        start = self.expect_bracket("[")
        meta = _meta(start)
        if self.is_op(":"):
            self.advance()
            high = None if self.is_bracket("]") else self.expression(0)
            self.expect_bracket("]")
            return _tree("slice", [node, _bound(None), _bound(high)], meta)
        low = self.expression(0)
        if self.is_op(":"):
            self.advance()
            high = None if self.is_bracket("]") else self.expression(0)
            self.expect_bracket("]")
            return _tree("slice", [node, _bound(low), _bound(high)], meta)
        self.expect_bracket("]")
        return _tree("opt_index" if optional else "index", [node, low], meta)


def _bound(node: Tree[Token] | None) -> Tree[Token]:
    return _tree("slice_bound", [node] if node is not None else [])


def parse_source(source: str) -> Tree[Token]:
    try:
        return Parser(source).parse()
    except RecursionError:
        raise ExprSyntaxError(
            f"expression nested too deeply (more than {MAX_DEPTH} levels)",
            source=source,
            column=1,
        ) from None
