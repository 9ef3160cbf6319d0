"""Graphite against a real Graphite (Debian's carbon-cache + graphite-web, tests/rigs/graphite.py).

Each case ends in the phase and message the engine records (tests/rigs/phases.py); faults a
real Graphite cannot be made to give (401, 5xx, 429, a slow or garbled answer) come from
GraphiteFront, a pass-through server in front of it.
"""

# ruff: noqa: F811  (pytest fixtures are imported, then named as parameters)

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from providers.base import ProviderConfigError
from providers.graphite import GraphiteProvider, render_query
from providers.registry import LimitsConfig, ProviderRegistry, check_block
from tests.rigs.graphite import Fault, GraphiteFront, GraphiteRig, graphite_rig  # noqa: F401
from tests.rigs.phases import measure_metric

pytestmark = pytest.mark.integration

_names = itertools.count()


def fresh_metric_name(stem: str) -> str:
    """A metric path no other test wrote (the rig is shared by the session)."""
    return f"analysisd.{stem}.t{int(time.time())}n{next(_names)}"


def written(rig: GraphiteRig, values: list[float], stem: str = "errors") -> str:
    """Write `values` 10 s apart ending 10 s ago; return the metric path once it renders."""
    name = fresh_metric_name(stem)
    now = int(time.time()) // 10 * 10
    points = [(now - 10 * (len(values) - i), v) for i, v in enumerate(values)]
    rig.write({name: points})
    rig.wait_for(name, len(values))
    return name


def metric(address: str, query: str, **extra: Any) -> dict[str, Any]:
    block: dict[str, Any] = {"address": address, "query": query}
    block.update(extra.pop("block", {}))
    return {"name": "errors", "provider": {"graphite": block}, **extra}


@pytest.fixture
async def registry() -> AsyncIterator[ProviderRegistry]:
    async with ProviderRegistry(
        secrets=lambda n, k: None, limits=LimitsConfig(coalesce_window=0, max_attempts=1)
    ) as instance:
        yield instance


async def test_datapoints_of_the_first_target_become_a_float_list(
    graphite_rig: GraphiteRig, registry: ProviderRegistry
) -> None:
    name = written(graphite_rig, [0.5, 2.5, 4.5])
    query = f"target={name}\n  &from=-5min"  # blanks are dropped, as Argo does
    outcome = await measure_metric(
        registry,
        metric(
            graphite_rig.url,
            query,
            successCondition="len(result) == 3 && result[0] == 0.5 && result[2] < 5",
        ),
    )
    assert (outcome.phase, outcome.message) == ("Successful", "")
    assert outcome.value == "[0.500000,2.500000,4.500000]"
    failing = await measure_metric(
        registry, metric(graphite_rig.url, query, failureCondition="result[2] > 4")
    )
    assert failing.phase == "Failed"


async def test_a_real_function_query_is_rendered(
    graphite_rig: GraphiteRig, registry: ProviderRegistry
) -> None:
    name = written(graphite_rig, [1.0, 3.0])
    # The shape of Argo's documented example: summarize(asPercent(...)) over a window.
    query = f"target=summarize(asPercent({name},sumSeries({name},{name})),'10min','avg')&from=-5min"
    outcome = await measure_metric(
        registry, metric(graphite_rig.url, query, successCondition="all(result, {# == 50})")
    )
    assert outcome.phase == "Successful", outcome
    # One 10-minute bucket, or two when the points straddle a bucket boundary.
    assert outcome.value in ("[50.000000]", "[50.000000,50.000000]"), outcome


async def test_no_target_is_the_error_no_values_found(
    graphite_rig: GraphiteRig, registry: ProviderRegistry
) -> None:
    missing = fresh_metric_name("never.written")
    outcome = await measure_metric(
        registry, metric(graphite_rig.url, f"target={missing}&from=-5min", successCondition="true")
    )
    assert outcome.phase == "Error"
    assert outcome.message == (
        f"graphite at {graphite_rig.url}/render: no values found "
        f"(query 'target={missing}&from=-5min')"
    )


