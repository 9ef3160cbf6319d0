"""Wavefront (chart query API) against tests/rigs/wavefront_api.py.

Each case ends in the phase and message the engine records (tests/rigs/phases.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from providers.base import ProviderAuthError, ProviderConfigError
from providers.registry import LimitsConfig, ProviderRegistry, check_block
from providers.wavefront import base_url, closest, token_key
from tests.rigs.phases import measure_metric
from tests.rigs.wavefront_api import Canned, Series, WavefrontApi

pytestmark = pytest.mark.integration

TOKEN = "wf-token-6c1f0d3e-0123-4567-89ab"
QUERY = 'sum(rate(ts("checkout.requests.errors", env="prod"))) / sum(rate(ts("checkout.requests")))'


def secrets_for(api: WavefrontApi, token: str = TOKEN) -> Callable[[str, str], str | None]:
    return lambda secret, key: (
        token if (secret, key) == ("wavefront-api-tokens", "127.0.0.1") else None
    )


def metric(api: WavefrontApi, query: str = QUERY, **extra: Any) -> dict[str, Any]:
    block: dict[str, Any] = {"address": api.url, "query": query, **extra.pop("block", {})}
    return {"name": "error-ratio", "provider": {"wavefront": block}, **extra}


@pytest.fixture
async def api() -> AsyncIterator[WavefrontApi]:
    async with WavefrontApi(token=TOKEN) as server:
        yield server


@pytest.fixture
async def registry(api: WavefrontApi) -> AsyncIterator[ProviderRegistry]:
    limits = LimitsConfig(coalesce_window=0, max_attempts=1)
    async with ProviderRegistry(secrets=secrets_for(api), limits=limits) as instance:
        yield instance


def recent(*values: float) -> list[tuple[float, float]]:
    now = int(time.time())
    return [(now - 60 * (len(values) - i), v) for i, v in enumerate(values)]


async def test_one_series_is_the_value_closest_to_now(
    api: WavefrontApi, registry: ProviderRegistry
) -> None:
    api.series[QUERY] = [Series("error-ratio", recent(0.5, 0.02))]
    outcome = await measure_metric(registry, metric(api, successCondition="result < 0.05"))
    assert (outcome.phase, outcome.message, outcome.value) == ("Successful", "", "0.02")
    (request,) = api.requests
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.query["q"] == QUERY and request.query["s"] == request.query["e"]
    assert (request.query["g"], request.query["p"], request.query["i"]) == ("s", "1", "true")
    assert abs(int(request.query["s"]) / 1000 - time.time()) < 600
    failed = await measure_metric(registry, metric(api, failureCondition="result > 0.01"))
    assert failed.phase == "Failed"


async def test_several_series_are_a_list(api: WavefrontApi, registry: ProviderRegistry) -> None:
    api.series[QUERY] = [
        Series("error-ratio", recent(0.031), tags={"zone": "a"}),
        Series("error-ratio", recent(0.1), tags={"zone": "b"}),
    ]
    outcome = await measure_metric(
        registry, metric(api, successCondition="len(result) == 2 && result[1] == 0.1")
    )
    assert (outcome.phase, outcome.value) == ("Successful", "[0.03,0.10]"), outcome


async def test_no_series_is_argos_error_with_wavefronts_warning(
    api: WavefrontApi, registry: ProviderRegistry
) -> None:
    outcome = await measure_metric(registry, metric(api, successCondition="result < 1"))
    assert outcome.phase == "Error"
    assert outcome.message == (
        f"wavefront at {api.url}/api/v2/chart/api: No TimeSeries found in response from Wavefront "
        f"(query {QUERY!r}) (warnings: No metrics matching - {QUERY})"
    )


async def test_a_rejected_token_is_an_auth_error_without_the_token(api: WavefrontApi) -> None:
    async with ProviderRegistry(secrets=secrets_for(api, "wf-wrong-token")) as registry:
        outcome = await measure_metric(registry, metric(api))
    assert outcome.phase == "Error"
    assert outcome.message == (
        f"wavefront at {api.url}/api/v2/chart/api: server returned 401 Unauthorized: "
        '{"status": {"result": "ERROR", "message": "Authorization required", "code": 401}} '
        "(HTTP 401)"
    )
    assert isinstance(outcome.error, ProviderAuthError)
    assert "wf-wrong-token" not in outcome.message


async def test_no_token_for_the_address_is_argos_message(api: WavefrontApi) -> None:
    async with ProviderRegistry(secrets=lambda s, k: None) as registry:
        outcome = await measure_metric(registry, metric(api))
    assert outcome.phase == "Error"
    assert outcome.message == (
        "wavefront: API token not found (secret 'wavefront-api-tokens' has no key '127.0.0.1')"
    )


@pytest.mark.parametrize(
    ("canned", "expected"),
    [
        (
            Canned(400, '{"errorType":"QuerySyntaxError","errorMessage":"Unexpected token"}'),
            'server returned 400 Bad Request: {"errorType":"QuerySyntaxError",'
            '"errorMessage":"Unexpected token"} (HTTP 400)',
        ),
        (
            Canned(500, "internal error"),
            "server returned 500 Internal Server Error: internal error (HTTP 500)",
        ),
        (Canned(502, ""), "server returned 502 Bad Gateway (HTTP 502)"),
    ],
    ids=["400", "500", "502-empty"],
)
async def test_http_errors_are_argos_server_returned(
    api: WavefrontApi, registry: ProviderRegistry, canned: Canned, expected: str
) -> None:
    api.script.append(canned)
    outcome = await measure_metric(registry, metric(api))
    assert outcome.phase == "Error"
    assert outcome.message == f"wavefront at {api.url}/api/v2/chart/api: {expected}"


async def test_a_failed_query_is_an_error(api: WavefrontApi, registry: ProviderRegistry) -> None:
    api.query_errors[QUERY] = "Terminating Query to save resources"
    outcome = await measure_metric(registry, metric(api))
    assert outcome.phase == "Error"
    assert "QueryExecutionFailed" in outcome.message
    assert "Terminating Query to save resources" in outcome.message


async def test_429_waits_for_retry_after_then_measures(api: WavefrontApi) -> None:
    api.series[QUERY] = [Series("error-ratio", recent(0.04))]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    limited = Canned(429, "rate limit exceeded", {"Retry-After": "2"})
    limits = LimitsConfig(coalesce_window=0, max_attempts=2)
    async with ProviderRegistry(secrets=secrets_for(api), limits=limits, sleep=sleep) as registry:
        api.script.append(limited)
        outcome = await measure_metric(registry, metric(api))
        assert (outcome.phase, outcome.value) == ("Successful", "0.04")
        assert any(1.9 <= w <= 2.3 for w in waits), waits
        api.script.extend([limited, limited])
        exhausted = await measure_metric(registry, metric(api))
    assert exhausted.phase == "Error"
    assert exhausted.message == (
        f"wavefront at {api.url}/api/v2/chart/api: server returned 429 Too Many Requests: "
        "rate limit exceeded (HTTP 429): rate limited; retry after 2s"
    )


async def test_a_slow_answer_is_a_timeout(api: WavefrontApi, registry: ProviderRegistry) -> None:
    api.script.append(Canned(200, "{}", delay_s=3))
    outcome = await measure_metric(registry, metric(api, block={"timeout": 0.3}))
    assert outcome.phase == "Error"
    assert outcome.message == f"wavefront at {api.url}/api/v2/chart/api did not answer within 0.3s"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("<html>oops</html>", "HTTP 200 but Expecting value"),
        ('{"timeseries": {"a": 1}}', "HTTP 200 but 'timeseries' is not a list"),
        (
            '{"timeseries": [{"data": [[1700000000, "x"]]}]}',
            "timeseries[0].data[0] is not a [timestamp, value] pair",
        ),
    ],
    ids=["html", "timeseries-object", "string-value"],
)
async def test_garbage_bodies_are_errors(
    api: WavefrontApi, registry: ProviderRegistry, body: str, expected: str
) -> None:
    api.script.append(Canned(200, body))
    outcome = await measure_metric(registry, metric(api))
    assert outcome.phase == "Error"
    assert outcome.message.startswith(f"wavefront at {api.url}/api/v2/chart/api: ")
    assert expected in outcome.message


async def test_identical_queries_falling_due_together_share_one_request(api: WavefrontApi) -> None:
    api.series[QUERY] = [Series("error-ratio", recent(0.01))]
    async with ProviderRegistry(secrets=secrets_for(api)) as registry:
        block = {"address": api.url, "query": QUERY}
        readings = await asyncio.gather(
            *(registry.measure("wavefront", dict(block)) for _ in range(10))
        )
        assert registry.pooled() == 1
    assert {r.value for r in readings} == {"0.01"}
    assert len(api.requests) == 1


async def test_series_reads_one_series_over_a_range(api: WavefrontApi) -> None:
    end = datetime.now(UTC)
    stamps = [int((end - timedelta(minutes=m)).timestamp()) for m in (3, 2, 1)]
    api.series["ts(latency)"] = [Series("latency", list(zip(stamps, [1.0, 2.0, 3.0], strict=True)))]
    async with ProviderRegistry(secrets=secrets_for(api)) as registry:
        values = await registry.series(
            "wavefront", {"address": api.url}, "ts(latency)", end - timedelta(minutes=5), end, 60
        )
    assert values == [1.0, 2.0, 3.0]


def test_address_token_key_and_closest_point_follow_argo() -> None:
    assert base_url("example.wavefront.com") == "https://example.wavefront.com"
    assert token_key("example.wavefront.com") == "example.wavefront.com"
    assert token_key("http://127.0.0.1:8080") == "127.0.0.1"
    assert closest([[100, 1.0], [160, 2.0], [230, 3.0]], 200) == (3.0, 230, 30)
    assert closest([[100, 1.0], [190, 2.0]], 200) == (2.0, 190, -10)
    assert closest([], 200) == (0.0, 0, -(2**63))


def test_the_door_checks_the_block() -> None:
    check_block("wavefront", {"address": "example.wavefront.com", "query": QUERY})
    with pytest.raises(ProviderConfigError) as caught:
        check_block("wavefront", {"query": QUERY})
    assert caught.value.field == "address"
    with pytest.raises(ProviderConfigError, match="host name"):
        check_block("wavefront", {"address": "example.wavefront.com/api", "query": QUERY})
