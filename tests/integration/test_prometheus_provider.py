"""PrometheusProvider against the real Prometheus rig: Argo's result shapes and failures."""

# ruff: noqa: F811  (pytest fixtures are imported, then named as parameters)

from __future__ import annotations

import math
import socket
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from analysisd import expr
from providers.base import (
    ProviderBadBody,
    ProviderConfigError,
    ProviderConnectionError,
    ProviderHTTPError,
    ProviderTimeout,
)
from providers.prometheus import RESOLVED_QUERY, PrometheusProvider
from tests.rigs.prometheus import (
    P99_QUERY,
    P99_SECONDS,
    SUCCESS_RATE_QUERY,
    PrometheusRig,
    prometheus_rig,  # noqa: F401
)

pytestmark = pytest.mark.integration


def _no_secrets(name: str, key: str) -> str | None:
    return None


@pytest.fixture
async def provider(prometheus_rig: PrometheusRig) -> AsyncIterator[PrometheusProvider]:
    instance = PrometheusProvider.create({"address": prometheus_rig.url}, _no_secrets)
    try:
        yield instance
    finally:
        await instance.aclose()


def block(rig: PrometheusRig, query: str, **extra: Any) -> Mapping[str, Any]:
    return {"address": rig.url, "query": query, **extra}


SUCCESS_RATE_TEMPLATE = {
    "successCondition": "result[0] >= 0.95",
    "failureCondition": "",
}


@pytest.mark.parametrize(("version", "passes"), [("stable", True), ("canary", False)])
async def test_success_rate_template_passes_stable_and_fails_canary(
    provider: PrometheusProvider, prometheus_rig: PrometheusRig, version: str, passes: bool
) -> None:
    query = SUCCESS_RATE_QUERY.format(version=version)
    reading = await provider.measure(block(prometheus_rig, query))
    assert isinstance(reading.result, list) and len(reading.result) == 1
    assert (reading.result[0] >= 0.95) is passes
    assert reading.metadata[RESOLVED_QUERY] == query
    verdict = expr.decide(
        SUCCESS_RATE_TEMPLATE["successCondition"],
        SUCCESS_RATE_TEMPLATE["failureCondition"],
        reading.result,
    )
    assert verdict.phase == ("Successful" if passes else "Failed")


async def test_success_rate_value_is_spelled_like_argo(
    provider: PrometheusProvider, prometheus_rig: PrometheusRig
) -> None:
    query = f"round({SUCCESS_RATE_QUERY.format(version='canary')}, 0.001)"
    reading = await provider.measure(block(prometheus_rig, query))
    assert reading.result == [0.9]
    assert reading.value == "[0.9]"


@pytest.mark.parametrize("version", ["stable", "canary", "canary-fast"])
async def test_histogram_quantile_p99_is_a_one_element_vector(
    provider: PrometheusProvider, prometheus_rig: PrometheusRig, version: str
) -> None:
    reading = await provider.measure(block(prometheus_rig, P99_QUERY.format(version=version)))
    assert reading.result == [pytest.approx(P99_SECONDS[version], abs=1e-9)]


async def test_empty_vector_is_an_empty_list(
    provider: PrometheusProvider, prometheus_rig: PrometheusRig
) -> None:
    reading = await provider.measure(
        block(prometheus_rig, 'http_requests_total{version="no-such-version"}')
    )
    assert reading.result == []
    assert reading.value == "[]"


async def test_zero_over_zero_is_a_nan_scalar(
    provider: PrometheusProvider, prometheus_rig: PrometheusRig
) -> None:
    reading = await provider.measure(block(prometheus_rig, "0/0"))
    assert isinstance(reading.result, float) and math.isnan(reading.result)
    assert reading.value == "NaN"


async def test_scalar_of_empty_vector_is_nan(
    provider: PrometheusProvider, prometheus_rig: PrometheusRig
) -> None:
    reading = await provider.measure(block(prometheus_rig, 'scalar(up{job="nothing"})'))
    assert isinstance(reading.result, float) and math.isnan(reading.result)


async def test_scalar_is_a_float_and_infinity_is_spelled_plus_inf(
    provider: PrometheusProvider, prometheus_rig: PrometheusRig
) -> None:
    one = await provider.measure(block(prometheus_rig, "scalar(vector(1))"))
    inf = await provider.measure(block(prometheus_rig, "1/0"))
    assert (one.result, one.value) == (1.0, "1")
    assert inf.result == math.inf and inf.value == "+Inf"


async def test_vector_of_nan_samples_keeps_nan_elements(
    provider: PrometheusProvider, prometheus_rig: PrometheusRig
) -> None:
    reading = await provider.measure(block(prometheus_rig, "vector(0) / 0"))
    assert len(reading.result) == 1 and math.isnan(reading.result[0])
    assert reading.value == "[NaN]"


