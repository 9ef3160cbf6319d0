"""The expr-lang grammar (the subset Argo conditions use) and an LALR parser for it.

Precedence, loosest first, follows expr-lang: `?:`; `||`/`or`; `&&`/`and`; comparisons,
`in`, `not in`, `matches`, `contains`, `startsWith`, `endsWith`; `..`; `+ -`; `* / %`;
unary `- +`; `** ^` (right-associative); `??`; member access, indexing and calls. Unary
`!`/`not` takes a multiplicative operand, as in expr-lang (precedence 50): `!a * b` is
`!(a * b)` and `!a == b` is `(!a) == b` (LALR resolves the shift/reduce in favour of shift).
"""

from __future__ import annotations

import re
from functools import lru_cache

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from analysisd.expr.errors import ExprSyntaxError

GRAMMAR = r"""
?start: expr

?expr: or_expr
     | or_expr "?" expr ":" expr            -> ternary

?or_expr: and_expr
        | or_expr OR and_expr               -> logic_or

?and_expr: cmp_expr
         | and_expr AND cmp_expr            -> logic_and

?cmp_expr: range_expr
         | cmp_expr CMP_OP range_expr       -> compare
         | cmp_expr "not" "in" range_expr   -> not_in

?range_expr: add_expr
           | add_expr ".." add_expr         -> range

?add_expr: mul_expr
         | add_expr ADD_OP mul_expr         -> arith

?mul_expr: unary_expr
         | mul_expr MUL_OP unary_expr       -> arith

?unary_expr: pow_expr
           | NOT mul_expr                   -> logic_not
           | ADD_OP unary_expr              -> sign

?pow_expr: coalesce_expr
         | coalesce_expr POW_OP unary_expr  -> arith

?coalesce_expr: postfix
              | coalesce_expr "??" postfix  -> coalesce

?postfix: primary
        | postfix "." member                -> member
        | postfix "?." member               -> opt_member
        | postfix "[" expr "]"              -> index
        | postfix "?.[" expr "]"            -> opt_index
        | postfix "[" slice_bound ":" slice_bound "]" -> slice

slice_bound: expr?

member: NAME | CMP_WORD

?primary: INT                               -> int_lit
        | FLOAT                             -> float_lit
        | STRING                            -> string_lit
        | "true"                            -> true_lit
        | "false"                           -> false_lit
        | "nil"                             -> nil_lit
        | NAME                              -> name
        | NAME "(" [args] ")"               -> call
        | "#"                               -> pointer
        | "." member                        -> pointer_member
        | "(" expr ")"
        | "[" [args] "]"                    -> array
        | "{" [pairs] "}"                   -> map
        | "{" expr "}"                      -> closure

args: expr ("," expr)* ","?
pairs: pair ("," pair)* ","?
pair: (KEY | STRING_KEY) ":" expr

OR.3: /\|\||or\b/
AND.3: /&&|and\b/
NOT.3: /!(?!=)|not\b/
CMP_OP.3: /==|!=|<=|>=|<|>|in\b|matches\b|contains\b|startsWith\b|endsWith\b/
CMP_WORD.4: /matches\b|contains\b|startsWith\b|endsWith\b|in\b/
ADD_OP: /[+-]/
POW_OP.4: /\*\*|\^/
MUL_OP.3: /[*\/%]/
FLOAT.3: /[0-9][0-9_]*\.[0-9][0-9_]*([eE][+-]?[0-9]+)?|[0-9][0-9_]*[eE][+-]?[0-9]+/
INT.2: /0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|[0-9][0-9_]*/
STRING: /"(?:[^"\\\n]|\\.)*"/ | /'(?:[^'\\\n]|\\.)*'/ | /`[^`]*`/
KEY.5: /[A-Za-z_$][A-Za-z0-9_$]*(?=\s*:(?![:]))/
STRING_KEY.5: /"(?:[^"\\\n]|\\.)*"(?=\s*:)/ | /'(?:[^'\\\n]|\\.)*'(?=\s*:)/
NAME: /[A-Za-z_$][A-Za-z0-9_$]*/

%ignore /[ \t\r\n]+/
%ignore /\/\/[^\n]*/
%ignore /\/\*(.|\n)*?\*\//
"""

