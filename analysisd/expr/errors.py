"""Errors of the condition language.

ExprError                  root (an AnalysisdError)
├── ExprSyntaxError        compile time: syntax, unknown names, static type mismatches
└── ExprEvalError          run time: bad index, failed conversion, ...
    └── ExprTypeError      an operand of the wrong type; Argo's checker reports most of
                           these at compile time because it knows the result's Go type
"""

from __future__ import annotations

from analysisd import AnalysisdError


class ExprError(AnalysisdError):
    """Root of condition-language errors; str() is a message a user can act on."""


class ExprSyntaxError(ExprError):
    """The source does not compile; ``column`` (1-based) points at the offending token."""

    def __init__(self, message: str, *, source: str = "", column: int = 0, line: int = 1) -> None:
        self.message = message
        self.source = source
        self.column = column
        self.line = line
        where = f" (line {line}, column {column})" if column else ""
        super().__init__(f"{message}{where}")


class ExprEvalError(ExprError):
    """Evaluation failed at run time."""


class ExprTypeError(ExprEvalError):
    """An operator or function got a value of a type it does not accept."""