async def test_instant_range_selector_flattens_the_matrix(
    provider: PrometheusProvider, prometheus_rig: PrometheusRig
) -> None:
    # Two series (200 and 500) x samples in the last 20s: one flat list, as Argo master.
    query = 'http_requests_total{version="canary"}[20s]'
    reading = await provider.measure(block(prometheus_rig, query))
    assert isinstance(reading.result, list)
    assert len(reading.result) >= 4 and all(v > 0 for v in reading.result)
    assert reading.value.startswith("[") and reading.value.count(",") == len(reading.result) - 1


async def test_range_query_measurement_flattens_every_step(
    provider: PrometheusProvider, prometheus_rig: PrometheusRig
) -> None:
    config = block(
        prometheus_rig,
        SUCCESS_RATE_QUERY.format(version="stable"),
        rangeQuery={"start": 'now() - duration("10m")', "end": "now()", "step": "1m"},
    )
    reading = await provider.measure(config)
    assert len(reading.result) == 11
    assert all(v == pytest.approx(0.99, abs=1e-9) for v in reading.result)


async def test_series_returns_one_value_per_step(
    provider: PrometheusProvider, prometheus_rig: PrometheusRig
) -> None:
    end = datetime.now(UTC)
    start = end - timedelta(minutes=30)
    values = await provider.series(
        {"address": prometheus_rig.url},
        'sum(rate(http_requests_total{version="canary"}[1m]))',
        start,
        end,
        60.0,
    )
    assert len(values) == 31
    assert all(5 < v < 15 for v in values)  # 10 rps ± 50%
    assert len(set(values)) > 1  # the traffic wiggles: a real series, not a constant


async def test_series_of_nothing_is_empty(
    provider: PrometheusProvider, prometheus_rig: PrometheusRig
) -> None:
    end = datetime.now(UTC)
    values = await provider.series(
        {"address": prometheus_rig.url}, 'up{job="nothing"}', end - timedelta(minutes=5), end, 15
    )
    assert values == []


async def test_series_refuses_several_series(
    provider: PrometheusProvider, prometheus_rig: PrometheusRig
) -> None:
    end = datetime.now(UTC)
    with pytest.raises(ProviderBadBody, match="2 series"):
        await provider.series(
            {"address": prometheus_rig.url},
            'rate(http_requests_total{version="canary"}[1m])',
            end - timedelta(minutes=5),
            end,
            60,
        )


async def test_string_result_is_not_supported(
    provider: PrometheusProvider, prometheus_rig: PrometheusRig
) -> None:
    with pytest.raises(ProviderBadBody, match="string"):
        await provider.measure(block(prometheus_rig, '"hello"'))


async def test_bad_promql_is_an_http_error_naming_the_query(
    provider: PrometheusProvider, prometheus_rig: PrometheusRig
) -> None:
    with pytest.raises(ProviderHTTPError) as caught:
        await provider.measure(block(prometheus_rig, "sum(rate(http_requests_total[1m])"))
    assert caught.value.status == 400
    message = str(caught.value)
    assert "parse error" in message
    assert "sum(rate(http_requests_total[1m])" in message
    assert prometheus_rig.url in message


async def test_slow_query_comes_back_as_prometheus_503_timeout(
    provider: PrometheusProvider, prometheus_rig: PrometheusRig
) -> None:
    # ~0.2 s of work; Prometheus is told to give up after 10 ms (it may overrun a bit,
    # so the client timeout stays generous) and says so with a 503.
    slow = 'sum(count_over_time(http_requests_total{app="demo"}[60m:5ms]))'
    with pytest.raises(ProviderHTTPError) as caught:
        await provider.measure(block(prometheus_rig, slow, timeout=30, queryTimeout="10ms"))
    assert caught.value.status == 503
    assert "timed out" in str(caught.value)


async def test_zero_timeout_times_out_at_once(
    provider: PrometheusProvider, prometheus_rig: PrometheusRig
) -> None:
    with pytest.raises(ProviderTimeout):
        await provider.measure(block(prometheus_rig, "vector(1)", timeout=0))


async def test_negative_timeout_is_a_config_error(
    provider: PrometheusProvider, prometheus_rig: PrometheusRig
) -> None:
    with pytest.raises(ProviderConfigError, match="negative"):
        await provider.measure(block(prometheus_rig, "vector(1)", timeout=-1))


async def test_connection_refused_is_a_connection_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        address = f"http://127.0.0.1:{port}"
        instance = PrometheusProvider.create({"address": address}, _no_secrets)
        try:
            with pytest.raises(ProviderConnectionError) as caught:
                await instance.measure({"address": address, "query": "vector(1)"})
        finally:
            await instance.aclose()
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert "vector(1)" in str(caught.value)