_PLACEHOLDER = re.compile(r"\{\{\s*[A-Za-z_][^{}]*\}\}")

# Deeper trees are refused: compiling and evaluating them recurses once per level.
MAX_DEPTH = 200


@lru_cache(maxsize=1)
def parser() -> Lark:
    """Built once per process on first use (building the LALR tables takes ~50 ms)."""
    return Lark(GRAMMAR, parser="lalr", lexer="contextual", propagate_positions=True)


def _describe(exc: UnexpectedInput) -> str:
    if isinstance(exc, UnexpectedEOF):
        return "unexpected end of expression"
    if isinstance(exc, UnexpectedToken):
        token = exc.token
        if token.type == "$END":
            return "unexpected end of expression"
        return f"unexpected token {str(token)!r}"
    if isinstance(exc, UnexpectedCharacters):
        return f"unexpected character {exc.char!r}"
    return "syntax error"


def _column(exc: UnexpectedInput, source: str) -> tuple[int, int]:
    at_end = isinstance(exc, UnexpectedEOF) or (
        isinstance(exc, UnexpectedToken) and exc.token.type == "$END"
    )
    line = None if at_end else getattr(exc, "line", None)
    column = getattr(exc, "column", None)
    if isinstance(line, int) and isinstance(column, int) and line > 0 and column > 0:
        return line, column
    # End of input: point just past the last character.
    lines = source.split("\n")
    return len(lines), len(lines[-1]) + 1


def parse(source: str) -> Tree[Token]:
    """Source text -> parse tree; ExprSyntaxError (with line/column) for anything invalid."""
    if not source.strip():
        raise ExprSyntaxError("empty expression", source=source, column=1)
    placeholder = _PLACEHOLDER.search(source)
    if placeholder is not None:
        # Argo substitutes {{args.x}} before compiling; seeing one here means it was not.
        raise ExprSyntaxError(
            f"unresolved argument placeholder {placeholder.group(0)}",
            source=source,
            column=placeholder.start() - (source.rfind("\n", 0, placeholder.start()) + 1) + 1,
            line=source.count("\n", 0, placeholder.start()) + 1,
        )
    check_brackets(source)
    try:
        tree = parser().parse(source)
    except UnexpectedInput as exc:
        line, column = _column(exc, source)
        raise ExprSyntaxError(_describe(exc), source=source, column=column, line=line) from None
    if isinstance(tree, Token):
        tree = Tree("atom", [tree])
    check_depth(tree, source)
    return tree


def check_brackets(source: str) -> None:
    """Refuse deep bracket nesting before parsing (parentheses vanish from the tree)."""
    depth = 0
    quote = ""
    escaped = False
    for offset, char in enumerate(source):
        if quote:
            if escaped:
                escaped = False
            elif char == "\\" and quote != "`":
                escaped = True
            elif char == quote:
                quote = ""
        elif char in "\"'`":
            quote = char
        elif char in "([{":
            depth += 1
            if depth > MAX_DEPTH:
                line = source.count("\n", 0, offset) + 1
                column = offset - (source.rfind("\n", 0, offset) + 1) + 1
                raise ExprSyntaxError(
                    f"expression nested too deeply (more than {MAX_DEPTH} levels)",
                    source=source,
                    column=column,
                    line=line,
                )
        elif char in ")]}":
            depth -= 1


def check_depth(tree: Tree[Token], source: str) -> None:
    """Reject trees nested deeper than MAX_DEPTH, walking without recursion."""
    stack: list[tuple[Tree[Token], int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            meta_column = getattr(node.meta, "column", 1) if not node.meta.empty else 1
            raise ExprSyntaxError(
                f"expression nested too deeply (more than {MAX_DEPTH} levels)",
                source=source,
                column=meta_column,
            )
        for child in node.children:
            if isinstance(child, Tree):
                stack.append((child, depth + 1))
