"""Parser limits at the door: input that used to crash or 500 is a LoadError naming the field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from analysisd.durations import DurationError, parse_duration_ns
from analysisd.loader import MAX_DEPTH, LoadError, load_documents, parse_data
from analysisd.spec import AnalysisRun


def manifest(**metric: Any) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {"name": "r"},
        "spec": {"metrics": [{"name": "m", "provider": {"web": {"url": "http://x"}}, **metric}]},
    }


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 30_000, 100_000])
def test_deeply_nested_yaml_flow_is_refused_before_libyaml_composes_it(depth: int) -> None:
    # 30,000 brackets crashed the process (libyaml composes recursively in C).
    with pytest.raises(LoadError, match=f"nested more than {MAX_DEPTH} levels deep"):
        load_documents("a: " + "[" * depth + "]" * depth, source="body")


def test_deeply_nested_yaml_blocks_are_refused() -> None:
    text = "".join(" " * i + "a:\n" for i in range(150)) + " " * 150 + "a: 1\n"
    with pytest.raises(LoadError, match="nested more than"):
        parse_data(text, source="body")


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 900, 100_000])
def test_deeply_nested_json_is_refused(depth: int) -> None:
    with pytest.raises(LoadError, match="nested"):
        load_documents('{"a":' * depth + "1" + "}" * depth, source="body")


def test_nesting_within_the_limit_loads() -> None:
    deep: Any = 1
    for _ in range(MAX_DEPTH - 10):
        deep = {"a": deep}
    (doc,) = parse_data(json.dumps(deep), source="body")
    assert isinstance(doc, dict)


def test_aliases_cannot_nest_past_the_limit() -> None:
    # Each alias adds the depth of what it refers to; the parsed data is checked too.
    lines = ["a0: &a0 [[[[[[[[[[1]]]]]]]]]]"]
    lines += [f"a{i}: &a{i} [[[[[[[[[[*a{i - 1}]]]]]]]]]]" for i in range(1, 15)]
    with pytest.raises(LoadError, match="nested more than"):
        parse_data("\n".join(lines) + "\n", source="body")


@pytest.mark.parametrize("syntax", ["json", "yaml"])
def test_five_thousand_digit_count_is_named_at_its_field(syntax: str) -> None:
    digits = "9" * 5000
    if syntax == "json":
        text = json.dumps(manifest(count=1)).replace('"count": 1', f'"count": {digits}')
    else:
        text = (
            "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisRun\nmetadata: {name: r}\n"
            f"spec:\n  metrics:\n  - name: m\n    count: {digits}\n"
            "    provider: {web: {url: 'http://x'}}\n"
        )
    # Loads (the number kept as its text); Argo's validation then names the field.
    (run,) = load_documents(text, source="body")
    assert isinstance(run, AnalysisRun)
    assert run.spec.metrics[0].count == digits


def test_count_two_to_the_63_is_out_of_int32_range_at_its_field() -> None:
    with pytest.raises(LoadError) as caught:
        load_documents(json.dumps(manifest(count=2**63, interval="1s")), source="body")
    assert str(caught.value) == (
        "body: spec.metrics[0].count: 9223372036854775808 is out of range (a 32-bit integer)"
    )


def test_ttl_seconds_past_int32_are_refused_at_their_field() -> None:
    body = manifest()
    body["spec"]["ttlStrategy"] = {"secondsAfterCompletion": 2**40}
    with pytest.raises(LoadError, match=r"spec\.ttlStrategy\.secondsAfterCompletion: "):
        load_documents(json.dumps(body), source="body")


@pytest.mark.parametrize(
    "text", ["1" * 5000 + "s", "9223372036854775808ns", "99999999999999999999h", "1" * 20 + "s"]
)
def test_durations_past_int64_are_invalid_as_in_go(text: str) -> None:
    with pytest.raises(DurationError, match="time: invalid duration"):
        parse_duration_ns(text)


def test_long_fractions_are_truncated_not_refused() -> None:
    assert parse_duration_ns("1." + "5" * 5000 + "s") == 1_555_555_555
    assert parse_duration_ns("0" * 5000 + "5s") == 5_000_000_000


def test_a_duration_error_does_not_echo_five_thousand_digits() -> None:
    with pytest.raises(DurationError) as caught:
        parse_duration_ns("1" * 5000 + "s")
    assert len(str(caught.value)) < 200
