"""The condition language: an expr-lang compatible subset, as Argo Rollouts uses it.

Public API (stable; the engine and lint depend on it):

- ``compile_expr(source) -> Program`` — parse once (raises ExprSyntaxError with column).
- ``Program.evaluate(env) -> Any`` — evaluate against ``{"result": ...}`` (raises ExprEvalError).
- ``evaluate_condition(program, result) -> bool`` — as Argo: non-bool is an error.
- ``decide(success_condition, failure_condition, result) -> MeasurementVerdict``
- ``compile_conditions(success, failure) -> Conditions`` — both compiled once;
  ``Conditions.decide(result)`` is ``decide`` without compiling, ``Conditions.errors``
  lists the conditions that do not compile.
- ``format_value(result) -> str`` — the measurement's ``value`` string as Argo prints it.
"""

from analysisd.expr.compiler import Program, compile_expr
from analysisd.expr.conditions import (
    Conditions,
    MeasurementVerdict,
    check,
    compile_conditions,
    decide,
    evaluate_condition,
    format_value,
)
from analysisd.expr.errors import ExprError, ExprEvalError, ExprSyntaxError, ExprTypeError

__all__ = [
    "Conditions",
    "ExprError",
    "ExprEvalError",
    "ExprSyntaxError",
    "ExprTypeError",
    "MeasurementVerdict",
    "Program",
    "check",
    "compile_conditions",
    "compile_expr",
    "decide",
    "evaluate_condition",
    "format_value",
]
