"""Datadog provider through the real datadog-api-client against the local fake API."""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from analysisd import expr
from providers.base import ProviderConfigError, Reading
from providers.datadog import DatadogProvider, go_float, value_string
from tests.rigs.datadog_fake import DatadogFake, ScalarAnswer

API_KEY = "dd-api-key-0123456789abcdef"
APP_KEY = "dd-app-key-fedcba9876543210"


@pytest.fixture
async def fake() -> AsyncIterator[DatadogFake]:
    async with DatadogFake(api_key=API_KEY, app_key=APP_KEY) as server:
        yield server


def secrets_for(fake: DatadogFake, secret: str = "datadog"):  # type: ignore[no-untyped-def]
    values = {(secret, "api-key"): API_KEY, (secret, "app-key"): APP_KEY}
    values[(secret, "address")] = fake.url
    return lambda name, key: values.get((name, key))


@pytest.fixture
async def provider(fake: DatadogFake) -> AsyncIterator[DatadogProvider]:
    instance = DatadogProvider.create({}, secrets_for(fake))
    try:
        yield instance
    finally:
        await instance.aclose()


def now_ms() -> int:
    return int(time.time()) * 1000


async def test_v1_result_is_the_last_point_of_the_first_series(
    fake: DatadogFake, provider: DatadogProvider
) -> None:
    fake.v1["avg:errors{app:demo}"] = [
        [[now_ms() - 120_000, 0.5], [now_ms() - 60_000, 0.0003332881882246533]],
        [[now_ms() - 60_000, 9.0]],
    ]
    reading = await provider.measure({"query": "avg:errors{app:demo}"})
    assert reading == Reading(
        result=0.0003332881882246533, value="0.0003332881882246533", go_type="float64"
    )


async def test_v1_request_covers_the_default_five_minute_interval(
    fake: DatadogFake, provider: DatadogProvider
) -> None:
    await provider.measure({"query": "avg:x{*}"})
    await provider.measure({"query": "avg:x{*}", "interval": "10m"})
    first, second = fake.requests
    assert first.method == "GET" and first.path == "/api/v1/query"
    assert first.query["query"] == "avg:x{*}"
    assert int(first.query["to"]) - int(first.query["from"]) == 300
    assert int(second.query["to"]) - int(second.query["from"]) == 600


async def test_v1_trailing_null_point_is_skipped(
    fake: DatadogFake, provider: DatadogProvider
) -> None:
    fake.v1["q"] = [[[now_ms() - 60_000, 0.25], [now_ms(), None]]]
    assert (await provider.measure({"query": "q"})).result == 0.25


async def test_v2_scalar_sends_queries_and_formula_and_reads_the_formula_column(
    fake: DatadogFake, provider: DatadogProvider
) -> None:
    fake.scalar["a / b"] = ScalarAnswer([0.006121374442186943])
    reading = await provider.measure(
        {
            "apiVersion": "v2",
            "queries": {"a": "sum:errors{app:demo}.as_count()", "b": "sum:hits{app:demo}"},
            "formula": "a / b",
            "interval": "5m",
        }
    )
    assert reading.result == 0.006121374442186943
    assert reading.value == "0.006121374442186943"
    (request,) = fake.requests
    assert request.path == "/api/v2/query/scalar"
    assert request.headers["DD-API-KEY"] == API_KEY
    attributes = request.body["data"]["attributes"]
    assert request.body["data"]["type"] == "scalar_request"
    assert attributes["to"] - attributes["from"] == 300_000
    assert attributes["formulas"] == [{"formula": "a / b"}]
    assert sorted((q["name"], q["query"], q["aggregator"]) for q in attributes["queries"]) == [
        ("a", "sum:errors{app:demo}.as_count()", "last"),
        ("b", "sum:hits{app:demo}", "last"),
    ]


async def test_v2_lone_query_is_named_query_and_aggregator_is_passed(
    fake: DatadogFake, provider: DatadogProvider
) -> None:
    fake.scalar["query"] = ScalarAnswer([0.0006332881882246533])
    reading = await provider.measure(
        {"apiVersion": "v2", "query": "avg:latency{*}", "aggregator": "max"}
    )
    assert reading.result == 0.0006332881882246533
    (query,) = fake.requests[0].body["data"]["attributes"]["queries"]
    assert query == {
        "name": "query",
        "query": "avg:latency{*}",
        "aggregator": "max",
        "data_source": "metrics",
    }


@pytest.mark.parametrize(
    "config",
    [
        {"query": "avg:nothing{*}"},
        {"apiVersion": "v2", "query": "avg:nothing{*}"},
    ],
    ids=["v1", "v2"],
)
async def test_no_data_is_nil_and_value_is_empty_list(
    provider: DatadogProvider, config: dict[str, str]
) -> None:
    reading = await provider.measure(config)
    assert reading.result is None
    assert reading.value == "[]"


async def test_v2_ungrouped_null_value_is_nil(fake: DatadogFake, provider: DatadogProvider) -> None:
    fake.scalar["query"] = ScalarAnswer([None])
    assert (await provider.measure({"apiVersion": "v2", "query": "q"})).result is None


