"""The judge metric against the real Prometheus rig (tests/rigs/prometheus.py).

Series come over Prometheus' HTTP range API through a minimal source defined
here, so these tests exercise the judge end to end on real query_range data
without depending on the provider package's internals.
"""

# ruff: noqa: F811  (the fixture is imported, then named as a parameter)
from __future__ import annotations

import math
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

import aiohttp
import pytest

from analysisd.engine.judging import JudgeMetric
from analysisd.judge.metric import verdict_for_score
from tests.rigs.prometheus import PrometheusRig, prometheus_rig  # noqa: F401

pytestmark = pytest.mark.integration

ERROR_RATIO = (
    'sum(rate(http_requests_total{app="demo",${scope},status=~"5.."}[1m]))'
    ' / sum(rate(http_requests_total{app="demo",${scope}}[1m]))'
)
ERRORS_PER_SECOND = 'sum(rate(http_requests_total{app="demo",%s,status=~"5.."}[1m]))'
P99 = (
    "histogram_quantile(0.99, sum by (le) "
    '(rate(http_request_duration_seconds_bucket{app="demo",${scope}}[1m])))'
)
STABLE, CANARY, FAST = 'version="stable"', 'version="canary"', 'version="canary-fast"'


class RangeQuerySource:
    """series() over /api/v1/query_range; one session, closed by its owner."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def series(
        self,
        kind: str,
        config: Mapping[str, Any],
        query: str,
        start: datetime,
        end: datetime,
        step: float,
    ) -> list[float]:
        assert kind == "prometheus"
        params = {
            "query": query,
            "start": repr(start.timestamp()),
            "end": repr(end.timestamp()),
            "step": repr(step),
        }
        timeout = aiohttp.ClientTimeout(total=10)
        url = f"{config['address']}/api/v1/query_range"
        async with self.session.get(url, params=params, timeout=timeout) as response:
            response.raise_for_status()
            body = await response.json()
        result = body["data"]["result"]
        return [float(v) for _, v in result[0]["values"]] if result else []


@pytest.fixture
async def source() -> AsyncIterator[RangeQuerySource]:
    async with aiohttp.ClientSession() as session:
        yield RangeQuerySource(session)


def judge_block(
    url: str, queries: dict[str, Any], settings: dict[str, Any], canary_scope: str = CANARY
) -> Any:
    return {
        "source": {"prometheus": {"address": url}},
        "lookback": "30m",
        "step": "1m",
        "scopes": {"baseline": STABLE, "canary": canary_scope},
        "queries": queries,
        "canaryConfig": {
            "metrics": [
                {
                    "name": name,
                    "groups": ["service"],
                    "analysisConfigurations": {"canary": settings},
                }
                for name in queries
            ],
            "classifier": {"groupWeights": {"service": 100}},
        },
        "thresholds": {"pass": 95, "marginal": 75},
    }


async def test_canary_with_ten_times_the_error_ratio_fails(
    prometheus_rig: PrometheusRig, source: RangeQuerySource
) -> None:
    block = judge_block(prometheus_rig.url, {"errors": ERROR_RATIO}, {"direction": "increase"})
    reading = await JudgeMetric(source).measure(block)
    errors = reading.result["metrics"]["errors"]
    assert errors["classification"] == "High"
    assert errors["canaryCount"] >= 25 and errors["baselineCount"] >= 25
    assert errors["effectSize"] == pytest.approx(10.0, rel=1e-6)
    assert reading.result["score"] == 0.0
    assert verdict_for_score(reading.result) == "Failed"


async def test_canary_with_three_times_the_error_rate_fails(
    prometheus_rig: PrometheusRig, source: RangeQuerySource
) -> None:
    # The rig's stable errors/s swing ±50% over five minutes; the canary side
    # is exactly three times that same swinging series.
    queries = {
        "errors": {
            "baseline": ERRORS_PER_SECOND % STABLE,
            "canary": f"3 * {ERRORS_PER_SECOND % STABLE}",
        }
    }
    block = judge_block(prometheus_rig.url, queries, {"direction": "increase"})
    reading = await JudgeMetric(source).measure(block)
    errors = reading.result["metrics"]["errors"]
    assert errors["classification"] == "High"
    assert errors["effectSize"] == pytest.approx(3.0, rel=1e-6)
    assert errors["interval"][0] > 0
    assert verdict_for_score(reading.result) == "Failed"


async def test_canary_identical_to_baseline_passes(
    prometheus_rig: PrometheusRig, source: RangeQuerySource
) -> None:
    queries = {"errors": ERROR_RATIO, "latency": P99}
    block = judge_block(prometheus_rig.url, queries, {"direction": "increase"}, canary_scope=STABLE)
    reading = await JudgeMetric(source).measure(block)
    assert reading.result["score"] == 100.0
    assert {m["classification"] for m in reading.result["metrics"].values()} == {"Pass"}
    assert verdict_for_score(reading.result) == "Successful"


async def test_faster_canary_passes_when_only_an_increase_counts(
    prometheus_rig: PrometheusRig, source: RangeQuerySource
) -> None:
    block = judge_block(
        prometheus_rig.url, {"latency": P99}, {"direction": "increase"}, canary_scope=FAST
    )
    reading = await JudgeMetric(source).measure(block)
    latency = reading.result["metrics"]["latency"]
    assert latency["classification"] == "Pass"
    # The canary really is faster: the interval of the shift lies below zero.
    assert latency["interval"][1] < 0
    assert reading.result["classification"] == "Pass"
    assert verdict_for_score(reading.result) == "Successful"


async def test_faster_canary_reads_low_when_either_direction_counts(
    prometheus_rig: PrometheusRig, source: RangeQuerySource
) -> None:
    block = judge_block(
        prometheus_rig.url, {"latency": P99}, {"direction": "either"}, canary_scope=FAST
    )
    reading = await JudgeMetric(source).measure(block)
    assert reading.result["metrics"]["latency"]["classification"] == "Low"
    assert verdict_for_score(reading.result) == "Failed"


async def test_slower_canary_fails_on_latency(
    prometheus_rig: PrometheusRig, source: RangeQuerySource
) -> None:
    block = judge_block(prometheus_rig.url, {"latency": P99}, {"direction": "increase"})
    reading = await JudgeMetric(source).measure(block)
    latency = reading.result["metrics"]["latency"]
    assert latency["classification"] == "High"
    assert latency["effectSize"] == pytest.approx(2.35 / 0.375, rel=1e-6)
    assert not math.isnan(reading.result["score"]) and reading.result["score"] == 0.0