async def test_points_outside_the_window_give_an_empty_list(
    graphite_rig: GraphiteRig, registry: ProviderRegistry
) -> None:
    name = fresh_metric_name("old")
    old = int(time.time()) - 3600
    graphite_rig.write({name: [(old, 7.0)]})
    graphite_rig.wait_for(name, 1, window="-2h")
    # The target exists, every point in the last minute is null: Argo hands over [].
    outcome = await measure_metric(
        registry,
        metric(graphite_rig.url, f"target={name}&from=-1min", successCondition="result[0] < 5"),
    )
    assert (outcome.phase, outcome.value) == ("Error", "[]")  # Argo sets the value first
    assert outcome.message == (
        'could not evaluate successCondition "result[0] < 5": '
        "metric result is nil or empty: no data returned from the metric provider"
    )
    empty = await measure_metric(
        registry,
        metric(graphite_rig.url, f"target={name}&from=-1min", successCondition="len(result) == 0"),
    )
    assert (empty.phase, empty.value) == ("Successful", "[]")


async def test_graphite_refusing_a_query_is_argos_error_response(
    graphite_rig: GraphiteRig, registry: ProviderRegistry
) -> None:
    outcome = await measure_metric(
        registry, metric(graphite_rig.url, "target=nosuchfunction(a.b)&from=-5min")
    )
    assert outcome.phase == "Error"
    assert outcome.message.startswith(
        f"graphite at {graphite_rig.url}/render: error response: Invalid parameters "
        "(Received request for unknown function: nosuchfunction)"
    )
    assert outcome.message.endswith("(HTTP 400)")


async def test_credentials_in_the_address_are_basic_auth_and_never_shown(
    graphite_rig: GraphiteRig, registry: ProviderRegistry
) -> None:
    name = written(graphite_rig, [2.0])
    async with GraphiteFront(graphite_rig.url, basic_auth=("argo", "s3cret-pass")) as front:
        host = front.url.removeprefix("http://")
        good = await measure_metric(
            registry, metric(f"http://argo:s3cret-pass@{host}", f"target={name}&from=-5min")
        )
        bad = await measure_metric(
            registry, metric(f"http://argo:wrong-pass@{host}", f"target={name}&from=-5min")
        )
    assert (good.phase, good.value) == ("Successful", "[2.000000]")
    assert bad.phase == "Error"
    assert bad.message.startswith(
        f"graphite at {front.url}/render: error response: 401 Unauthorized"
    )
    assert bad.message.endswith("(HTTP 401)")
    assert "wrong-pass" not in bad.message and "s3cret-pass" not in bad.message
    assert type(bad.error).__name__ == "ProviderAuthError"


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault(500, "carbonlink exploded"), "error response: carbonlink exploded (HTTP 500)"),
        (Fault(502, ""), "error response:  (HTTP 502)"),
        (Fault(404, "no such page"), "error response: no such page (HTTP 404)"),
    ],
    ids=["500", "502-empty", "404"],
)
async def test_server_errors_are_errors_with_status_and_body(
    graphite_rig: GraphiteRig, registry: ProviderRegistry, fault: Fault, expected: str
) -> None:
    async with GraphiteFront(graphite_rig.url) as front:
        front.script.append(fault)
        outcome = await measure_metric(registry, metric(front.url, "target=a.b&from=-5min"))
    assert outcome.phase == "Error"
    assert outcome.message == f"graphite at {front.url}/render: {expected}"


async def test_429_is_retried_after_retry_after_then_measured(graphite_rig: GraphiteRig) -> None:
    name = written(graphite_rig, [1.25])
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    limits = LimitsConfig(coalesce_window=0, max_attempts=3)
    async with (
        GraphiteFront(graphite_rig.url) as front,
        ProviderRegistry(secrets=lambda n, k: None, limits=limits, sleep=sleep) as registry,
    ):
        front.script.append(Fault(429, "slow down", {"Retry-After": "7"}))
        outcome = await measure_metric(registry, metric(front.url, f"target={name}&from=-5min"))
        assert (outcome.phase, outcome.value) == ("Successful", "[1.250000]")
        assert len(front.requests) == 2
        assert any(6.9 <= wait <= 7.8 for wait in waits), waits  # Retry-After, plus jitter
        front.script.extend([Fault(429, "slow down", {"Retry-After": "0"})] * 3)
        exhausted = await measure_metric(registry, metric(front.url, f"target={name}&from=-5min"))
    assert exhausted.phase == "Error"
    assert exhausted.message == (
        f"graphite at {front.url}/render: error response: slow down (HTTP 429): "
        "rate limited; retry after 0s"
    )


