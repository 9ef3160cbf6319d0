"""Properties of the condition language over arbitrary sources and arbitrary results."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysisd.expr import (
    ExprError,
    ExprSyntaxError,
    check,
    compile_conditions,
    compile_expr,
    decide,
    format_value,
)

# Deadlines are timing assertions; the evaluation budget is what bounds run time.
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TOKENS = [
    "result", "#", ".", "[", "]", "(", ")", "{", "}", ",", ":", "?", "??", "?.", "..",
    "0", "1", "-1", "2.5", "1e3", "0x1F", "'a'", '"b"', "`c`", "true", "false", "nil",
    "+", "-", "*", "/", "%", "**", "^", "==", "!=", "<", "<=", ">", ">=", "&&", "||",
    "!", "and", "or", "not", "in", "not in", "matches", "contains", "startsWith",
    "endsWith", "len", "all", "any", "none", "one", "filter", "map", "count", "max",
    "min", "sum", "mean", "median", "abs", "int", "float", "string", "asInt", "asFloat",
    "isNaN", "isInf", "isNil", "default", "keys", "values", "first", "last", "upper",
    "split", "join", "a", "x", " ",
    ";", "let", "=", "|", "::", "?:", "#index", "#acc", "$env", ".5", "1.", "//", "/*", "*/",
    "not contains", "not matches", "uniq", "toJSON", "reduce", "sortBy", "groupBy", "bitnot",
    "splitAfter", "sort", "flatten", "toPairs", "fromPairs", "round", "ceil", "now",
]  # fmt: skip

results = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(["a", "x", "Values", "0"]), children, max_size=4)
    ),
    max_leaves=12,
)
token_sources = st.lists(st.sampled_from(TOKENS), min_size=1, max_size=14).map(" ".join)


def _same(first: Any, second: Any) -> bool:
    """Equality where NaN equals NaN (determinism, not arithmetic)."""
    if isinstance(first, float) and isinstance(second, float):
        return (math.isnan(first) and math.isnan(second)) or first == second
    if isinstance(first, list) and isinstance(second, list):
        return len(first) == len(second) and all(map(_same, first, second))
    if isinstance(first, dict) and isinstance(second, dict):
        return first.keys() == second.keys() and all(_same(first[k], second[k]) for k in first)
    return type(first) is type(second) and first == second


def _outcome(source: str, result: Any, go_type: str = "") -> tuple[str, Any]:
    try:
        program = compile_expr(source)
        check(program, result, go_type)  # the result-type checker is on
        return "value", program.evaluate({"result": result})
    except ExprError as exc:
        return type(exc).__name__, str(exc)


# Well-formed conditions built from the language's parts, so evaluation (not just the
# parser) is exercised: operands, operators, builtins and closures over random results.
_OPERANDS = st.sampled_from(
    [
        "result", "result[0]", "result[-1]", "result.a", "result?.x", "result['Values']",
        "1", "0.5", ".5", "-2", "1e3", "'a'", "nil", "true", "[1, 2.5]", "{a: 1}",
        "len(result)", "max(result)", "sum(result)", "mean(result)", "median(result)",
        "first(result)", "last(result)", "asFloat(result)", "asInt(result)", "isNil(result)",
        "default(result, 0)", "string(result)", "uniq(result)", "sort(result)", "abs(-0.0)",
        "round(0.5)", "int('7')", "float('0x1p-2')", "toJSON(result)", "keys(result)",
        "filter(result, # > 0)", "map(result, #index)", "reduce(result, #acc + #, 0)",
        "findIndex(result, # == 1)", "sortBy(result, #)", "groupBy(result, # > 1)",
        "$env.result", "(let x = result; x)", "(result | len())",
        "findLast(result, # > 0)", "(0.5 == findLast(result, # > 0))",
        "last(filter(result, # > 0))", "get(result, 0)", "get(result, 'a')", "result[0:2]",
        "isNaN(result)", "median(1)", "max(1, 1.5)", "len(groupBy(result, #))",
        "result[0]?.Values", "find(result, # > 0)?.a",
    ]
)  # fmt: skip
_BINARY = st.sampled_from(
    ["==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%", "**", "&&", "||", "??",
     "in", "not in", "contains", "not contains", "matches", "startsWith", "endsWith", ".."]
)  # fmt: skip


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return (
        st.tuples(children, _BINARY, children).map(lambda t: f"({t[0]} {t[1]} {t[2]})")
        | st.tuples(children, children, children).map(lambda t: f"({t[0]} ? {t[1]} : {t[2]})")
        | children.map(lambda c: f"!({c})")
        | children.map(lambda c: f"-({c})")
        | st.tuples(children, children).map(lambda t: f"all({t[0]}, {{{t[1]}}})")
        | st.tuples(children, children).map(lambda t: f"0 < {t[0]} < {t[1]}")
        | st.tuples(children, children).map(lambda t: f"any([1], {{{t[0]}; {t[1]}}})")
    )


conditions = st.recursive(_OPERANDS, _combine, max_leaves=6)
# Go types the providers name (Reading.go_type); "" infers the type from the value.
go_types = st.sampled_from(
    ["", "[]float64", "float64", "<nil>", "[]interface {}", "map[string]interface {}",
     "[]types.MetricDataResult", "string", "bool", "int"]
)  # fmt: skip


@SETTINGS
@given(st.text(max_size=60))
def test_arbitrary_text_compiles_or_raises_expr_error(source: str) -> None:
    # Anything but an ExprError (or a non-str outcome kind) escaping fails the test.
    kind, _ = _outcome(source, None)
    assert kind in {"value", "ExprSyntaxError", "ExprEvalError", "ExprTypeError"}


@SETTINGS
@given(st.text(max_size=40))
def test_syntax_errors_point_inside_the_source_or_just_past_it(source: str) -> None:
    try:
        compile_expr(source)
    except ExprSyntaxError as exc:
        lines = source.split("\n") or [""]
        assert 1 <= exc.line <= len(lines)
        assert 1 <= exc.column <= len(lines[exc.line - 1]) + 1
    except ExprError:
        pass


@SETTINGS
@given(token_sources, results)
def test_token_soup_raises_only_expr_errors_and_is_deterministic(source: str, result: Any) -> None:
    first = _outcome(source, result)
    second = _outcome(source, result)
    assert first[0] == second[0]
    assert _same(first[1], second[1])


@SETTINGS
@given(
    st.sampled_from(
        [
            "result >= 0.95",
            "result[0] >= 0.95 && result[0] < 1",
            "all(result, {# > 1})",
            "len(result) == 0 || result[0] >= 0.95",
            "isNaN(result) || result >= 0.95",
            "default(result, 0) < 0.05",
            "result.a > 0 && result.b",
            "max(result) < 0.05",
            "asInt(result) > 0",
            "result == 'x'",
        ]
    ),
    st.sampled_from(["", "result < 0.5", "isNil(result)"]),
    results,
)
def test_decide_always_gives_a_phase_and_value_prints(
    success: str, failure: str, result: Any
) -> None:
    verdict = decide(success, failure, result)
    assert verdict.phase in {"Successful", "Failed", "Inconclusive", "Error"}
    assert (verdict.phase == "Error") == bool(verdict.message)
    assert isinstance(format_value(result), str)


@SETTINGS
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_nan_fails_every_ordering_comparison(number: float) -> None:
    nan_compares = [
        compile_expr(f"result[0] {op} result[1]").evaluate({"result": [math.nan, number]})
        for op in ("<", "<=", ">", ">=", "==")
    ]
    assert nan_compares == [False] * 5


@SETTINGS
@pytest.mark.timeout(120)
@given(conditions, results, go_types)
def test_random_conditions_never_crash_and_are_deterministic(
    source: str, result: Any, go_type: str
) -> None:
    # never crash, deterministic; never hang: the timeout and the evaluation budget
    first = _outcome(source, result, go_type)
    second = _outcome(source, result, go_type)
    assert first[0] in {"value", "ExprSyntaxError", "ExprEvalError", "ExprTypeError"}
    assert first[0] == second[0]
    assert _same(first[1], second[1])


@SETTINGS
@pytest.mark.timeout(120)
@given(conditions, conditions, results, go_types)
def test_conditions_with_the_checker_give_one_verdict_per_result(
    success: str, failure: str, result: Any, go_type: str
) -> None:
    compiled = compile_conditions(success, failure)
    verdict = compiled.decide(result, go_type)
    assert verdict.phase in {"Successful", "Failed", "Inconclusive", "Error"}
    # the checker's cached outcome changes nothing
    assert compiled.decide(result, go_type) == verdict
    assert decide(success, failure, result, go_type) == verdict
