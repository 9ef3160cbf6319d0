"""providers.gocompat held to Go: a table of known Go outputs plus properties.

The tables are facts from Go's own tests (time/time_test.go parseDurationTests and
parseDurationErrorTests, strconv/ftoa_test.go and atof_test.go, encoding/json's
encode_test.go TestHTMLEscape / TestMarshalFloat / line terminators) and from the cases the
vectors and providers need (Argo intervals with signs and µ, NaN/Inf/-0 value strings,
HTML-safe JSON of web results). The properties check round trips and that every former
call site (analysisd.durations, the providers' wrappers, expr and jsonpath) now gives the
same answer as gocompat.
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysisd import durations
from analysisd.expr import format_value
from providers import cloudwatch, datadog, gocompat, jsonpath, prometheus
from providers.gocompat import GoError

SECOND = 1_000_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

# time/time_test.go parseDurationTests (and the Argo/provider forms: -5m, +1h, 1µs)
DURATIONS = [
    ("0", 0),
    ("5s", 5 * SECOND),
    ("30s", 30 * SECOND),
    ("1478s", 1478 * SECOND),
    ("-5s", -5 * SECOND),
    ("+5s", 5 * SECOND),
    ("-0", 0),
    ("+0", 0),
    ("5.0s", 5 * SECOND),
    ("5.6s", 5 * SECOND + 600_000_000),
    ("5.s", 5 * SECOND),
    (".5s", 500_000_000),
    ("1.004s", SECOND + 4_000_000),
    ("100.00100s", 100 * SECOND + 1_000_000),
    ("10ns", 10),
    ("11us", 11_000),
    ("12\u00b5s", 12_000),  # U+00B5 micro sign
    ("12\u03bcs", 12_000),  # U+03BC Greek mu
    ("13ms", 13_000_000),
    ("15m", 15 * MINUTE),
    ("16h", 16 * HOUR),
    ("3h30m", 3 * HOUR + 30 * MINUTE),
    ("10.5s4m", 4 * MINUTE + 10 * SECOND + 500_000_000),
    ("-2m3.4s", -(2 * MINUTE + 3 * SECOND + 400_000_000)),
    ("1h2m3s4ms5us6ns", HOUR + 2 * MINUTE + 3 * SECOND + 4_000_000 + 5_000 + 6),
    ("39h9m14.425s", 39 * HOUR + 9 * MINUTE + 14 * SECOND + 425_000_000),
    ("52763797000ns", 52_763_797_000),
    ("0.3333333333333333333h", 20 * MINUTE),
    ("9007199254740993ns", (1 << 53) + 1),
    ("9223372036854775807ns", (1 << 63) - 1),
    ("9223372036854775.807us", (1 << 63) - 1),
    ("-9223372036854775808ns", -(1 << 63)),
    ("0.100000000000000000000h", 6 * MINUTE),
    ("0.830103483285477580700h", 49 * MINUTE + 48 * SECOND + 372_539_827),
    ("-5m", -5 * MINUTE),
    ("+1h", HOUR),
    ("1\u00b5s", 1_000),
]

# time/time_test.go parseDurationErrorTests: (input, Go's error text)
DURATION_ERRORS = [
    ("", 'time: invalid duration ""'),
    ("3", 'time: missing unit in duration "3"'),
    ("-", 'time: invalid duration "-"'),
    ("s", 'time: invalid duration "s"'),
    (".", 'time: invalid duration "."'),
    ("-.", 'time: invalid duration "-."'),
    (".s", 'time: invalid duration ".s"'),
    ("+.s", 'time: invalid duration "+.s"'),
    ("1d", 'time: unknown unit "d" in duration "1d"'),
    ("3000000h", 'time: invalid duration "3000000h"'),
    ("9223372036854775808ns", 'time: invalid duration "9223372036854775808ns"'),
    ("9223372036854775.808us", 'time: invalid duration "9223372036854775.808us"'),
    ("9223372036854ms775us808ns", 'time: invalid duration "9223372036854ms775us808ns"'),
    ("-9223372036854775809ns", 'time: invalid duration "-9223372036854775809ns"'),
]

# strconv/ftoa_test.go (format 'g' and 'f', precision -1) and fmt's %v (= 'g' -1)
FLOAT_V = [
    (1.0, "1"),
    (0.0, "0"),
    (-0.0, "-0"),
    (-1.0, "-1"),
    (20.0, "20"),
    (1234567.0, "1.234567e+06"),
    (100000.0, "100000"),
    (1e6, "1e+06"),
    (1e23, "1e+23"),
    (0.0001, "0.0001"),
    (0.00001, "1e-05"),
    (1.5e-5, "1.5e-05"),
    (123456789.0, "1.23456789e+08"),
    (5e-324, "5e-324"),
    (1.7976931348623157e308, "1.7976931348623157e+308"),
    (math.nan, "NaN"),
    (math.inf, "+Inf"),
    (-math.inf, "-Inf"),
]
FLOAT_F = [
    (1.0, "1"),
    (-0.0, "-0"),
    (1e23, "100000000000000000000000"),
    (1e-7, "0.0000001"),
    (0.1, "0.1"),
    (123456789.0, "123456789"),
    (0.0003332881882246533, "0.0003332881882246533"),
    (math.nan, "NaN"),
    (math.inf, "+Inf"),
    (-math.inf, "-Inf"),
]
# encoding/json (TestMarshalFloat's cut-offs: 'f' in [1e-6, 1e21), 'e' outside, e-7 not e-07)
FLOAT_JSON = [
    (1.0, "1"),
    (-0.0, "-0"),
    (0.000001, "0.000001"),
    (1e-7, "1e-7"),
    (1.5e-7, "1.5e-7"),
    (1e20, "100000000000000000000"),
    (1e21, "1e+21"),
    (123456789.0, "123456789"),
    (0.1, "0.1"),
]
# encoding/json: TestHTMLEscape, the U+2028/U+2029 line terminators, control characters
JSON_STRINGS = [
    (
        "<html>foo &\u2028 \u2029</html>",
        '"\\u003chtml\\u003efoo \\u0026\\u2028 \\u2029\\u003c/html\\u003e"',
    ),
    ("\u2028", '"\\u2028"'),
    ("\u2029", '"\\u2029"'),
    ("a\tb\nc\r", '"a\\tb\\nc\\r"'),
    ("\x00\x1f", '"\\u0000\\u001f"'),
    ('q"\\', '"q\\"\\\\"'),
    ("é日本", '"é日本"'),
]


@pytest.mark.parametrize("text, nanoseconds", DURATIONS)
def test_parse_duration_matches_go(text: str, nanoseconds: int) -> None:
    assert gocompat.parse_duration_ns(text) == nanoseconds
    assert durations.parse_duration_ns(text) == nanoseconds


@pytest.mark.parametrize("text, message", DURATION_ERRORS)
def test_parse_duration_refuses_like_go(text: str, message: str) -> None:
    with pytest.raises(GoError) as caught:
        gocompat.parse_duration_ns(text)
    assert str(caught.value) == message
    with pytest.raises(durations.DurationError, match=r"^time: "):
        durations.parse_duration_ns(text)


@pytest.mark.parametrize("value, text", FLOAT_V)
def test_percent_v_matches_go(value: float, text: str) -> None:
    assert gocompat.format_v(value) == text
    assert cloudwatch.go_value(value) == text
    assert jsonpath.go_float_print(value) == text


@pytest.mark.parametrize("value, text", FLOAT_F)
def test_strconv_f_matches_go(value: float, text: str) -> None:
    assert gocompat.format_f(value) == text
    assert prometheus.go_float(value) == text
    assert datadog.go_float(value) == text
    assert format_value(value) == text  # the measurement value Argo stores


@pytest.mark.parametrize("value, text", FLOAT_JSON)
def test_json_floats_match_go(value: float, text: str) -> None:
    assert gocompat.format_json(value) == text
    assert jsonpath.go_json(value) == text


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_json_refuses_nan_and_infinities_like_go(value: float) -> None:
    with pytest.raises(GoError, match=r"^json: unsupported value: "):
        gocompat.json_marshal([value])


@pytest.mark.parametrize("text, encoded", JSON_STRINGS)
def test_json_strings_match_go(text: str, encoded: str) -> None:
    assert gocompat.json_string(text) == encoded
    assert jsonpath.go_json(text) == encoded
    assert format_value({"k": text}) == "{" + '"k":' + encoded + "}"


# strconv/quote_test.go quotetests (Quote column), plus the JavaScript line terminators
QUOTES = [
    ("\a\b\f\r\n\t\v", '"\\a\\b\\f\\r\\n\\t\\v"'),
    ("\\", '"\\\\"'),
    ("abc\xffdef", '"abc\xffdef"'),  # U+00FF is printable: kept
    ("\u263a", '"\u263a"'),
    ("\U0010ffff", '"\\U0010ffff"'),
    ("\x04", '"\\x04"'),
    ('"', '"\\""'),
    ("\u2028 <&>", '"\\u2028 <&>"'),
]


@pytest.mark.parametrize("text, quoted", QUOTES)
def test_strconv_quote_matches_go(text: str, quoted: str) -> None:
    assert gocompat.go_quote(text) == quoted


def test_secret_forms_use_gocompat_escapes() -> None:
    """analysisd.secrets hides a secret in Go's json.Marshal and %q forms, gocompat's."""
    from analysisd.secrets import secret_forms

    value = '"&<\u00e9>\u2028\t'
    forms = secret_forms(value)
    assert gocompat.json_string(value)[1:-1] in forms
    assert gocompat.go_quote(value)[1:-1] in forms
    assert "\\u0026\\u003c\u00e9\\u003e\\u2028" in gocompat.json_string(value)


def test_json_marshal_sorts_keys_and_marshal_indent_matches_go() -> None:
    value = {"b": [1.5, "x"], "a": None}
    assert gocompat.json_marshal(value) == '{"a":null,"b":[1.5,"x"]}'
    assert gocompat.json_marshal(value, "  ") == (
        '{\n  "a": null,\n  "b": [\n    1.5,\n    "x"\n  ]\n}'
    )


# ------------------------------------------------------------------------- properties

finite = st.floats(allow_nan=False, allow_infinity=False)
units = st.sampled_from(["ns", "us", "\u00b5s", "\u03bcs", "ms", "s", "m", "h"])
_NS = {"ns": 1, "us": 1_000, "\u00b5s": 1_000, "\u03bcs": 1_000, "ms": 10**6, "s": 10**9}
_NS |= {"m": 60 * 10**9, "h": 3600 * 10**9}


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["", "+", "-"]),
    st.lists(st.tuples(st.integers(0, 10**6), units), min_size=1, max_size=4),
)
def test_durations_with_signs_and_micro_add_up(sign: str, parts: list[tuple[int, str]]) -> None:
    text = sign + "".join(f"{number}{unit}" for number, unit in parts)
    total = sum(number * _NS[unit] for number, unit in parts)
    expected = -total if sign == "-" else total
    if total > gocompat.INT64_MAX:
        with pytest.raises(GoError, match=r"^time: invalid duration"):
            gocompat.parse_duration_ns(text)
        return
    assert gocompat.parse_duration_ns(text) == expected
    assert durations.parse_duration_ns(text) == expected
    # the providers' wrappers are the same parser (surrounding blanks forgiven)
    assert prometheus.go_duration_seconds(f" {text} ") == expected / 1e9
    assert datadog.duration_seconds(text) == expected / 1e9


@settings(max_examples=500, deadline=None)
@given(finite)
def test_float_texts_round_trip(value: float) -> None:
    for text in (gocompat.format_v(value), gocompat.format_f(value), gocompat.format_json(value)):
        assert float(text) == value
        assert math.copysign(1, float(text)) == math.copysign(1, value)
    assert "e" not in gocompat.format_f(value)
    assert gocompat.parse_float(gocompat.format_v(value)) == value


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_json_strings_decode_back_and_are_html_safe(text: str) -> None:
    encoded = gocompat.json_string(text)
    assert not any(char in encoded for char in "<>&\u2028\u2029")
    expected = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)
    assert json.loads(encoded) == expected


documents = st.recursive(
    st.none() | st.booleans() | finite | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(documents)
def test_json_marshal_round_trips_and_call_sites_agree(document: object) -> None:
    text = gocompat.json_marshal(document)
    assert json.loads(text, parse_int=float) == json.loads(json.dumps(document), parse_int=float)
    assert jsonpath.go_json(document) == text
    assert json.loads(gocompat.json_marshal(document, "  ")) == json.loads(text)


@pytest.mark.parametrize(
    "value, text",
    [
        (None, "<nil>"),
        ([1.0, "a", None, True], "[1 a <nil> true]"),
        ({"b": 1e6, "a": [0.5, -0.0]}, "map[a:[0.5 -0] b:1e+06]"),
        (math.nan, "NaN"),
    ],
)
def test_sprint_matches_go_fmt(value: object, text: str) -> None:
    # fmt's %v: maps print with sorted keys (internal/fmtsort), floats as %v
    assert gocompat.sprint(value) == text
    assert jsonpath.go_print(value) == text
