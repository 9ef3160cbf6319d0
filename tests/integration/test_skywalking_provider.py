"""SkyWalking (GraphQL to the OAP) against tests/rigs/skywalking_api.py (a graphql-core OAP).

Each case ends in the phase and message the engine records (tests/rigs/phases.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from providers.base import ProviderAuthError, ProviderConfigError, ProviderUnsupported
from providers.registry import LimitsConfig, ProviderRegistry, check_block
from providers.skywalking import duration_variable
from tests.rigs.phases import measure_metric
from tests.rigs.skywalking_api import Canned, SkyWalkingOap

pytestmark = pytest.mark.integration

# The query of Argo's SkyWalking documentation, for the service "checkout".
APDEX = """query queryData($duration: Duration!) {
  service_apdex: readMetricsValues(
    condition: {
      name: "service_apdex",
      entity: { scope: Service, serviceName: "checkout", normal: true }
    },
    duration: $duration) {
      label values { values { value } }
  } }"""
ARGO_CONDITION = "all(result.service_apdex.values.values, {asFloat(.value) >= 9900})"


def metric(oap: SkyWalkingOap, query: str = APDEX, **extra: Any) -> dict[str, Any]:
    block: dict[str, Any] = {
        "address": oap.url,
        "query": query,
        "interval": "3m",
        **extra.pop("block", {}),
    }
    return {"name": "apdex", "provider": {"skywalking": block}, **extra}


@pytest.fixture
async def oap() -> AsyncIterator[SkyWalkingOap]:
    async with SkyWalkingOap() as server:
        yield server


@pytest.fixture
async def registry() -> AsyncIterator[ProviderRegistry]:
    limits = LimitsConfig(coalesce_window=0, max_attempts=1)
    async with ProviderRegistry(secrets=lambda s, k: None, limits=limits) as instance:
        yield instance


async def test_argos_documented_apdex_query_and_condition(
    oap: SkyWalkingOap, registry: ProviderRegistry
) -> None:
    oap.metrics[("service_apdex", "checkout")] = [9950, 9990, 10000, 9920]
    outcome = await measure_metric(registry, metric(oap, successCondition=ARGO_CONDITION))
    assert (outcome.phase, outcome.message) == ("Successful", "")
    # interval 3m: start..end is four minutes of MINUTE step
    assert outcome.value == (
        '{"service_apdex":{"label":null,"values":{"values":'
        '[{"value":9950},{"value":9990},{"value":10000},{"value":9920}]}}}'
    )
    (request,) = oap.requests
    duration = request.body["variables"]["duration"]
    assert duration["step"] == "MINUTE"
    start = datetime.strptime(duration["start"], "%Y-%m-%d %H%M")
    end = datetime.strptime(duration["end"], "%Y-%m-%d %H%M")
    assert (end - start).total_seconds() == 180
    assert request.body["query"] == APDEX
    oap.metrics[("service_apdex", "checkout")] = [9950, 9100, 10000, 9920]
    failed = await measure_metric(
        registry,
        metric(
            oap, successCondition=ARGO_CONDITION, failureCondition="!" + "(" + ARGO_CONDITION + ")"
        ),
    )
    assert failed.phase == "Failed"


async def test_a_single_value_query(oap: SkyWalkingOap, registry: ProviderRegistry) -> None:
    oap.metrics[("service_resp_time", "checkout")] = [120, 180]
    query = (
        'query q($duration: Duration!) { p: readMetricsValue(condition: {name: "service_resp_time",'
        ' entity: {scope: Service, serviceName: "checkout", normal: true}}, duration: $duration) }'
    )
    outcome = await measure_metric(registry, metric(oap, query, successCondition="result.p < 200"))
    assert (outcome.phase, outcome.value) == ("Successful", '{"p":150}')


async def test_no_data_is_argos_error(oap: SkyWalkingOap, registry: ProviderRegistry) -> None:
    oap.script.append(Canned(200, '{"data": null}'))
    outcome = await measure_metric(registry, metric(oap, successCondition=ARGO_CONDITION))
    assert outcome.phase == "Error"
    assert outcome.message == (
        f"skywalking at {oap.url}/graphql: no results returned from SkyWalking query"
    )


async def test_a_service_without_data_reads_empty_values(
    oap: SkyWalkingOap, registry: ProviderRegistry
) -> None:
    oap.metrics[("service_apdex", "cart")] = [9999]  # the metric exists, checkout has no data
    outcome = await measure_metric(
        registry,
        metric(oap, successCondition="all(result.service_apdex.values.values, {.value == 0})"),
    )
    assert outcome.phase == "Successful", outcome


async def test_graphql_errors_are_machinebox_messages(
    oap: SkyWalkingOap, registry: ProviderRegistry
) -> None:
    outcome = await measure_metric(registry, metric(oap))
    assert outcome.phase == "Error"
    assert outcome.message == (
        f"skywalking at {oap.url}/graphql: graphql: Metrics [service_apdex] is not defined"
    )
    bad = await measure_metric(registry, metric(oap, "query { readMetricsValues { label } }"))
    assert bad.phase == "Error"
    assert bad.message.startswith(
        f"skywalking at {oap.url}/graphql: graphql: Field 'readMetricsValues' argument"
    )


async def test_credentials_in_the_address_are_basic_auth_and_never_shown() -> None:
    async with (
        SkyWalkingOap(basic_auth=("argo", "oap-pass")) as oap,
        ProviderRegistry(secrets=lambda s, k: None) as registry,
    ):
        oap.metrics[("service_apdex", "checkout")] = [9999] * 4
        host = oap.url.removeprefix("http://")
        good = await measure_metric(
            registry,
            metric(
                oap,
                block={"address": f"http://argo:oap-pass@{host}"},
                successCondition=ARGO_CONDITION,
            ),
        )
        bad = await measure_metric(
            registry, metric(oap, block={"address": f"http://argo:nope@{host}"})
        )
    assert good.phase == "Successful", good
    assert bad.phase == "Error" and isinstance(bad.error, ProviderAuthError)
    assert bad.message == (
        f"skywalking at {oap.url}/graphql: graphql: server returned a non-200 status code: 401 "
        "(HTTP 401)"
    )
    assert "oap-pass" not in bad.message and "nope" not in bad.message


@pytest.mark.parametrize(
    ("canned", "expected"),
    [
        (
            Canned(500, "<html>Internal Server Error</html>"),
            "graphql: server returned a non-200 status code: 500 (HTTP 500)",
        ),
        (
            Canned(400, '{"errors":[{"message":"Invalid Syntax"}]}'),
            "graphql: Invalid Syntax (HTTP 400)",
        ),
        (Canned(502, ""), "graphql: server returned a non-200 status code: 502 (HTTP 502)"),
    ],
    ids=["500", "400-errors", "502-empty"],
)
async def test_http_errors_are_machinebox_messages(
    oap: SkyWalkingOap, registry: ProviderRegistry, canned: Canned, expected: str
) -> None:
    oap.script.append(canned)
    outcome = await measure_metric(registry, metric(oap))
    assert outcome.phase == "Error"
    assert outcome.message == f"skywalking at {oap.url}/graphql: {expected}"


async def test_429_waits_for_retry_after_then_measures(oap: SkyWalkingOap) -> None:
    oap.metrics[("service_apdex", "checkout")] = [9999] * 4
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    limited = Canned(429, "slow down", {"Retry-After": "4"})
    limits = LimitsConfig(coalesce_window=0, max_attempts=2)
    async with ProviderRegistry(secrets=lambda s, k: None, limits=limits, sleep=sleep) as registry:
        oap.script.append(limited)
        outcome = await measure_metric(registry, metric(oap, successCondition=ARGO_CONDITION))
        assert outcome.phase == "Successful"
        assert any(3.9 <= w <= 4.5 for w in waits), waits
        oap.script.extend([limited, limited])
        exhausted = await measure_metric(registry, metric(oap))
    assert exhausted.phase == "Error"
    assert exhausted.message == (
        f"skywalking at {oap.url}/graphql: graphql: server returned a non-200 status code: 429 "
        "(HTTP 429): rate limited; retry after 4s"
    )


async def test_a_slow_answer_is_a_timeout(oap: SkyWalkingOap, registry: ProviderRegistry) -> None:
    oap.script.append(Canned(200, "{}", delay_s=3))
    outcome = await measure_metric(registry, metric(oap, block={"timeout": 0.3}))
    assert outcome.phase == "Error"
    assert outcome.message == f"skywalking at {oap.url}/graphql did not answer within 0.3s"


@pytest.mark.parametrize("body", ["<html>proxy error</html>", "[1, 2]"], ids=["html", "list"])
async def test_garbage_bodies_are_errors(
    oap: SkyWalkingOap, registry: ProviderRegistry, body: str
) -> None:
    oap.script.append(Canned(200, body))
    outcome = await measure_metric(registry, metric(oap))
    assert outcome.phase == "Error"
    assert outcome.message.startswith(
        f"skywalking at {oap.url}/graphql: HTTP 200 but the body is not a GraphQL answer"
    )


async def test_identical_queries_falling_due_together_share_one_request(oap: SkyWalkingOap) -> None:
    oap.metrics[("service_apdex", "checkout")] = [9999]
    async with ProviderRegistry(secrets=lambda s, k: None) as registry:
        block = metric(oap)["provider"]["skywalking"]
        readings = await asyncio.gather(
            *(registry.measure("skywalking", dict(block)) for _ in range(10))
        )
        assert registry.pooled() == 1
    assert len({r.value for r in readings}) == 1
    assert len(oap.requests) == 1


async def test_range_data_is_refused_in_one_sentence(oap: SkyWalkingOap) -> None:
    end = datetime.now(UTC)
    async with ProviderRegistry(secrets=lambda s, k: None) as registry:
        with pytest.raises(ProviderUnsupported, match="skywalking does not serve range data"):
            await registry.series("skywalking", {"address": oap.url}, APDEX, end, end, 60)


def test_the_duration_is_argos() -> None:
    now = datetime(2026, 12, 5, 8, 7, 30, tzinfo=UTC)
    assert duration_variable(now, 300) == {
        "start": "2026-12-05 0802",
        "end": "2026-12-05 0807",
        "step": "MINUTE",
    }


def test_the_door_checks_the_block() -> None:
    check_block("skywalking", {"address": "http://oap:12800", "query": APDEX, "interval": "5m"})
    with pytest.raises(ProviderConfigError, match='time: invalid duration ""') as caught:
        check_block("skywalking", {"address": "http://oap:12800", "query": APDEX})
    assert caught.value.field == "interval"
    with pytest.raises(ProviderConfigError) as caught:
        check_block("skywalking", {"query": APDEX, "interval": "5m"})
    assert caught.value.field == "address"
