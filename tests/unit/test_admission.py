"""analysisd.admission: every input the door must refuse, named by its field; what it lets by."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysisd.admission import (
    Problem,
    admission_problems,
    errors,
    name_problem,
    namespace_problem,
    template_problems,
)
from analysisd.engine.measure import NoSecrets
from analysisd.spec import AnalysisRunSpec, Metric, ObjectMeta

WEB = {"web": {"url": "http://metrics.example/api"}}


def problems_of(*metrics: dict[str, Any], meta: ObjectMeta | None = None) -> list[Problem]:
    spec = AnalysisRunSpec.model_validate({"metrics": list(metrics)})
    return admission_problems(spec, meta or ObjectMeta(name="run"), NoSecrets())


def fields(problems: list[Problem]) -> list[str]:
    return [p.field for p in problems]


def metric(**fields: Any) -> dict[str, Any]:
    return {"name": "m", "provider": WEB, **fields}


# Each input the issue lists, and the field the door must name.
REFUSED = [
    pytest.param(
        metric(successCondition="result >="), "spec.metrics[0].successCondition", id="condition"
    ),
    pytest.param(
        metric(failureCondition="result[0] < 0.5 &&"),
        "spec.metrics[0].failureCondition",
        id="failure-condition",
    ),
    pytest.param(
        metric(provider={"web": {"url": "http://x", "jsonPath": "{$.a["}}),
        "spec.metrics[0].provider.web.jsonPath",
        id="jsonpath",
    ),
    pytest.param(
        metric(provider={"web": {"method": "GET"}}), "spec.metrics[0].provider.web.url", id="no-url"
    ),
    pytest.param(
        metric(provider={"web": {"url": "file:///etc/passwd"}}),
        "spec.metrics[0].provider.web.url",
        id="file-url",
    ),
    pytest.param(
        metric(provider={"web": {"url": "http://x", "method": "DELETE"}}),
        "spec.metrics[0].provider.web.method",
        id="delete",
    ),
    pytest.param(
        metric(
            provider={
                "web": {
                    "url": "http://x",
                    "headers": [
                        {"key": "X-Team", "value": "a"},
                        {"key": "Authorization", "valueFrom": {"secretKeyRef": {"name": "s"}}},
                    ],
                }
            }
        ),
        "spec.metrics[0].provider.web.headers[1].value",
        id="header-valueFrom-no-value",
    ),
    pytest.param(
        metric(provider={"prometheus": {"address": "http://prom:9090"}}),
        "spec.metrics[0].provider.prometheus.query",
        id="prometheus-no-query",
    ),
    pytest.param(
        metric(provider={"prometheus": {"address": "prom:9090", "query": "up"}}),
        "spec.metrics[0].provider.prometheus.address",
        id="prometheus-address-not-url",
    ),
    pytest.param(
        metric(provider={"datadog": {"apiVersion": "v2"}}),
        "spec.metrics[0].provider.datadog.query",
        id="datadog-no-query",
    ),
    pytest.param(
        metric(provider={"cloudWatch": {"metricDataQueries": [{"id": "q"}]}}),
        "spec.metrics[0].provider.cloudWatch.metricDataQueries[0]",
        id="cloudwatch-query-without-stat-or-expression",
    ),
    pytest.param(metric(interval="0s"), "spec.metrics[0].interval", id="interval-0s"),
    pytest.param(metric(interval="-5s"), "spec.metrics[0].interval", id="interval-negative"),
    pytest.param(
        metric(initialDelay="-1m"), "spec.metrics[0].initialDelay", id="initialDelay-negative"
    ),
    pytest.param(metric(count=-1, interval="1s"), "spec.metrics[0].count", id="count-negative"),
    pytest.param(
        metric(count="9223372036854775808", interval="1s"),
        "spec.metrics[0].count",
        id="count-2^63-as-text",
    ),
    pytest.param(
        metric(interval="1" * 5000 + "s"), "spec.metrics[0].interval", id="5000-digit-interval"
    ),
    pytest.param(
        metric(provider={"kayenta": {"address": "http://k"}}),
        "spec.metrics[0].provider.kayenta.application",
        id="kayenta-block-incomplete",
    ),
]


@pytest.mark.parametrize(("spec_metric", "field"), REFUSED)
def test_input_that_cannot_run_is_refused_naming_its_field(
    spec_metric: dict[str, Any], field: str
) -> None:
    found = errors(problems_of(spec_metric))
    assert field in fields(found), found


def test_a_runnable_metric_of_each_provider_is_admitted() -> None:
    assert (
        problems_of(
            metric(name="w", interval="30s", count=3, successCondition="result > 1"),
            metric(name="p", provider={"prometheus": {"address": "http://p:9090", "query": "up"}}),
            metric(name="d", provider={"datadog": {"apiVersion": "v2", "query": "avg:x{*}"}}),
            metric(
                name="c",
                provider={"cloudWatch": {"metricDataQueries": [{"id": "q", "expression": "1"}]}},
            ),
        )
        == []
    )


def test_every_problem_is_reported_not_only_the_first() -> None:
    found = problems_of(
        metric(name="a", interval="0s", successCondition="result >="),
        metric(name="b", provider={"web": {"url": "ftp://x", "method": "PATCH"}}),
    )
    assert fields(found) == [
        "spec.metrics[0].interval",
        "spec.metrics[0].successCondition",
        "spec.metrics[1].provider.web.url",
    ]


def test_argo_validation_comes_first_with_argos_message() -> None:
    (found,) = problems_of(metric(count=3))
    assert found.field == "spec.metrics[0].interval"
    assert found.message == (
        "Analysis spec invalid: metrics[0]: interval must be specified when count > 1"
    )


def test_unresolved_argument_names_the_args() -> None:
    spec = {"name": "m", "provider": {"web": {"url": "http://x/{{args.missing}}"}}}
    (found,) = problems_of(spec)
    assert found.field == "spec.args"
    assert found.message.startswith("Unable to resolve metric arguments")


def test_conditions_of_plugin_metrics_are_never_compiled() -> None:
    plugin = {"name": "k6", "successCondition": "result.passed ==", "provider": {"plugin": {}}}
    plugin["provider"] = {"plugin": {"grafana/k6": {"testRunId": "1"}}}
    found = problems_of(plugin)
    assert [(p.field, p.warning) for p in found] == [("spec.metrics[0].provider.plugin", False)]
    assert "not run by analysisd" in found[0].message


def test_unsupported_kind_is_a_warning_where_allowed() -> None:
    spec = AnalysisRunSpec.model_validate(
        {"metrics": [{"name": "k", "provider": {"plugin": {"grafana/k6": {}}}}]}
    )
    found = admission_problems(spec, ObjectMeta(name="r"), NoSecrets(), allow_unsupported=True)
    assert [p.warning for p in found] == [True]
    assert errors(found) == []
    assert str(found[0]).startswith("warning: spec.metrics[0].provider.plugin: ")


def test_template_fields_waiting_for_arguments_are_not_judged() -> None:
    template_metric = Metric.model_validate(
        {
            "name": "m",
            "interval": "{{args.interval}}",
            "count": "{{args.count}}",
            "successCondition": "result[0] >= {{args.threshold}}",
            "provider": {
                "web": {
                    "url": "{{args.url}}",
                    "timeoutSeconds": "{{args.timeout}}",
                    "headers": [{"key": "Authorization", "value": "Bearer {{args.token}}"}],
                }
            },
        }
    )
    assert template_problems([template_metric]) == []


def test_template_still_refuses_what_no_argument_can_fix() -> None:
    template_metric = Metric.model_validate(
        {
            "name": "m",
            "successCondition": "result >= {{args.threshold}} &&",
            # The url waits for an argument: it gets a stand-in, and the method is checked.
            "provider": {"web": {"url": "{{args.url}}", "method": "DELETE"}},
        }
    )
    assert fields(template_problems([template_metric])) == [
        "spec.metrics[0].provider.web.method",
        "spec.metrics[0].successCondition",
    ]


def test_template_prometheus_address_may_come_from_the_environment() -> None:
    template_metric = Metric.model_validate(
        {"name": "m", "provider": {"prometheus": {"query": "up"}}}
    )
    assert template_problems([template_metric]) == []


@pytest.mark.parametrize(
    "namespace", ["../../etc", "a b\0c", "x" * 5000, "Team", "-team", "team.a", ""]
)
def test_namespace_must_be_a_dns1123_label(namespace: str) -> None:
    assert namespace_problem(namespace) is not None


@pytest.mark.parametrize("name", ["A", "a_b", "a/b", "x" * 254, "a..b", "-a", ""])
def test_name_must_be_a_dns1123_subdomain(name: str) -> None:
    assert name_problem(name) is not None


@pytest.mark.parametrize("name", ["a", "team-a", "canary.v2", "x" * 253, "0"])
def test_kubernetes_names_pass(name: str) -> None:
    assert name_problem(name) is None
    if len(name) <= 63 and "." not in name:
        assert namespace_problem(name) is None


def test_metadata_is_checked_with_the_run() -> None:
    found = problems_of(metric(), meta=ObjectMeta(name="Run_1", namespace="../../etc"))
    assert fields(found) == ["metadata.name", "metadata.namespace"]


# ---- property: the door answers every loadable spec with problems, never an exception ----

ODD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=True),
    st.sampled_from(["", "x", "http://h/p", "file:///e", "{{args.a}}", "-1s", "0s", "{$.a["]),
    st.lists(st.sampled_from([1, "x", {"key": "k"}, {"id": "q"}, {}]), max_size=3),
    st.dictionaries(st.sampled_from(["key", "value", "id", "name"]), st.just("x"), max_size=2),
)
BLOCK = st.dictionaries(
    st.sampled_from(
        [
            "url",
            "method",
            "headers",
            "jsonPath",
            "timeoutSeconds",
            "body",
            "jsonBody",
            "address",
            "query",
            "timeout",
            "rangeQuery",
            "apiVersion",
            "queries",
            "formula",
            "interval",
            "aggregator",
            "metricDataQueries",
            "maxAttempts",
            "lookback",
            "source",
        ]
    ),
    ODD,
    max_size=5,
)
KIND = st.sampled_from(["web", "prometheus", "datadog", "cloudWatch", "judge", "job", "plugin"])
CONDITION = st.sampled_from(["", "result > 1", "result >=", "((", "result[0] == 'a'"])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {"provider": st.dictionaries(KIND, BLOCK, min_size=1, max_size=1)},
            optional={
                "interval": st.sampled_from(["1s", "0s", "-1s", "x", "{{args.a}}"]),
                "initialDelay": st.sampled_from(["1s", "-1s", "9" * 30 + "h"]),
                "count": st.one_of(st.integers(-2, 3), st.sampled_from(["2", "x", "9" * 40])),
                "successCondition": CONDITION,
                "failureCondition": CONDITION,
            },
        ),
        min_size=1,
        max_size=3,
    ),
    st.booleans(),
)
def test_the_door_never_raises(metrics: list[dict[str, Any]], as_template: bool) -> None:
    named = [{"name": f"m{i}", **m} for i, m in enumerate(metrics)]
    if as_template:
        found = template_problems([Metric.model_validate(m) for m in named])
    else:
        found = problems_of(*named)
    for problem in found:
        assert problem.field.startswith("spec.")
        assert problem.message


def test_template_header_without_value_is_found_behind_placeholder_fields() -> None:
    template_metric = Metric.model_validate(
        {
            "name": "m",
            "provider": {
                "web": {
                    "url": "{{args.url}}",
                    "timeoutSeconds": "{{args.timeout}}",
                    "headers": [
                        {"key": "X-Team", "value": "{{args.team}}"},
                        {"key": "Authorization", "valueFrom": {"secretKeyRef": {"name": "s"}}},
                    ],
                }
            },
        }
    )
    assert fields(template_problems([template_metric])) == [
        "spec.metrics[0].provider.web.headers[1].value"
    ]


def test_template_prometheus_without_address_still_needs_a_query() -> None:
    template_metric = Metric.model_validate(
        {"name": "m", "provider": {"prometheus": {"timeout": "{{args.t}}"}}}
    )
    assert fields(template_problems([template_metric])) == [
        "spec.metrics[0].provider.prometheus.query"
    ]
