"""The language as conditions use it: typing, operators, closures, builtins, value strings."""

from __future__ import annotations

import math
from typing import Any

import pytest

from analysisd.expr import compile_expr, decide, format_value


def run(source: str, result: Any = None) -> Any:
    return compile_expr(source).evaluate({"result": result})


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("7 / 2", 3.5),
        ("4 / 2", 2.0),
        ("7 % 3", 1),
        ("-7 % 3", -1),
        ("2 ** 3", 8.0),
        ("2 ^ 3", 8.0),
        ("-2 ** 2", -4.0),
        ("1 + 2 * 3", 7),
        ("1 + 2.5", 3.5),
        ("'a' + 'b'", "ab"),
        ("1_000 + 0x10 + 0b1 + 0o7", 1024),
        ("1e3", 1000.0),
        ("9223372036854775807 + 1", -9223372036854775808),
        ("1 / 0", math.inf),
    ],
)
def test_arithmetic_follows_expr_lang_int_and_float_typing(source: str, expected: Any) -> None:
    value = run(source)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1 == 1.0", True),
        ("2 in [1.0, 2.0]", True),
        ("'b' in ['a', 'b']", True),
        ("'k' in {k: 1}", True),
        ("'z' not in ['a']", True),
        ("not (1 > 2)", True),
        ("!false and true or false", True),
        # `not` binds like expr-lang's (precedence 50): looser than `*` and `??`, tighter than `==`.
        ("!result ?? true", False),
        ("not false == false", False),
        ("1 < 2 ? 'yes' : 'no'", "yes"),
        ("nil ?? 3", 3),
        ("'abc' matches '^a.c$'", True),
        ("'abc' contains 'b'", True),
        ("'abc' startsWith 'ab'", True),
        ("'abc' endsWith 'bc'", True),
        ("'a' < 'b'", True),
        ("1..3", [1, 2, 3]),
        ("[1, 2, 3][-1]", 3),
        ("[1, 2, 3, 4][1:3]", [2, 3]),
        ("[1, 2, 3][:-1]", [1, 2]),
        ("{a: {b: 2}}.a.b", 2),
        ("{'a b': 1}['a b']", 1),
        ("[1.5, 'a'] == [1.5, 'a']", True),
        # Arrays compare with Go's reflect.DeepEqual: an int element never equals a float one.
        ("[1, 2] == [1.0, 2.0]", True),
        ("'abc'[0]", 97),
    ],
)
def test_operators(source: str, expected: Any) -> None:
    assert run(source) == expected


@pytest.mark.parametrize(
    ("source", "result", "expected"),
    [
        ("all(result, {# > 1})", [2, 3], True),
        ("all(result, # > 1)", [], True),
        ("any(result, # > 2)", [2, 3], True),
        ("none(result, # > 3)", [2, 3], True),
        ("one(result, # == 2)", [2, 3], True),
        ("filter(result, # % 2 == 0)", [1, 2, 3, 4], [2, 4]),
        ("map(result, # * 10)", [1, 2], [10, 20]),
        ("count(result, # > 1)", [1, 2, 3], 2),
        ("find(result, # > 1)", [1, 2, 3], 2),
        ("findIndex(result, # > 1)", [1, 2, 3], 1),
        ("findLast(result, # > 1)", [1, 2, 3], 3),
        ("all(result, {#.ok})", [{"ok": True}], True),
        ("all(result, .ok)", [{"ok": True}], True),
        ("any(result, any(#, # > 5))", [[1], [6]], True),
        ("result?.a?.b", None, None),
        ("[1, 2, 3][result]", 1.9, 2),
        ("result.missing == nil", {"a": 1}, True),
    ],
)
def test_closures_and_member_access(source: str, result: Any, expected: Any) -> None:
    assert run(source, result) == expected


