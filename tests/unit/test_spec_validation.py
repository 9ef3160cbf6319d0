"""validate_metrics beyond the vectors: intstr after resolution, provider kinds, names."""

from __future__ import annotations

from typing import Any

import pytest

from analysisd.args import resolve_metrics
from analysisd.spec import (
    AnalysisRunSpec,
    Argument,
    Metric,
    SpecError,
    int_value,
    metric_problems,
    validate_metrics,
)


def metric(**fields: Any) -> Metric:
    fields.setdefault("provider", {"prometheus": {"query": "up"}})
    return Metric.model_validate({"name": "m", **fields})


def error_of(metrics: list[Metric]) -> SpecError:
    with pytest.raises(SpecError) as caught:
        validate_metrics(metrics)
    return caught.value


def test_duplicate_metric_names_are_refused() -> None:
    exc = error_of([metric(name="a"), metric(name="b"), metric(name="a")])
    assert str(exc) == "metrics[2]: duplicate name 'a'"
    assert exc.field == "metrics[2].name"


def test_non_int_count_after_resolution_is_refused() -> None:
    spec = AnalysisRunSpec(
        metrics=[metric(count="{{args.runs}}", interval="1m")],
        args=[Argument(name="runs", value="ten")],
    )
    resolved = resolve_metrics(spec, None)
    exc = error_of(resolved.metrics)
    assert str(exc) == "metrics[0]: count: 'ten' is not an integer"
    assert exc.field == "metrics[0].count"


def test_int_count_as_string_after_resolution_is_accepted() -> None:
    spec = AnalysisRunSpec(
        metrics=[metric(count="{{args.runs}}", interval="{{args.every}}", failureLimit="2")],
        args=[Argument(name="runs", value="10"), Argument(name="every", value="30s")],
    )
    validate_metrics(resolve_metrics(spec, None).metrics)


def test_unresolved_placeholder_is_named_when_not_allowed() -> None:
    exc = error_of([metric(failureLimit="{{args.limit}}")])
    assert str(exc) == "metrics[0]: failureLimit: '{{args.limit}}' is an unresolved argument"


def test_placeholders_are_skipped_when_allowed() -> None:
    validate_metrics(
        [metric(count="{{args.n}}", interval="{{args.i}}", initialDelay="{{args.i}}")],
        allow_placeholders=True,
    )


def test_unknown_provider_kind_is_refused() -> None:
    exc = error_of([metric(provider={"prometheous": {}})])
    assert str(exc).startswith("metrics[0]: unknown provider kind 'prometheous' (known: ")
    assert exc.field == "metrics[0].provider.prometheous"


@pytest.mark.parametrize(
    "kind",
    ["newRelic", "wavefront", "graphite", "influxdb", "skywalking", "job", "plugin", "kayenta"],
)
def test_argo_kinds_we_do_not_run_still_validate(kind: str) -> None:
    validate_metrics([metric(provider={kind: {"anything": 1}})])


def test_judge_kind_validates() -> None:
    validate_metrics([metric(provider={"judge": {}})])


def test_bad_initial_delay_uses_argos_wording() -> None:
    exc = error_of([metric(initialDelay="soon")])
    assert str(exc) == 'metrics[0]: invalid startDelay string: time: invalid duration "soon"'


def test_metric_problems_lists_every_group() -> None:
    problems = metric_problems(
        metric(count="x", interval="5x", provider={}, consecutiveErrorLimit=-1)
    )
    assert [p.field for p in problems] == [
        "count",
        "interval",
        "consecutiveErrorLimit",
        "provider",
    ]


@pytest.mark.parametrize(
    ("value", "expected"), [(None, 7), (3, 3), ("4", 4), (" 5 ", 5), ("-1", -1)]
)
def test_int_value_reads_intstr(value: int | str | None, expected: int) -> None:
    assert int_value(value, "count", default=7) == expected


def test_boolean_is_not_an_intstr() -> None:
    with pytest.raises(ValueError, match="must be an integer or a string"):
        Metric.model_validate({"name": "m", "count": True})


def test_argument_scalar_defaults_become_strings() -> None:
    assert Argument.model_validate({"name": "a", "value": 9090}).value == "9090"
    assert Argument.model_validate({"name": "a", "value": True}).value == "true"
    assert Argument.model_validate({"name": "a", "value": 0.5}).value == "0.5"


def test_models_dump_back_to_argo_field_names() -> None:
    m = metric(failureLimit=3, successCondition="result[0] > 1")
    dumped = m.model_dump(by_alias=True, exclude_none=True)
    assert dumped["failureLimit"] == 3
    assert dumped["successCondition"] == "result[0] > 1"


def test_null_provider_block_counts_as_no_provider() -> None:
    assert str(error_of([metric(provider={"prometheus": None})])) == (
        "metrics[0]: no provider specified"
    )


def test_provider_block_must_be_a_mapping() -> None:
    exc = error_of([metric(provider={"web": "http://x"})])
    assert str(exc) == "metrics[0]: provider.web must be a mapping, got str"
    assert exc.field == "metrics[0].provider.web"
