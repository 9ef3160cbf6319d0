"""The Prometheus rig serves exactly the series its docstring promises."""

# ruff: noqa: F811  (pytest fixtures are imported, then named as parameters)

from __future__ import annotations

import json
import math
import time
import urllib.parse
import urllib.request
from typing import Any

import pytest

from tests.rigs.prometheus import (
    MEAN_SECONDS,
    P50_SECONDS,
    P99_QUERY,
    P99_SECONDS,
    SUCCESS_RATE_QUERY,
    PrometheusRig,
    PrometheusScratch,
    prometheus_rig,  # noqa: F401
    prometheus_scratch,  # noqa: F401
)

pytestmark = pytest.mark.integration

VERSIONS = ("stable", "canary", "canary-fast")
SUCCESS = {"stable": 0.99, "canary": 0.90, "canary-fast": 0.99}


def instant(rig: PrometheusRig, query: str) -> dict[str, Any]:
    params = urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(f"{rig.url}/api/v1/query?{params}", timeout=10) as response:
        body: dict[str, Any] = json.load(response)
    assert body["status"] == "success", body
    data: dict[str, Any] = body["data"]
    return data


def only_value(rig: PrometheusRig, query: str) -> float:
    data = instant(rig, query)
    assert data["resultType"] == "vector"
    assert len(data["result"]) == 1, data
    return float(data["result"][0]["value"][1])


@pytest.mark.parametrize("version", VERSIONS)
def test_success_rate_is_exact_per_version(prometheus_rig: PrometheusRig, version: str) -> None:
    value = only_value(prometheus_rig, SUCCESS_RATE_QUERY.format(version=version))
    assert value == pytest.approx(SUCCESS[version], abs=1e-9)


@pytest.mark.parametrize("window", ["1m", "5m", "30m"])
def test_success_rate_does_not_depend_on_window(prometheus_rig: PrometheusRig, window: str) -> None:
    query = SUCCESS_RATE_QUERY.format(version="canary").replace("[1m]", f"[{window}]")
    assert only_value(prometheus_rig, query) == pytest.approx(0.90, abs=1e-9)


@pytest.mark.parametrize("version", VERSIONS)
def test_latency_quantiles_and_mean_are_exact(prometheus_rig: PrometheusRig, version: str) -> None:
    p99 = only_value(prometheus_rig, P99_QUERY.format(version=version))
    p50 = only_value(prometheus_rig, P99_QUERY.format(version=version).replace("0.99", "0.5"))
    mean = only_value(
        prometheus_rig,
        f'sum(rate(http_request_duration_seconds_sum{{version="{version}"}}[5m]))'
        f' / sum(rate(http_request_duration_seconds_count{{version="{version}"}}[5m]))',
    )
    assert p99 == pytest.approx(P99_SECONDS[version], abs=1e-9)
    assert p50 == pytest.approx(P50_SECONDS[version], abs=1e-9)
    assert mean == pytest.approx(MEAN_SECONDS[version], abs=1e-9)


def test_history_covers_the_last_hour(prometheus_rig: PrometheusRig) -> None:
    # 55 minutes ago the success rate was already the same: the backfill is there.
    query = SUCCESS_RATE_QUERY.format(version="stable").replace("[1m]", "[1m] offset 55m")
    assert only_value(prometheus_rig, query) == pytest.approx(0.99, abs=1e-9)


def test_request_rate_wiggles_but_stays_positive(prometheus_rig: PrometheusRig) -> None:
    end = time.time()
    params = urllib.parse.urlencode(
        {
            "query": 'sum(rate(http_requests_total{version="stable"}[1m]))',
            "start": end - 1800,
            "end": end,
            "step": 30,
        }
    )
    with urllib.request.urlopen(f"{prometheus_rig.url}/api/v1/query_range?{params}") as response:
        body = json.load(response)
    values = [float(v) for _, v in body["data"]["result"][0]["values"]]
    assert len(values) == 61
    assert all(math.isfinite(v) and v > 0 for v in values)
    assert max(values) - min(values) > 50  # ±50% of 100 rps, smoothed by the 1m window


def test_demo_app_is_scraped_live(prometheus_rig: PrometheusRig) -> None:
    # Prometheus applies a new scrape config on a 5 s tick; poll rather than sleep.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if instant(prometheus_rig, 'up{job="demo"} == 1')["result"]:
            break
        time.sleep(0.25)
    else:
        pytest.fail("the demo app was never scraped")
    query = SUCCESS_RATE_QUERY.format(version="canary").replace("[1m]", "[10s]")
    assert only_value(prometheus_rig, query) == pytest.approx(0.90, abs=1e-9)


def test_scratch_rules_are_evaluated(prometheus_scratch: PrometheusScratch) -> None:
    prometheus_scratch.add_rules(
        "groups:\n"
        "- name: scratch\n"
        "  interval: 1s\n"
        "  rules:\n"
        "  - record: demo:canary_success_rate\n"
        f"    expr: {SUCCESS_RATE_QUERY.format(version='canary')!r}\n"
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        result = instant(prometheus_scratch.rig, "demo:canary_success_rate")["result"]
        if result:
            assert float(result[0]["value"][1]) == pytest.approx(0.90, abs=1e-9)
            return
        time.sleep(0.25)
    pytest.fail("the scratch recording rule never produced a sample")