async def test_a_slow_graphite_is_a_timeout(
    graphite_rig: GraphiteRig, registry: ProviderRegistry
) -> None:
    async with GraphiteFront(graphite_rig.url) as front:
        front.script.append(Fault(200, "[]", delay_s=3))
        outcome = await measure_metric(
            registry, metric(front.url, "target=a.b&from=-5min", block={"timeout": 0.3})
        )
    assert outcome.phase == "Error"
    assert outcome.message == f"graphite at {front.url}/render did not answer within 0.3s"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("<html>gateway</html>", "HTTP 200 but the body is not JSON: '<html>gateway</html>'"),
        ('{"target": "a"}', "HTTP 200 but the answer is a JSON dict, not a list of targets"),
        ('[{"target": "a", "datapoints": [[1.0]]}]', "error unmarshaling data point: [1.0]"),
        ('[{"target": "a", "datapoints": [[true, 1]]}]', "error unmarshaling value: true"),
    ],
    ids=["html", "object", "short-point", "bool-value"],
)
async def test_garbage_bodies_are_errors_naming_what_came_back(
    graphite_rig: GraphiteRig, registry: ProviderRegistry, body: str, expected: str
) -> None:
    async with GraphiteFront(graphite_rig.url) as front:
        front.script.append(Fault(200, body))
        outcome = await measure_metric(registry, metric(front.url, "target=a.b&from=-5min"))
    assert outcome.phase == "Error"
    assert outcome.message.startswith(f"graphite at {front.url}/render: "), outcome.message
    assert expected in outcome.message


async def test_string_values_and_timestamps_are_read_as_argo_reads_them(
    graphite_rig: GraphiteRig, registry: ProviderRegistry
) -> None:
    async with GraphiteFront(graphite_rig.url) as front:
        front.script.append(
            Fault(200, '[{"target":"a","datapoints":[["1.5","1700000000"],[null,1700000010]]}]')
        )
        outcome = await measure_metric(
            registry, metric(front.url, "target=a&from=-5min", successCondition="result == [1.5]")
        )
    assert (outcome.phase, outcome.value) == ("Successful", "[1.500000]")


async def test_identical_measurements_falling_due_together_share_one_request(
    graphite_rig: GraphiteRig,
) -> None:
    name = written(graphite_rig, [3.0])
    async with (
        GraphiteFront(graphite_rig.url) as front,
        ProviderRegistry(secrets=lambda n, k: None, limits=LimitsConfig()) as registry,
    ):
        block = {"address": front.url, "query": f"target={name}&from=-5min"}
        readings = await asyncio.gather(
            *(registry.measure("graphite", dict(block)) for _ in range(20))
        )
        assert {r.value for r in readings} == {"[3.000000]"}
        assert len(front.requests) == 1
        assert registry.pooled() == 1
        query = front.requests[0].query
    assert query == render_query(f"target={name}&from=-5min")
    assert query.startswith("format=json&from=-5min&target=")  # Go's Encode: keys sorted


async def test_series_reads_one_target_over_a_range(graphite_rig: GraphiteRig) -> None:
    name = written(graphite_rig, [1.0, 2.0, 3.0])
    end = datetime.now(UTC)
    async with ProviderRegistry(secrets=lambda n, k: None) as registry:
        values = await registry.series(
            "graphite", {"address": graphite_rig.url}, name, end - timedelta(minutes=2), end, 10
        )
    assert [v for v in values if v == v] == [1.0, 2.0, 3.0]  # nulls are NaN


def test_the_door_checks_the_block() -> None:
    check_block("graphite", {"address": "http://graphite:8080", "query": "target=a"})
    with pytest.raises(ProviderConfigError) as caught:
        check_block("graphite", {"query": "target=a"})
    assert caught.value.field == "address"
    with pytest.raises(ProviderConfigError, match="not a valid URL") as caught:
        check_block("graphite", {"address": "graphite:8080", "query": "target=a"})
    with pytest.raises(ProviderConfigError) as caught:
        check_block("graphite", {"address": "http://graphite"})
    assert caught.value.field == "query"


def test_render_query_is_argos() -> None:
    assert render_query("target=sumSeries(a.*)\n&from=-5min&format=raw") == (
        "format=json&from=-5min&target=sumSeries%28a.%2A%29"
    )
    assert GraphiteProvider.request_key({"address": "http://g", "query": "target = a"}) == (
        GraphiteProvider.request_key({"address": "http://g", "query": "target=a"})
    )
