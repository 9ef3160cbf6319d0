"""Every case of argo-expr.json: conditions against a result, and measurement verdicts.

Cases marked ``requires_expr_version`` follow the newest behaviour (expr 1.16.2: max()
over an array). ``error_kind: compile`` must fail at compile time or with a type error
(ExprTypeError: Argo's checker knows the result's Go type and rejects these before
running); ``runtime`` must fail while evaluating.
"""

from __future__ import annotations

from typing import Any

import pytest

from analysisd.expr import (
    ExprEvalError,
    ExprSyntaxError,
    ExprTypeError,
    compile_expr,
    decide,
    evaluate_condition,
    format_value,
)
from tests.vectors import case_id, load_argo

FILE = "argo-expr.json"
CASES: list[dict[str, Any]] = load_argo(FILE)
CONDITIONS = [case for case in CASES if case["kind"] == "condition"]
MEASUREMENTS = [case for case in CASES if case["kind"] == "measurement"]


def _ids(cases: list[dict[str, Any]]) -> list[str]:
    return [case_id(FILE, case["kind"], case) for case in cases]


def test_every_case_is_a_condition_or_a_measurement() -> None:
    assert len(CONDITIONS) + len(MEASUREMENTS) == len(CASES) > 0


@pytest.mark.parametrize("case", CONDITIONS, ids=_ids(CONDITIONS))
def test_condition(case: dict[str, Any]) -> None:
    if case["expect"] != "error":
        assert evaluate_condition(compile_expr(case["expr"]), case["result"]) is case["expect"]
        return
    with pytest.raises((ExprSyntaxError, ExprEvalError)) as caught:
        evaluate_condition(compile_expr(case["expr"]), case["result"])
    if case.get("error_kind") == "compile":
        assert isinstance(caught.value, (ExprSyntaxError, ExprTypeError)), caught.value
    elif case.get("error_kind") == "runtime":
        assert isinstance(caught.value, ExprEvalError), caught.value
    if "error_contains" in case:
        assert case["error_contains"] in str(caught.value)


@pytest.mark.parametrize("case", MEASUREMENTS, ids=_ids(MEASUREMENTS))
def test_measurement(case: dict[str, Any]) -> None:
    verdict = decide(case["successCondition"], case["failureCondition"], case["result"])
    assert verdict.phase == case["expect"], verdict.message
    wanted = case.get("error_contains", [])
    for fragment in [wanted] if isinstance(wanted, str) else wanted:
        assert fragment in verdict.message
    if "expect_value_string" in case:
        assert format_value(case["result"]) == case["expect_value_string"]
