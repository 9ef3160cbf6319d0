"""Every case of argo-expr.json: conditions against a result, and measurement verdicts.

Formats honoured (vectors/README.md), so other cases in the same formats can be swapped in
through ANALYSISD_VECTORS:
- ``kind: condition``: ``expr`` against ``result``, ``expect`` true / false / "error", with
  optional ``error_kind`` (``compile`` must fail when compiling or in the result-type checker,
  as Argo's compile does; ``runtime`` while evaluating), ``error_contains`` and
  ``expect_message``;
- ``kind: measurement``: ``successCondition`` / ``failureCondition`` (empty = unset) give
  ``expect`` (a phase); optional ``error_contains`` (a string or a list), ``expect_message``,
  ``expect_value_string`` (the measurement's value; compared as numbers within the case's
  ``abs_tol`` / ``rel_tol``, or the file's ``meta`` tolerance, when the case gives one);
- ``requires_expr_version``: analysisd follows expr-lang v1.17.8; a case needing a newer
  expr-lang is skipped with the reason;
- NaN and infinities as ``{"$float": ...}`` (decoded by tests.vectors.load_argo).
"""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

from analysisd.expr import (
    ExprEvalError,
    ExprSyntaxError,
    ExprTypeError,
    check,
    compile_expr,
    decide,
    evaluate_condition,
    format_value,
)
from tests.vectors import case_id, load_argo

FILE = "argo-expr.json"
EXPR_VERSION = (1, 17, 8)
RAW: Any = load_argo(FILE)


def _cases(raw: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The cases and the file's meta, whether the file is a list or sections with a meta."""
    if isinstance(raw, list):
        return [case for case in raw if isinstance(case, dict)], {}
    meta = raw.get("meta", {}) if isinstance(raw, dict) else {}
    found: list[dict[str, Any]] = []
    for key, value in raw.items() if isinstance(raw, dict) else []:
        if key == "meta":
            continue
        if isinstance(value, list):
            found.extend(case for case in value if isinstance(case, dict) and "kind" in case)
    return found, meta


CASES, META = _cases(RAW)
CONDITIONS = [case for case in CASES if case["kind"] == "condition"]
MEASUREMENTS = [case for case in CASES if case["kind"] == "measurement"]


def _ids(cases: list[dict[str, Any]]) -> list[str]:
    return [case_id(FILE, case["kind"], case) for case in cases]


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def _skip_if_newer(case: dict[str, Any]) -> None:
    wanted = case.get("requires_expr_version")
    if wanted and _version(str(wanted)) > EXPR_VERSION:
        pytest.skip(f"needs expr-lang {wanted}; analysisd follows v1.17.8")


def _tolerance(case: dict[str, Any]) -> tuple[float, float] | None:
    source = case if ("abs_tol" in case or "rel_tol" in case) else META
    if "abs_tol" not in source and "rel_tol" not in source:
        return None
    return float(source.get("abs_tol", 0.0)), float(source.get("rel_tol", 0.0))


def _numbers(text: str) -> list[float] | None:
    body = text.strip()
    if body.startswith("[") and body.endswith("]"):
        body = body[1:-1]
    parts = [part for part in re.split(r"[,\s\[\]]+", body) if part]
    try:
        return [float(part) for part in parts]
    except ValueError:
        return None


def _same_value_string(got: str, want: str, tolerance: tuple[float, float] | None) -> bool:
    if got == want:
        return True
    if tolerance is None:
        return False
    got_numbers, want_numbers = _numbers(got), _numbers(want)
    if got_numbers is None or want_numbers is None or len(got_numbers) != len(want_numbers):
        return False
    abs_tol, rel_tol = tolerance
    return all(
        (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=rel_tol, abs_tol=abs_tol)
        for a, b in zip(got_numbers, want_numbers, strict=True)
    )


def _fragments(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _evaluate(source: str, result: Any) -> bool:
    program = compile_expr(source)
    check(program, result)  # Argo's compile: typed against the result's Go type
    return evaluate_condition(program, result)


def test_every_case_is_a_condition_or_a_measurement() -> None:
    assert len(CONDITIONS) + len(MEASUREMENTS) == len(CASES) > 0


@pytest.mark.parametrize("case", CONDITIONS, ids=_ids(CONDITIONS))
def test_condition(case: dict[str, Any]) -> None:
    _skip_if_newer(case)
    if case["expect"] != "error":
        assert _evaluate(case["expr"], case.get("result")) is case["expect"]
        return
    with pytest.raises((ExprSyntaxError, ExprEvalError)) as caught:
        _evaluate(case["expr"], case.get("result"))
    if case.get("error_kind") == "compile":
        assert isinstance(caught.value, (ExprSyntaxError, ExprTypeError)), caught.value
    elif case.get("error_kind") == "runtime":
        assert isinstance(caught.value, ExprEvalError), caught.value
    for fragment in _fragments(case.get("error_contains")):
        assert fragment in str(caught.value)
    if "expect_message" in case:
        assert case["expect_message"] in str(caught.value)


@pytest.mark.parametrize("case", MEASUREMENTS, ids=_ids(MEASUREMENTS))
def test_measurement(case: dict[str, Any]) -> None:
    _skip_if_newer(case)
    result = case.get("result")
    verdict = decide(case.get("successCondition") or "", case.get("failureCondition") or "", result)
    assert verdict.phase == case["expect"], verdict.message
    for fragment in _fragments(case.get("error_contains")):
        assert fragment in verdict.message
    if "expect_message" in case:
        assert verdict.message == case["expect_message"]
    if "expect_value_string" in case:
        got = format_value(result)
        assert _same_value_string(got, case["expect_value_string"], _tolerance(case)), got
