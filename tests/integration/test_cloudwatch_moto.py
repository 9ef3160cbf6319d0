"""CloudWatch provider against a real moto_server: put_metric_data, then read it back."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiobotocore.session import AioSession

from analysisd import expr
from providers.base import ProviderConfigError, ProviderHTTPError
from providers.cloudwatch import CloudWatchProvider
from providers.registry import ProviderRegistry
from tests.rigs.moto import MotoServer, aws_env, moto_server, unique_namespace  # noqa: F401


def no_secrets(_secret: str, _key: str) -> None:
    return None


@pytest.fixture
async def provider(aws_env: MotoServer) -> AsyncIterator[CloudWatchProvider]:  # noqa: F811
    instance = CloudWatchProvider.create({}, no_secrets)
    try:
        yield instance
    finally:
        await instance.aclose()


async def put(
    namespace: str,
    name: str,
    values_by_minutes_ago: dict[int, float],
    dimensions: dict[str, str] | None = None,
) -> datetime:
    """Put one value per minute, `minutes ago` each, from a fixed reference time."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    data: list[dict[str, Any]] = [
        {
            "MetricName": name,
            "Value": value,
            "Timestamp": now - timedelta(minutes=ago),
            "Unit": "Count",
            "Dimensions": [{"Name": k, "Value": v} for k, v in (dimensions or {}).items()],
        }
        for ago, value in values_by_minutes_ago.items()
    ]
    async with AioSession().create_client("cloudwatch") as client:
        await client.put_metric_data(Namespace=namespace, MetricData=data)
    return now


def stat_query(
    query_id: str, namespace: str, name: str, stat: str = "Sum", **extra: Any
) -> dict[str, Any]:
    return {
        "id": query_id,
        "metricStat": {
            "metric": {"namespace": namespace, "metricName": name},
            "period": 60,
            "stat": stat,
            "unit": "Count",
        },
        **extra,
    }


async def test_measure_reads_put_data_back_newest_first(provider: CloudWatchProvider) -> None:
    namespace = unique_namespace()
    await put(namespace, "errors", {2: 3.0, 3: 2.0, 4: 1.0})
    reading = await provider.measure(
        {"interval": "10m", "metricDataQueries": [stat_query("errors", namespace, "errors")]}
    )
    (result,) = reading.result
    assert result["Id"] == "errors"
    assert result["StatusCode"] == "Complete"
    assert result["Values"] == [3.0, 2.0, 1.0]
    assert len(result["Timestamps"]) == 3
    assert result["Timestamps"][0] > result["Timestamps"][1]
    assert reading.value == "[[3 2 1]]"


async def test_conditions_on_the_result_pass_and_fail_like_argo(
    provider: CloudWatchProvider,
) -> None:
    namespace = unique_namespace()
    await put(namespace, "latency", {1: 0.2, 2: 0.1, 3: 0.3})
    reading = await provider.measure(
        {
            "interval": "10m",
            "metricDataQueries": [stat_query("lat", namespace, "latency", "Maximum")],
        }
    )
    ok = expr.decide(
        "len(result[0].Values) >= 3 and all(result[0].Values, {# <= 0.5})", "", reading.result
    )
    assert ok.phase == "Successful"
    bad = expr.decide("all(result[0].Values, {# <= 0.25})", "", reading.result)
    assert bad.phase == "Failed"
    newest = expr.decide("result[0].Values[0] == 0.2", "result[0].Values[0] != 0.2", reading.result)
    assert newest.phase == "Successful"


async def test_dimensions_select_the_series(provider: CloudWatchProvider) -> None:
    namespace = unique_namespace()
    await put(namespace, "errors", {2: 5.0}, {"version": "canary"})
    await put(namespace, "errors", {2: 1.0}, {"version": "stable"})
    query = stat_query("canary", namespace, "errors")
    query["metricStat"]["metric"]["dimensions"] = [{"name": "version", "value": "canary"}]
    reading = await provider.measure({"interval": "10m", "metricDataQueries": [query]})
    assert reading.result[0]["Values"] == [5.0]


async def test_every_returned_query_is_a_result_in_order(provider: CloudWatchProvider) -> None:
    namespace = unique_namespace()
    await put(namespace, "errors", {2: 4.0})
    await put(namespace, "requests", {2: 100.0})
    reading = await provider.measure(
        {
            "interval": "10m",
            "metricDataQueries": [
                stat_query("errors", namespace, "errors"),
                stat_query("requests", namespace, "requests"),
            ],
        }
    )
    assert [r["Id"] for r in reading.result] == ["errors", "requests"]
    assert reading.value == "[[4] [100]]"


async def test_no_data_gives_empty_values(provider: CloudWatchProvider) -> None:
    reading = await provider.measure(
        {"metricDataQueries": [stat_query("none", unique_namespace(), "nothing")]}
    )
    assert reading.result[0]["Values"] == []
    assert reading.value == "[[]]"


async def test_series_is_oldest_first_with_period_from_step(provider: CloudWatchProvider) -> None:
    namespace = unique_namespace()
    now = await put(namespace, "hits", {1: 30.0, 2: 20.0, 3: 10.0})
    config = {"metricDataQueries": [stat_query("hits", namespace, "hits")]}
    values = await provider.series(
        config, "", now - timedelta(minutes=5), now + timedelta(seconds=30), 60.0
    )
    assert values == [10.0, 20.0, 30.0]


async def test_series_takes_a_json_query(provider: CloudWatchProvider) -> None:
    namespace = unique_namespace()
    now = await put(namespace, "hits", {1: 3.0, 2: 2.0, 3: 1.0})
    query = json.dumps(
        {
            "id": "h",
            "metricStat": {"metric": {"namespace": namespace, "metricName": "hits"}, "stat": "Sum"},
        }
    )
    values = await provider.series({}, query, now - timedelta(minutes=5), now, 120.0)
    assert sum(values) == 6.0 and len(values) < 3  # two-minute buckets merge points


async def test_percentile_statistics_fail_fast_in_moto(provider: CloudWatchProvider) -> None:
    # moto answers p99 over existing data with HTTP 500; one attempt by default,
    # so no 20 s of botocore retries.
    namespace = unique_namespace()
    await put(namespace, "latency", {2: 0.5})
    with pytest.raises(ProviderHTTPError) as caught:
        await provider.measure(
            {"metricDataQueries": [stat_query("p", namespace, "latency", "p99")]}
        )
    assert caught.value.status == 500
    assert "GetMetricData" in str(caught.value) and "queries p" in str(caught.value)


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({}, "metricDataQueries"),
        ({"metricDataQueries": [{"expression": "a"}]}, "id is required"),
        ({"metricDataQueries": [{"id": "a"}]}, "exactly one"),
        ({"metricDataQueries": [{"id": "a", "expression": "b"}], "interval": "5x"}, "interval"),
    ],
)
async def test_unusable_config_is_a_config_error(
    provider: CloudWatchProvider, config: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ProviderConfigError, match=problem):
        await provider.measure(config)


async def test_registry_dispatches_cloudwatch_kind(aws_env: MotoServer) -> None:  # noqa: F811
    namespace = unique_namespace()
    await put(namespace, "errors", {2: 7.0})
    config = {"interval": "10m", "metricDataQueries": [stat_query("e", namespace, "errors")]}
    async with ProviderRegistry(secrets=no_secrets) as registry:
        reading = await registry.measure("cloudWatch", config)
        assert reading.result[0]["Values"] == [7.0]
        assert registry.pooled() == 1
