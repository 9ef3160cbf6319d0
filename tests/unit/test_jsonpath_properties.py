"""Properties of the Go value formatting and JSONPath evaluation over generated JSON."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from providers import gocompat
from providers.jsonpath import JSONPath, go_json

finite = st.floats(allow_nan=False, allow_infinity=False)
scalars = st.none() | st.booleans() | finite | st.text(max_size=20)
documents = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b) and type(a) is type(b)


@settings(max_examples=300, deadline=None)
@given(documents)
def test_go_json_is_valid_json_that_decodes_to_the_same_value(doc: Any) -> None:
    text = go_json(doc)
    assert _same(json.loads(text, parse_int=float), doc)
    assert "<" not in text and ">" not in text and "&" not in text  # HTML-safe, as Go


@settings(max_examples=300, deadline=None)
@given(finite)
def test_go_json_floats_round_trip_exactly(value: float) -> None:
    assert float(go_json(value)) == value


@settings(max_examples=500, deadline=None)
@given(st.integers(min_value=-(2**60), max_value=2**60))
def test_go_json_integral_floats_match_the_shortest_digit_formatting(number: int) -> None:
    # encoding/json writes integral floats below 1e21 as strconv 'f' -1 does: shortest
    # digits, zeros to the point, never an exponent.
    value = float(number)
    if value == 0 or abs(value) >= 1e21:
        return
    assert go_json(value) == gocompat.format_f(value)
    assert "e" not in go_json(value) and float(go_json(value)) == value


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.from_regex(r"[a-z]{1,6}", fullmatch=True), documents, min_size=1))
def test_field_lookup_finds_every_top_level_key(doc: dict[str, Any]) -> None:
    for key, value in doc.items():
        assert JSONPath("{." + key + "}").first(doc) == (True, value)


@settings(max_examples=200, deadline=None)
@given(st.lists(finite, min_size=1, max_size=10), st.integers(0, 9), st.integers(1, 3))
def test_slices_agree_with_python_slicing(values: list[float], start: int, step: int) -> None:
    start = min(start, len(values) - 1)
    found = JSONPath(f"{{.v[{start}::{step}]}}").find_results({"v": values})
    assert found == [values[start::step]]


KEYS = st.sampled_from(["a", "b", "value", "x"])
keyed_documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(keyed_documents, st.lists(KEYS, min_size=1, max_size=4), st.booleans())
def test_a_plain_field_path_answers_first_as_the_evaluator_does(
    doc: Any, keys: list[str], rooted: bool
) -> None:
    """`first`'s walk of "{$.a.b}" (a shortcut for the usual Web jsonPath) gives the
    evaluator's (found, value), and a missing key or a non-object the evaluator's error."""
    template = "{" + ("$" if rooted else "") + "".join(f".{key}" for key in keys) + "}"
    path = JSONPath(template)
    assert path._fields == tuple(keys)
    expected: Any
    try:
        found = [value for results in path.find_results(doc) for value in results]
        expected = (True, found[0]) if found else (False, None)
    except Exception as exc:
        expected = (type(exc), str(exc))
    try:
        got: Any = path.first(doc)
    except Exception as exc:
        got = (type(exc), str(exc))
    assert got[0] == expected[0]
    assert _same(got[1], expected[1]) if got[0] is True else got == expected