@pytest.mark.parametrize(
    ("source", "result", "expected"),
    [
        ("len(result)", [1, 2], 2),
        ("len('héllo')", None, 5),
        ("max(result)", [0.2, 0.9, 0.1], 0.9),
        ("min(3, 1, 2)", None, 1),
        ("sum(result)", [1, 2, 3], 6),
        ("mean(result)", [1, 2, 3], 2.0),
        ("median(result)", [4, 1, 3, 2], 2.5),
        ("abs(-2.5)", None, 2.5),
        ("int('42') + int(2.9)", None, 44),
        ("float('0.5')", None, 0.5),
        ("string(1e6)", None, "1e+06"),
        ("string([1, 'a'])", None, "[1 a]"),
        ("ceil(1.2) + floor(1.8) + round(2.5)", None, 6.0),
        ("upper('a') + lower('B') + trim('  c ')", None, "Abc"),
        ("split('a,b', ',')", None, ["a", "b"]),
        ("join(['a', 'b'], '-')", None, "a-b"),
        ("keys(result)", {"b": 1, "a": 2}, ["a", "b"]),
        ("values(result)", {"b": 1, "a": 2}, [2, 1]),
        ("first(result) + last(result)", [1, 5], 6),
        ("max(result)", [], None),
        ("max(result, 4)", [[1, 7], 2], 7),
        ("sum(result, # * 2)", [1, 2], 6),
        ("sum(result, #.v)", [{"v": 0.5}, {"v": 1}], 1.5),
        ("get(result, 'a')", {"a": 1}, 1),
        ("get(result, 5)", [1], None),
        ("first(result)", [], None),
        ("fromJSON('{\"a\": [1, true]}')", None, {"a": [1.0, True]}),
        ("split('a,b,c', ',', 2)", None, ["a", "b,c"]),
        ("replace('aaa', 'a', 'b', 2)", None, "bba"),
        ("trimPrefix(' x')", None, "x"),
        ("hasPrefix('abc', 'a') && hasSuffix('abc', 'c')", None, True),
        ("lastIndexOf('abab', 'b')", None, 3),
        ("asInt('-12') + asInt(3.9)", None, -9),
        ("asFloat('1e-3')", None, 0.001),
        ("isNaN(result)", math.nan, True),
        ("isInf(result)", -math.inf, True),
        ("isNil(result)", None, True),
        ("default(result, 7)", None, 7),
        ("default(result, 7)", 0.5, 0.5),
    ],
)
def test_builtins(source: str, result: Any, expected: Any) -> None:
    assert run(source, result) == expected


def test_compiled_programs_are_cached_per_source_string_in_a_bounded_cache() -> None:
    assert compile_expr("result > 1") is compile_expr("result > 1")
    assert compile_expr.cache_info().maxsize == 1024


def test_a_program_can_be_reused_with_different_results() -> None:
    program = compile_expr("result[0] >= 0.95 && result[0] < 1")
    assert [program.evaluate({"result": [x]}) for x in (0.5, 0.97, 1.0)] == [False, True, False]


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (None, "[]"),
        (10.0, "10"),
        (1e6, "1000000"),
        (1.5e-05, "0.000015"),
        (math.nan, "NaN"),
        (-math.inf, "-Inf"),
        (3, "3"),
        (True, "true"),
        ([0.5], "[0.5]"),
        ([1.0, 2.5], "[1,2.5]"),
        ({"b": 1.0, "a": [1e21, "<x>"]}, '{"a":[1e+21,"\\u003cx\\u003e"],"b":1}'),
        ([{"a": 1}], '[{"a":1}]'),
        ([{"Values": [0.1, 1e6]}], "[[0.1 1e+06]]"),
        ("plain text", "plain text"),
        ("12", '"12"'),
        ("", ""),
    ],
)
def test_format_value_prints_like_argo(result: Any, expected: str) -> None:
    assert format_value(result) == expected


@pytest.mark.parametrize(
    ("success", "failure", "result", "phase"),
    [
        ("result >= 0.9", "result < 0.9", math.nan, "Inconclusive"),
        ("result >= 0.9", "", math.nan, "Failed"),
        ("", "result > 0.1", 0.05, "Successful"),
        ("", "", None, "Successful"),
        ("true", "true", None, "Failed"),
    ],
)
def test_decide_applies_argo_rules(success: str, failure: str, result: Any, phase: str) -> None:
    assert decide(success, failure, result).phase == phase


def test_float_subclasses_from_providers_compare_like_floats() -> None:
    class Sample(float):
        pass

    assert run("result[0] >= 0.95 && result[1] < 1", [Sample(0.97), Sample(0.5)]) is True
    assert run("result == 2", Sample(2.0)) is True
    assert format_value([Sample(0.7)]) == "[0.7]"
