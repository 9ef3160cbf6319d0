"""Bad input gets a clear ExprError: deep nesting, non-bool conditions, unknown names, syntax."""

from __future__ import annotations

import re

import pytest

from analysisd.expr import (
    ExprError,
    ExprEvalError,
    ExprSyntaxError,
    ExprTypeError,
    compile_expr,
    decide,
    evaluate_condition,
)


@pytest.mark.parametrize(
    "source",
    [
        "(" * 10_000 + "1" + ")" * 10_000,
        "[" * 10_000 + "]" * 10_000,
        "-" * 10_000 + "1",
        "!" * 10_000 + "true",
        " + ".join(["1"] * 10_000),
        "result" + ".a" * 10_000,
    ],
    ids=["parens", "arrays", "unary-minus", "not", "long-sum", "member-chain"],
)
def test_nesting_ten_thousand_deep_is_a_syntax_error(source: str) -> None:
    with pytest.raises(ExprSyntaxError, match="nested too deeply") as caught:
        compile_expr(source)
    assert caught.value.column > 0


def test_nesting_within_the_limit_compiles_and_evaluates() -> None:
    source = "(" * 150 + "result" + ")" * 150 + " == 1"
    assert evaluate_condition(compile_expr(source), 1) is True


@pytest.mark.parametrize(
    ("source", "go_type"),
    [
        ("1", "int"),
        ("1.5", "float64"),
        ("'x'", "string"),
        ("nil", "<nil>"),
        ("result", "[]interface {}"),
    ],
)
def test_condition_that_is_not_boolean_says_what_it_got(source: str, go_type: str) -> None:
    with pytest.raises(ExprEvalError, match=re.escape(f"expected bool, but got {go_type}")):
        evaluate_condition(compile_expr(source), [1.0])


def test_unknown_name_is_a_compile_error_naming_it_and_its_column() -> None:
    with pytest.raises(ExprSyntaxError) as caught:
        compile_expr("result > 1 && rsult < 2")
    assert "unknown name rsult" in str(caught.value)
    assert caught.value.column == 15


def test_unknown_function_is_a_compile_error() -> None:
    with pytest.raises(ExprSyntaxError, match="unknown name avg"):
        compile_expr("avg(result) > 1")


@pytest.mark.parametrize(
    ("source", "column", "fragment"),
    [
        ("result >", 9, "unexpected end"),
        ("result >= 0.95 &&", 18, "unexpected end"),
        ("result[0 >= 1", 14, "unexpected end"),
        ("result @ 1", 8, "unrecognized character: U+0040 '@'"),
        ("1 +* 2", 4, "unexpected token '*'"),
        ("", 1, "empty expression"),
    ],
)
def test_syntax_error_reports_the_column(source: str, column: int, fragment: str) -> None:
    with pytest.raises(ExprSyntaxError) as caught:
        compile_expr(source)
    assert fragment in str(caught.value)
    assert caught.value.column == column
    assert f"column {column}" in str(caught.value)


def test_syntax_error_on_a_later_line_reports_that_line() -> None:
    with pytest.raises(ExprSyntaxError) as caught:
        compile_expr("result > 1 &&\n  result <")
    assert caught.value.line == 2


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("asFloat(result) == '1.1'", "mismatched types float64 and string"),
        ("'a' + 1", "mismatched types string and int"),
        ("1 < 'a'", "mismatched types int and string"),
        ("1.5 % 2", "mismatched types float64 and int"),
        ("len(1, 2)", "too many arguments to call len"),
        ("[1] + [2] == [1, 2]", "mismatched types []interface {} and []interface {}"),
        ("[1, 2][0.5]", "cannot fetch 0.5 from []interface {}"),
        ("# > 1", "outside predicate"),
        ("99999999999999999999 > 1", "invalid integer literal"),
        ("'\\q' == 'q'", "invalid string literal"),
    ],
)
def test_statically_known_type_errors_fail_at_compile_time(source: str, fragment: str) -> None:
    with pytest.raises(ExprSyntaxError, match=re.escape(fragment)):
        compile_expr(source)


