"""analysisd/api/kayenta/queries.py: a Kayenta canary config's metric queries become the
range queries Kayenta's metrics services would send (pure; no peer)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from analysisd.api.kayenta.queries import QueryError, Scope, build_query, expand

SAMPLE = json.loads(
    (
        Path(__file__).resolve().parents[1] / "data" / "kayenta" / "prometheus-cpu-only.json"
    ).read_text()
)


def metric(query: dict[str, Any], name: str = "m") -> dict[str, Any]:
    return {"name": name, "query": query}


def test_kayentas_prometheus_sample_with_its_named_template() -> None:
    """Kayenta's integration test binds ${namespace} through extendedScopeParams."""
    [cpu] = SAMPLE["metrics"]
    scope = Scope("pod-canary", "", {"namespace": "prod"})
    assert (
        build_query("prometheus", SAMPLE, cpu, scope, 1)
        == "avg(integration_test_cpu{namespace='prod', pod_name='pod-canary'})"
    )


@pytest.mark.parametrize(
    ("query", "scope", "expected"),
    [
        # An expanded template starting PromQL: is the whole query.
        (
            {"customInlineTemplate": 'PromQL:rate(x{v="${scope}"}[1m])'},
            Scope("canary"),
            'rate(x{v="canary"}[1m])',
        ),
        # Kayenta's stored templates escape the dollar: $\{scope}.
        (
            {"metricName": "x", "customInlineTemplate": "v=$\\{scope}"},
            Scope("a"),
            "avg(x{v=a})",
        ),
        # Custom filter parts first, then labelBindings; group by fields.
        (
            {
                "metricName": "x",
                "customInlineTemplate": 'a="${scope}",r="${location}"',
                "labelBindings": ['job="api"'],
                "groupByFields": ["pod", "zone"],
            },
            Scope("s", "eu"),
            'avg(x{a="s",r="eu",job="api"}) by (pod,zone)',
        ),
        (
            {"metricName": "cpu", "resourceType": "gce_instance"},
            Scope("myapp-v001", "us-central1", {"project": "p1"}),
            'avg(cpu{instance=~"myapp-v001-.{4}",zone=~".+/projects/p1/zones/us-central1-.{1}"})',
        ),
        (
            {"metricName": "cpu", "resourceType": "aws_ec2_instance"},
            Scope("myapp-v001", "us-west-2"),
            'avg(cpu{asg_groupName="myapp-v001",zone=~"us-west-2.{1}"})',
        ),
        # The scope's resourceType (extendedScopeParams) when the query has none.
        (
            {"metricName": "cpu"},
            Scope("g", "us-west-2", {"resourceType": "aws_ec2_instance"}),
            'avg(cpu{asg_groupName="g",zone=~"us-west-2.{1}"})',
        ),
    ],
)
def test_prometheus_queries_as_prometheus_metrics_service_builds_them(
    query: dict[str, Any], scope: Scope, expected: str
) -> None:
    assert build_query("prometheus", {}, metric({"type": "prometheus", **query}), scope, 60) == (
        expected
    )


@pytest.mark.parametrize(
    ("query", "scope", "message"),
    [
        ({"metricName": "x"}, Scope("s"), "either a resource type or a custom filter"),
        ({"metricName": "x", "resourceType": "k8s_pod"}, Scope("s"), "no explicit support"),
        ({"metricName": "x", "resourceType": "gce_instance"}, Scope("s"), "location"),
        (
            {"metricName": "x", "customInlineTemplate": "${nope}"},
            Scope("s"),
            "${nope} is undefined",
        ),
        ({"metricName": "x", "customFilterTemplate": "t"}, Scope("s"), "no templates were defined"),
        ({"metricName": "x", "customFilter": "a=b"}, Scope("s"), "deprecated"),
        ({"type": "datadog", "metricName": "x"}, Scope("s"), "cannot be fetched from a prometheus"),
    ],
)
def test_queries_kayenta_refuses_are_refused_naming_the_metric(
    query: dict[str, Any], scope: Scope, message: str
) -> None:
    with pytest.raises(QueryError) as caught:
        build_query("prometheus", {}, metric({"type": "prometheus", **query}, "cpu"), scope, 60)
    assert message in str(caught.value) and "'cpu'" in str(caught.value)


def test_a_named_template_that_does_not_exist() -> None:
    config = {"templates": {"other": "x"}}
    with pytest.raises(QueryError, match="'t' was not found"):
        build_query(
            "prometheus",
            config,
            metric({"metricName": "x", "customFilterTemplate": "t"}),
            Scope("s"),
            60,
        )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"metricName": "trace.rack.request"}, "trace.rack.request{service:web}"),
        (
            {"metricName": "errors", "tags": ["env:prod", "region:eu"]},
            "errors{service:web,env:prod,region:eu}",
        ),
        ({"metricName": "hits", "metricType": "count"}, "sum:hits{service:web}.as_count()"),
        ({"customInlineTemplate": "avg:x{${scope}}"}, "avg:x{service:web}"),
    ],
)
def test_datadog_queries_as_datadog_metrics_service_builds_them(
    query: dict[str, Any], expected: str
) -> None:
    built = build_query(
        "datadog", {}, metric({"type": "datadog", **query}), Scope("service:web"), 60
    )
    assert built == expected


def test_cloudwatch_queries_are_metric_data_queries() -> None:
    query = {"type": "cloudwatch", "metricName": "Latency", "namespace": "AWS/ELB", "stat": "p99"}
    built = json.loads(
        build_query("cloudwatch", {}, metric(query), Scope("LoadBalancerName=lb-1, AZ=a"), 300)
    )
    assert built == [
        {
            "id": "m",
            "metricStat": {
                "metric": {
                    "namespace": "AWS/ELB",
                    "metricName": "Latency",
                    "dimensions": [
                        {"name": "LoadBalancerName", "value": "lb-1"},
                        {"name": "AZ", "value": "a"},
                    ],
                },
                "period": 300,
                "stat": "p99",
            },
        }
    ]
    with pytest.raises(QueryError, match="Name=Value"):
        build_query("cloudwatch", {}, metric(query), Scope("lb-1"), 300)


def test_expand_binds_names_and_reports_the_bound_ones() -> None:
    assert expand("${a}-${ b }", {"a": "1", "b": "2"}, "m") == "1-2"
    with pytest.raises(QueryError, match=r"bound: a\)"):
        expand("${c}", {"a": "1"}, "m")
