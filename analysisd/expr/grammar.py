"""Source text -> parse tree: placeholder and nesting checks around parser.py (expr-lang's
own lexer and precedence-climbing parser, ported)."""

from __future__ import annotations

import re

from analysisd.expr.errors import ExprSyntaxError
from analysisd.expr.parser import parse_source
from analysisd.expr.tree import Token, Tree

_PLACEHOLDER = re.compile(r"\{\{\s*[A-Za-z_][^{}]*\}\}")

# Deeper trees are refused: compiling and evaluating them recurses once per level.
MAX_DEPTH = 200


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
    tree = parse_source(source)
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
