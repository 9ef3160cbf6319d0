"""providers.gocompat: the Go rules the condition language depends on (facts from Go's
strconv/atof_test.go, math/all_test.go and regexp/syntax)."""

from __future__ import annotations

import math

import pytest

from providers.gocompat import (
    INT64_MIN,
    GoError,
    compile_regexp,
    float_to_int64,
    go_pow,
    go_round,
    parse_float,
    parse_int,
    regexp_match,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", 1.0),
        ("+1", 1.0),
        ("1e23", 1e23),
        ("1E23", 1e23),
        (".5", 0.5),
        ("1.", 1.0),
        ("1_000", 1000.0),
        ("0x1p-2", 0.25),
        ("0x1.8p1", 3.0),
        ("0x_1p0", 1.0),
        ("inf", math.inf),
        ("-Infinity", -math.inf),
        ("1e-400", 0.0),
    ],
)
def test_parse_float_accepts_go_syntax(text: str, value: float) -> None:
    assert parse_float(text) == value


@pytest.mark.parametrize("text", ["", " 1", "1 ", "1_", "_1", "1__0", "0x10", "1e", ".", "abc"])
def test_parse_float_refuses_what_go_refuses(text: str) -> None:
    with pytest.raises(GoError, match="invalid syntax"):
        parse_float(text)


def test_parse_float_out_of_range_is_an_error() -> None:
    with pytest.raises(GoError, match="value out of range"):
        parse_float("1e400")


def test_parse_int_is_base_10_without_separators() -> None:
    assert parse_int("-42") == -42
    for text in ("1_000", "0x10", "1.0", " 1"):
        with pytest.raises(GoError, match="invalid syntax"):
            parse_int(text)
    with pytest.raises(GoError, match="value out of range"):
        parse_int("9223372036854775808")


@pytest.mark.parametrize(
    ("value", "rounded"),
    [
        (0.49999999999999994, 0.0),
        (0.5, 1.0),
        (-2.5, -3.0),
        (4503599627370497.0, 4503599627370497.0),
        (-0.4, -0.0),
        (1e300, 1e300),
    ],
)
def test_round_is_math_round(value: float, rounded: float) -> None:
    got = go_round(value)
    assert got == rounded and math.copysign(1, got) == math.copysign(1, rounded)


@pytest.mark.parametrize(
    ("x", "y", "want"),
    [
        (1.1, 10.0, 2.593742460100002),
        (7.7, 5.0, 27067.841570000008),
        (-0.0, -1.0, -math.inf),
        (0.0, -1.0, math.inf),
        (-0.0, 3.0, -0.0),
        (-8.0, 1 / 3, math.nan),
        (10.0, 400.0, math.inf),
        (1.0, math.nan, 1.0),
        (math.nan, 0.0, 1.0),
    ],
)
def test_pow_is_math_pow(x: float, y: float, want: float) -> None:
    got = go_pow(x, y)
    if math.isnan(want):
        assert math.isnan(got)
    else:
        assert got == want and math.copysign(1, got) == math.copysign(1, want)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 1e19, -1e19])
def test_out_of_range_float_to_int64_is_min_int64_as_on_amd64(value: float) -> None:
    assert float_to_int64(value) == INT64_MIN


def test_regexps_are_re2() -> None:
    assert regexp_match("^[[:alpha:]]+$", "ab")
    assert not regexp_match(r"^\w$", "é")
    assert regexp_match(r"^\pL$", "é")
    assert regexp_match("^a{,2}$", "a{,2}")
    for pattern in ("(?=a)", r"(a)\1", r"\C"):
        with pytest.raises(GoError, match="error parsing regexp"):
            compile_regexp(pattern)