@pytest.mark.parametrize(
    ("source", "result", "error", "fragment"),
    [
        ("result > 0.5", [0.9], ExprTypeError, "mismatched types []interface {} and float64"),
        ("result[0] > 0.5", 0.9, ExprTypeError, "cannot fetch 0 from float64"),
        ("result[0] >= 0.95", [], ExprEvalError, "index out of range: 0 (array length is 0)"),
        ("result.a > 1", None, ExprEvalError, "cannot fetch a from <nil>"),
        ("result < 0.05", None, ExprTypeError, "mismatched types <nil> and float64"),
        ("len(result) == 0", None, ExprTypeError, "invalid argument for len"),
        ("asInt(result) == 1", "1.1", ExprEvalError, 'parsing "1.1": invalid syntax'),
        ("2 % result == 0", 0, ExprEvalError, "integer divide by zero"),
        ("all(result, # > 1)", 3, ExprTypeError, "cannot iterate over int"),
        ("count(1..100000000, true) > 0", None, ExprEvalError, "budget exceeded"),
        ("'x' matches result", "(", ExprEvalError, "error parsing regexp"),
        ("int(result) > 0", "x1", ExprEvalError, "invalid operation: int(x1)"),
    ],
)
def test_runtime_errors_are_expr_errors_with_clear_messages(
    source: str, result: object, error: type[ExprError], fragment: str
) -> None:
    with pytest.raises(error) as caught:
        compile_expr(source).evaluate({"result": result})
    assert fragment in str(caught.value)


def test_evaluation_error_becomes_an_error_verdict_naming_the_condition() -> None:
    verdict = decide("result.rate >= 0.9", "", {"rate": "high"})
    assert verdict.phase == "Error"
    assert 'could not evaluate successCondition "result.rate >= 0.9": ' in verdict.message
    assert "mismatched types string and float64" in verdict.message


def test_syntax_error_in_failure_condition_is_an_error_verdict() -> None:
    verdict = decide("result > 1", "result <", 2.0)
    assert verdict.phase == "Error"
    assert "failureCondition" in verdict.message


@pytest.mark.parametrize(
    ("source", "result"),
    [
        ('result == "true"', True),
        ("result == 1", [1.0]),
        ("'x' != result", 2.0),
    ],
)
def test_comparing_the_result_with_a_literal_of_another_type_is_a_type_error(
    source: str, result: object
) -> None:
    # Argo's checker knows the result's Go type and rejects these; false would hide a typo.
    with pytest.raises(ExprTypeError, match="mismatched types"):
        compile_expr(source).evaluate({"result": result})


def test_members_of_the_result_compare_unequal_across_types_like_expr_runtime() -> None:
    assert compile_expr("result.a == 'x'").evaluate({"result": {"a": 1.0}}) is False


@pytest.mark.parametrize("pattern", ["(a+)+$", "(a*)*", "(a|aa)*$", "(x+x+)+y", "(.*a){20}"])
def test_nested_repetition_runs_in_linear_time_as_in_go(pattern: str) -> None:
    # RE2 never backtracks: what would hang Python's re answers at once.
    program = compile_expr(f"result matches '{pattern}'")
    assert isinstance(program.evaluate({"result": "a" * 4096 + "!"}), bool)


def test_a_constant_pattern_that_is_not_re2_fails_at_compile_time() -> None:
    with pytest.raises(ExprSyntaxError, match="error parsing regexp"):
        compile_expr("result matches '(?=a)'")


@pytest.mark.parametrize("pattern", ["^5\\\\d\\\\d$", "(GET)+", "[a+]+", "^(ab)?c+$"])
def test_ordinary_regexps_still_match(pattern: str) -> None:
    assert isinstance(compile_expr(f"result matches '{pattern}'").evaluate({"result": "x"}), bool)


def test_an_unsubstituted_argument_placeholder_is_named() -> None:
    with pytest.raises(ExprSyntaxError, match="unresolved argument placeholder") as caught:
        compile_expr("default(result, 0) > {{ args.max-restarts }}")
    assert caught.value.column == 22


def test_evaluation_error_with_no_data_blames_the_data_like_argo() -> None:
    verdict = decide("result[0] >= 0.95", "", [])
    assert verdict.message == (
        'could not evaluate successCondition "result[0] >= 0.95": metric result is nil or '
        "empty: no data returned from the metric provider"
    )
