"""CloudWatch provider where moto falls short: metric math, Messages, paging, faults.

The peer is tests.rigs.moto.CloudWatchFake, a loopback server speaking the same
JSON 1.0 protocol botocore uses against CloudWatch.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from analysisd import expr
from providers.base import (
    ProviderAuthError,
    ProviderConnectionError,
    ProviderError,
    ProviderHTTPError,
    ProviderRateLimited,
    ProviderTimeout,
)
from providers.cloudwatch import CloudWatchProvider, go_value
from tests.rigs.moto import CloudWatchFake, FakeReply
from tests.vectors import argo_templates_dir, case_id, load_argo


def now() -> datetime:
    """This minute, read when a test runs (a module constant went stale in a long suite
    and fell outside a five-minute query window)."""
    return datetime.now(UTC).replace(second=0, microsecond=0)


@pytest.fixture(autouse=True)
def dummy_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
async def fake() -> AsyncIterator[CloudWatchFake]:
    async with CloudWatchFake() as server:
        at = now()
        server.put(
            "app", "errors", [(at - timedelta(minutes=m), v) for m, v in ((2, 1.0), (3, 3.0))]
        )
        server.put("app", "requests", [(at - timedelta(minutes=m), 100.0) for m in (2, 3)])
        yield server


def settings(url: str, **extra: Any) -> dict[str, Any]:
    return {"endpoint": url, "region": "eu-west-1", **extra}


async def open_provider(config: dict[str, Any]) -> CloudWatchProvider:
    return CloudWatchProvider.create(config, lambda _s, _k: None)


def stat(query_id: str, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": query_id,
        "metricStat": {
            "metric": {"namespace": "app", "metricName": name},
            "period": 60,
            "stat": "Sum",
            "unit": "Count",
        },
        **extra,
    }


# Argo's docs/analysis/cloudwatch.md template (tests/../argo-templates/13-cloudwatch.yaml)
RATE_QUERIES = [
    {"id": "rate", "expression": "errors / requests"},
    stat("errors", "errors", returnData=False),
    stat("requests", "requests", returnData=False),
]


async def measure(fake: CloudWatchFake, **config: Any) -> Any:
    full = settings(fake.url, **config)
    provider = await open_provider(full)
    try:
        return await provider.measure(full)
    finally:
        await provider.aclose()


async def test_metric_math_expression_is_evaluated(fake: CloudWatchFake) -> None:
    reading = await measure(fake, interval="30m", metricDataQueries=RATE_QUERIES)
    (rate,) = reading.result
    assert rate["Id"] == "rate"
    assert rate["Values"] == [0.01, 0.03]
    assert reading.value == "[[0.01 0.03]]"
    request = fake.requests[0]
    assert [q["Id"] for q in request["MetricDataQueries"]] == ["rate", "errors", "requests"]
    assert request["MetricDataQueries"][1]["ReturnData"] is False
    assert request["MetricDataQueries"][1]["MetricStat"]["Unit"] == "Count"
    assert request["EndTime"] - request["StartTime"] == pytest.approx(1800, abs=1)


async def test_template_condition_decides_on_the_expression(fake: CloudWatchFake) -> None:
    reading = await measure(fake, interval="30m", metricDataQueries=RATE_QUERIES)
    loose = expr.decide("all(result[0].Values, {# <= 0.05})", "", reading.result)
    strict = expr.decide("all(result[0].Values, {# <= 0.01})", "", reading.result)
    assert (loose.phase, strict.phase) == ("Successful", "Failed")


async def test_messages_go_to_metadata(fake: CloudWatchFake) -> None:
    fake.messages = [{"Code": "MaxQueryTimeRangeExceed", "Value": "range too long"}]
    reading = await measure(fake, metricDataQueries=[stat("errors", "errors")])
    assert "MaxQueryTimeRangeExceed" in reading.metadata["messages"]


async def test_next_token_pages_are_merged(fake: CloudWatchFake) -> None:
    fake.page_size = 1
    reading = await measure(fake, interval="30m", metricDataQueries=[stat("errors", "errors")])
    assert reading.result[0]["Values"] == [1.0, 3.0]
    assert len(fake.requests) == 2
    assert fake.requests[1]["NextToken"] == "1"


async def test_series_of_an_expression_is_oldest_first(fake: CloudWatchFake) -> None:
    config = settings(fake.url, metricDataQueries=RATE_QUERIES)
    provider = await open_provider(config)
    try:
        at = now()
        values = await provider.series(config, "", at - timedelta(minutes=10), at, 60.0)
    finally:
        await provider.aclose()
    assert values == [0.03, 0.01]
    assert fake.requests[0]["ScanBy"] == "TimestampAscending"
    assert fake.requests[0]["MetricDataQueries"][1]["MetricStat"]["Period"] == 60


async def test_5xx_is_an_http_error_with_status_and_body(fake: CloudWatchFake) -> None:
    fake.script.append(FakeReply(502, "bad gateway from the load balancer"))
    with pytest.raises(ProviderHTTPError) as caught:
        await measure(fake, metricDataQueries=[stat("errors", "errors")])
    assert caught.value.status == 502
    message = str(caught.value)
    assert fake.url in message and "GetMetricData" in message and "errors" in message
    assert "bad gateway" in message
    assert len(fake.requests) == 1  # one attempt: the scheduler decides retries


async def test_max_attempts_lets_botocore_retry(fake: CloudWatchFake) -> None:
    fake.script.append(FakeReply(503, "busy"))
    reading = await measure(fake, maxAttempts=2, metricDataQueries=[stat("errors", "errors")])
    assert reading.result[0]["Values"] == [1.0, 3.0]
    assert len(fake.requests) == 2


async def test_throttling_is_rate_limited(fake: CloudWatchFake) -> None:
    fake.script.append(
        FakeReply(
            400,
            '{"__type": "Throttling", "message": "Rate exceeded"}',
            {"Content-Type": "application/x-amz-json-1.0"},
        )
    )
    with pytest.raises(ProviderRateLimited, match="Rate exceeded"):
        await measure(fake, metricDataQueries=[stat("errors", "errors")])


async def test_rejected_credentials_are_an_auth_error(fake: CloudWatchFake) -> None:
    fake.script.append(
        FakeReply(
            403,
            '{"__type": "InvalidClientTokenId", "message": "The security token is invalid"}',
            {"Content-Type": "application/x-amz-json-1.0"},
        )
    )
    with pytest.raises(ProviderAuthError, match="security token is invalid") as caught:
        await measure(fake, metricDataQueries=[stat("errors", "errors")])
    assert "testing" not in str(caught.value)


async def test_slow_answer_is_a_timeout(fake: CloudWatchFake) -> None:
    fake.script.append(FakeReply(200, "{}", delay_s=1.5))
    with pytest.raises(ProviderTimeout) as caught:
        await measure(fake, timeout=0.3, metricDataQueries=[stat("errors", "errors")])
    assert fake.url in str(caught.value)


async def test_refused_endpoint_is_a_connection_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = settings(f"http://127.0.0.1:{port}", metricDataQueries=[stat("errors", "errors")])
    provider = await open_provider(config)
    try:
        with pytest.raises(ProviderError) as caught:
            await provider.measure(config)
    finally:
        await provider.aclose()
    assert isinstance(caught.value, ProviderConnectionError)
    assert f"127.0.0.1:{port}" in str(caught.value)


def test_pool_key_separates_regions_and_endpoints() -> None:
    def key(config: dict[str, Any]) -> tuple[Any, ...]:
        return CloudWatchProvider.pool_key(config, lambda _s, _k: None)

    base = {"region": "us-east-1", "endpoint": "http://127.0.0.1:1"}
    assert key(base) == key(dict(base))
    assert key(base) != key({**base, "region": "eu-west-1"})
    assert key(base) != key({**base, "endpoint": "http://127.0.0.1:2"})


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.1, "0.1"),
        (3.0, "3"),
        (123456.0, "123456"),
        (1e6, "1e+06"),
        (1234567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-2.5, "-2.5"),
        (float("nan"), "NaN"),
        (float("-inf"), "-Inf"),
    ],
)
def test_values_are_spelled_like_go_percent_v(value: float, text: str) -> None:
    assert go_value(value) == text


def _cloudwatch_cases() -> list[Any]:
    return [
        pytest.param(case, id=case_id("argo-expr.json", "cases", case))
        for case in load_argo("argo-expr.json")
        if str(case.get("source", "")).startswith("metricproviders/cloudwatch")
    ]


@pytest.mark.parametrize("case", _cloudwatch_cases())
async def test_cloudwatch_measurement_matches_argo_vector(case: dict[str, Any]) -> None:
    async with CloudWatchFake() as server:
        values = case["result"][0]["Values"]
        # CloudWatch answers newest first, so the first value is the latest point.
        server.put(
            "app", "m", [(now() - timedelta(minutes=i + 1), v) for i, v in enumerate(values)]
        )
        reading = await measure(server, interval="10m", metricDataQueries=[stat("m", "m")])
    assert reading.result[0]["Values"] == values
    assert reading.value == case["expect_value_string"]
    verdict = expr.decide(case["successCondition"], case["failureCondition"], reading.result)
    assert verdict.phase == case["expect"]


async def test_argo_cloudwatch_template_decides_on_five_points() -> None:
    path = argo_templates_dir() / "13-cloudwatch.yaml"
    (metric,) = yaml.safe_load(path.read_text())["spec"]["metrics"]
    block = metric["provider"]["cloudWatch"]
    async with CloudWatchFake() as server:
        for minutes in (3, 8, 13, 18, 23):  # one point per 5-minute bucket of the 30m window
            stamp = datetime.now(UTC) - timedelta(minutes=minutes)
            server.put("app", "errors", [(stamp, 0.5)])
            server.put("app", "requests", [(stamp, 100.0)])
        reading = await measure(server, **block)
        assert reading.result[0]["Values"] == [0.005] * 5
        verdict = expr.decide(metric["successCondition"], "", reading.result)
        assert verdict.phase == "Successful", reading.value
        server.put("app", "errors", [(datetime.now(UTC) - timedelta(minutes=13), 9.0)])
        reading = await measure(server, **block)
    assert expr.decide(metric["successCondition"], "", reading.result).phase == "Failed"
