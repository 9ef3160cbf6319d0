"""The condition language: an expr-lang compatible subset, as Argo Rollouts uses it.

Public API (stable; the engine and lint depend on it):

- ``compile_expr(source) -> Program`` — parse once (raises ExprSyntaxError with column).
- ``Program.evaluate(env) -> Any`` — evaluate against ``{"result": ...}`` (raises ExprEvalError).
- ``evaluate_condition(program, result) -> bool`` — as Argo: non-bool is an error.
- ``decide(success_condition, failure_condition, result) -> MeasurementVerdict``
- ``format_value(result) -> str`` — the measurement's ``value`` string as Argo prints it.
"""
