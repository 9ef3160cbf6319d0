"""Differential cases against expr-lang v1.17.8 as Argo runs it, one group per cause.

The cases live in expr_lang_cases.json beside this file; each pytest id names the cause and
the case (``expr-lang::chained-comparison::chain-literals``). Expected outcomes come from
expr-lang's source and tests (each case names its file), not from analysisd.

A case expecting ``compile_error`` must fail before evaluation starts: when compiling, or
in the checker that types the condition against the result's Go type (``check``), which is
where Argo's expr.Compile(..., expr.Env(env)) rejects it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from analysisd.expr import ExprError, check, compile_expr, evaluate_condition

DATA = Path(__file__).with_name("expr_lang_cases.json")
_FLOATS = {"NaN": math.nan, "+Inf": math.inf, "-Inf": -math.inf, "Inf": math.inf, "-0": -0.0}


def _decode(obj: dict[str, Any]) -> Any:
    if set(obj) == {"$float"}:
        return _FLOATS[obj["$float"]]
    return obj


def _load() -> list[tuple[str, dict[str, Any]]]:
    with open(DATA, encoding="utf-8") as fh:
        data = json.load(fh, object_hook=_decode)
    return [(cause, case) for cause, cases in data["causes"].items() for case in cases]


CASES = _load()


def _run(case: dict[str, Any]) -> tuple[str, Any]:
    """("compile_error" | "error" | "value", detail) for one case."""
    result = case.get("result")
    try:
        program = compile_expr(case["expr"])
        check(program, result, case.get("go_type", ""))
    except ExprError as exc:
        return "compile_error", str(exc)
    try:
        if "value" in case:
            return "value", program.evaluate({"result": result})
        return "value", evaluate_condition(program, result)
    except ExprError as exc:
        return "error", str(exc)


def _same(got: Any, want: Any, kind: str | None) -> bool:
    if isinstance(want, float):
        if not isinstance(got, float):
            return False
        if math.isnan(want):
            return math.isnan(got)
        return got == want and math.copysign(1, got) == math.copysign(1, want)
    if isinstance(want, int) and not isinstance(want, bool):
        if kind == "float":
            return type(got) is float and got == want
        if kind == "int":
            return type(got) is int and got == want
    if isinstance(want, list):
        return (
            isinstance(got, list)
            and len(got) == len(want)
            and all(_same(g, w, None) for g, w in zip(got, want, strict=True))
        )
    return bool(got == want) and type(got) is type(want)


def test_every_cause_has_cases() -> None:
    assert len({cause for cause, _ in CASES}) >= 20
    assert len({(cause, case["id"]) for cause, case in CASES}) == len(CASES)


@pytest.mark.parametrize(
    "cause, case", CASES, ids=[f"expr-lang::{cause}::{case['id']}" for cause, case in CASES]
)
def test_case(cause: str, case: dict[str, Any]) -> None:
    kind, detail = _run(case)
    if "value" in case:
        assert kind == "value", detail
        assert _same(detail, case["value"], case.get("value_type")), detail
        return
    expect = case["expect"]
    if expect == "compile_error":
        assert kind == "compile_error", (kind, detail)
    elif expect == "error":
        assert kind in ("error", "compile_error"), (kind, detail)
    else:
        assert kind == "value", detail
        assert detail is expect
