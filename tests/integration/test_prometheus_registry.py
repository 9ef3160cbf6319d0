"""PrometheusProvider through ProviderRegistry against the real Prometheus rig."""

# ruff: noqa: F811  (pytest fixtures are imported, then named as parameters)

from __future__ import annotations

import asyncio
import re
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest

from providers.registry import ProviderRegistry
from tests.rigs.prometheus import (
    SUCCESS_RATE_QUERY,
    PrometheusRig,
    prometheus_rig,  # noqa: F401
)

pytestmark = pytest.mark.integration


def _no_secrets(name: str, key: str) -> str | None:
    return None


def queries_served(rig: PrometheusRig, handler: str) -> float:
    """Prometheus's own count of successful requests to one API handler."""
    with urllib.request.urlopen(f"{rig.url}/metrics", timeout=10) as response:
        text = response.read().decode()
    pattern = rf'prometheus_http_requests_total\{{code="200",handler="{handler}"\}} (\S+)'
    match = re.search(pattern, text)
    return float(match.group(1)) if match else 0.0


async def test_registry_measures_prometheus_like_the_provider(
    prometheus_rig: PrometheusRig,
) -> None:
    config = {"address": prometheus_rig.url, "query": SUCCESS_RATE_QUERY.format(version="canary")}
    async with ProviderRegistry(secrets=_no_secrets) as registry:
        reading = await registry.measure("prometheus", config)
    assert reading.result == [pytest.approx(0.90, abs=1e-9)]


async def test_identical_concurrent_queries_reach_prometheus_fewer_times(
    prometheus_rig: PrometheusRig,
) -> None:
    query = SUCCESS_RATE_QUERY.format(version="stable") + " + 0 * 17"  # unique to this test
    config = {"address": prometheus_rig.url, "query": query}
    before = queries_served(prometheus_rig, "/api/v1/query")
    async with ProviderRegistry(secrets=_no_secrets) as registry:
        readings = await asyncio.gather(
            *(registry.measure("prometheus", config) for _ in range(50))
        )
    sent = queries_served(prometheus_rig, "/api/v1/query") - before
    assert all(r.result == readings[0].result for r in readings)
    assert 1 <= sent < 50


async def test_registry_series_reads_a_range(prometheus_rig: PrometheusRig) -> None:
    end = datetime.now(UTC)
    async with ProviderRegistry(secrets=_no_secrets) as registry:
        values = await registry.series(
            "prometheus",
            {"address": prometheus_rig.url},
            'sum(rate(http_requests_total{version="stable"}[1m]))',
            end - timedelta(minutes=10),
            end,
            30.0,
        )
    assert len(values) == 21
    assert all(50 < v < 150 for v in values)