async def test_no_data_decides_through_default_like_argo(provider: DatadogProvider) -> None:
    reading = await provider.measure({"apiVersion": "v2", "query": "avg:nothing{*}"})
    assert expr.decide("default(result, 0) < 0.05", "", reading.result).phase == "Successful"
    assert expr.decide("default(result, 1) < 0.05", "", reading.result).phase == "Failed"
    assert expr.decide("result < 0.05", "", reading.result).phase == "Error"


async def test_v2_grouped_answer_is_a_list_without_nulls(
    fake: DatadogFake, provider: DatadogProvider
) -> None:
    fake.scalar["query"] = ScalarAnswer(
        [0.02, None, 0.03], groups=[["svc-a"], ["svc-b"], ["svc-c"]]
    )
    reading = await provider.measure({"apiVersion": "v2", "query": "avg:err{*} by {service}"})
    assert reading.result == [0.02, 0.03]
    assert reading.value == "[0.02,0.03]"


async def test_v2_single_group_stays_a_list(fake: DatadogFake, provider: DatadogProvider) -> None:
    fake.scalar["query"] = ScalarAnswer([0.087], groups=[["svc-a"]])
    reading = await provider.measure({"apiVersion": "v2", "query": "avg:err{*} by {service}"})
    assert reading.result == [0.087]
    assert reading.value == "[0.087]"


async def test_series_reads_timeseries_in_time_order_with_nulls_as_nan(
    fake: DatadogFake, provider: DatadogProvider
) -> None:
    end = datetime.now(UTC).replace(microsecond=0)
    start = end - timedelta(minutes=3)
    base = int(start.timestamp()) * 1000
    fake.timeseries["avg:latency{version:canary}"] = (
        [base + 120_000, base, base + 60_000],
        [[3.0, 1.0, None]],
    )
    values = await provider.series({}, "avg:latency{version:canary}", start, end, 60.0)
    assert values[:2] == [1.0, math.nan] or (values[0] == 1.0 and math.isnan(values[1]))
    assert values[2] == 3.0 and len(values) == 3
    (request,) = fake.requests
    attributes = request.body["data"]["attributes"]
    assert request.path == "/api/v2/query/timeseries"
    assert attributes["interval"] == 60_000
    assert attributes["from"] == int(start.timestamp()) * 1000


async def test_series_of_unknown_query_is_empty(provider: DatadogProvider) -> None:
    end = datetime.now(UTC)
    assert await provider.series({}, "avg:none{*}", end - timedelta(minutes=5), end, 60.0) == []


async def test_secret_ref_names_the_secret(fake: DatadogFake) -> None:
    fake.v1["q"] = [[[now_ms(), 1.5]]]
    config = {"query": "q", "secretRef": {"name": "team-dd", "namespaced": True}}
    instance = DatadogProvider.create(config, secrets_for(fake, "team-dd"))
    try:
        assert (await instance.measure(config)).result == 1.5
    finally:
        await instance.aclose()


async def test_pool_key_identifies_keys_without_holding_them(fake: DatadogFake) -> None:
    key = DatadogProvider.pool_key({}, secrets_for(fake))
    assert API_KEY not in repr(key) and APP_KEY not in repr(key)
    assert key == DatadogProvider.pool_key({}, secrets_for(fake))


def test_request_key_separates_different_queries() -> None:
    one = DatadogProvider.request_key({"query": "a"})
    assert one == DatadogProvider.request_key({"query": "a"})
    assert one != DatadogProvider.request_key({"query": "b"})
    assert one != DatadogProvider.request_key({"query": "a", "apiVersion": "v2"})


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({"apiVersion": "v3", "query": "q"}, "apiVersion"),
        ({"apiVersion": "v2", "query": "q", "aggregator": "median"}, "aggregator"),
        ({"apiVersion": "v2", "queries": {"a": "x", "b": "y"}}, "formula is required"),
        ({"query": "q", "interval": "5 minutes"}, "interval"),
        ({}, "query"),
    ],
)
async def test_unusable_config_is_a_config_error(
    provider: DatadogProvider, config: dict[str, object], problem: str
) -> None:
    with pytest.raises(ProviderConfigError, match=problem):
        await provider.measure(config)


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.1, "0.1"), (1e21, "1000000000000000000000"), (float("nan"), "NaN"), (3.0, "3")],
)
def test_value_is_spelled_like_go(value: float, text: str) -> None:
    assert go_float(value) == text


def test_value_string_of_nil_and_list() -> None:
    assert value_string(None) == "[]"
    assert value_string([0.5, 2.0]) == "[0.5,2]"


def test_address_without_scheme_is_https() -> None:
    values = {"api-key": API_KEY, "app-key": APP_KEY, "address": "api.datadoghq.eu/"}
    instance = DatadogProvider.create({}, lambda _s, key: values.get(key))
    assert instance.address == "https://api.datadoghq.eu"


async def test_readings_name_the_go_type_argo_hands_over(provider: DatadogProvider) -> None:
    from analysisd.expr import decide

    # No data: Argo's valueFromPointer hands a nil *float64 over as nil
    reading = await provider.measure({"apiVersion": "v2", "query": "avg:nothing{*}"})
    assert (reading.result, reading.go_type) == (None, "<nil>")
    assert decide("isNil(result) || result > 1", "", None, reading.go_type).phase == "Error"
