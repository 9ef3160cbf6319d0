"""api.bodies.plain_json_run types a small JSON manifest straight from its text: whenever
it answers, the run is the one the full parse makes (parse_documents +
run_request_or_object); whatever it is not sure of it leaves to them (None), so every
refusal keeps its words and field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from analysisd.api.bodies import parse_documents, plain_json_run, run_request_or_object
from analysisd.api.errors import ApiError
from analysisd.loader import MAX_DEPTH, MAX_INT_DIGITS
from analysisd.spec import AnalysisRun

MAX = 1024 * 1024
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {"name": "r", "labels": {"app": "a"}},
        "spec": {
            "metrics": [
                {
                    "name": "m",
                    "interval": "1h",
                    "successCondition": "result < 10",
                    "provider": {"web": {"url": "http://127.0.0.1:9/x"}},
                }
            ],
            **spec,
        },
    }


def full(text: str) -> AnalysisRun | dict[str, Any] | ApiError:
    try:
        return run_request_or_object(parse_documents(text, MAX), AnalysisRun)
    except ApiError as exc:
        return exc


def same_as_full(text: str) -> AnalysisRun | None:
    fast = plain_json_run(text, MAX)
    if fast is not None:
        slow = full(text)
        assert isinstance(slow, AnalysisRun), text
        assert repr(fast.model_dump()) == repr(slow.model_dump())  # repr: NaN == NaN
        assert fast.model_fields_set == slow.model_fields_set
    return fast


def example_runs() -> list[dict[str, Any]]:
    """Every AnalysisRun spec the examples hold, as a run manifest."""
    found = []
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            spec = doc.get("spec") if isinstance(doc, dict) else None
            if isinstance(spec, dict) and "metrics" in spec:
                found.append(run() | {"spec": spec})
    return found


def test_the_bench_manifest_and_the_examples_go_the_short_way_to_the_same_run() -> None:
    assert same_as_full(json.dumps(run())) is not None
    manifests = example_runs()
    assert manifests
    for manifest in manifests:
        same_as_full(json.dumps(manifest))


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(json.dumps({k: v for k, v in run().items() if k != "kind"}), id="no-kind"),
        pytest.param(
            json.dumps({k: v for k, v in run().items() if k != "apiVersion"}), id="no-version"
        ),
        pytest.param(json.dumps(run() | {"apiVersion": "v1"}), id="other-version"),
        pytest.param(json.dumps(run() | {"kind": "AnalysisTemplate"}), id="template"),
        pytest.param(json.dumps({"templates": [{"templateName": "t"}]}), id="run-request"),
        pytest.param(json.dumps([run()]), id="a-list"),
        pytest.param(json.dumps(run(args=[{"name": "a", "value": {}}])), id="bad-type"),
        pytest.param(json.dumps(run(bogus=1)), id="unknown-field"),
        pytest.param(
            json.dumps(run(dryRun=[{"metricName": "m", "x": [[[[1]]]]}] * (MAX_DEPTH // 4))),
            id="many-brackets",
        ),
        pytest.param(
            json.dumps(run()).replace('"a"}', '"a", "n": ' + "9" * (MAX_INT_DIGITS + 1) + "}"),
            id="long-number",
        ),
        pytest.param(json.dumps(run()).replace('"app"', '"\\ud800"'), id="lone-surrogate"),
        pytest.param(json.dumps(run()) + " x", id="trailing"),
        pytest.param("metadata:\n  name: r\n", id="yaml"),
    ],
)
def test_what_it_is_not_sure_of_goes_the_long_way(text: str) -> None:
    assert plain_json_run(text, MAX) is None
    assert plain_json_run(json.dumps(run()), len(json.dumps(run()))) is None  # size bound


@settings(max_examples=200, deadline=None)
@given(
    labels=st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=4),
    block=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
        max_leaves=12,
    ),
    count=st.one_of(st.integers(-3, 5), st.text(max_size=3), st.none()),
)
def test_whatever_it_answers_is_what_the_full_parse_makes(
    labels: dict[str, str], block: Any, count: Any
) -> None:
    manifest = run()
    manifest["metadata"]["labels"] = labels
    metric = manifest["spec"]["metrics"][0]
    metric["provider"]["web"]["extra"] = block
    if count is not None:
        metric["count"] = count
    same_as_full(json.dumps(manifest))
