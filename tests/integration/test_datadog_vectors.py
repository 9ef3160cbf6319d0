"""argo-expr.json's Datadog cases, end to end: the fake serves the case's data, the real
client fetches it, and the measurement's value and verdict must match the case."""

from __future__ import annotations

import time
from typing import Any

import pytest

from analysisd import expr
from providers.datadog import DatadogProvider
from tests.rigs.datadog_fake import DatadogFake, ScalarAnswer
from tests.vectors import case_id, load_argo

API_KEY = "dd-api-key-0123456789abcdef"
APP_KEY = "dd-app-key-fedcba9876543210"
QUERY = "avg:errors{app:demo}"


def _cases() -> list[Any]:
    return [
        pytest.param(case, id=case_id("argo-expr.json", "cases", case))
        for case in load_argo("argo-expr.json")
        if str(case.get("source", "")).startswith("metricproviders/datadog")
    ]


def serve(fake: DatadogFake, case: dict[str, Any]) -> dict[str, str]:
    """Put the case's result into the fake the way Datadog would return it."""
    result = case["result"]
    if "V1" in case["source"]:
        if result is not None:
            now = int(time.time()) * 1000
            fake.v1[QUERY] = [[[now - 60_000, 42.0], [now, result]]]
        return {"query": QUERY}
    if isinstance(result, list):
        # Grouped: a null group is what "null entries dropped" starts from.
        values: list[float | None] = list(result)
        if "null" in case["result_go_type"]:
            values.insert(1, None)
        groups = [[f"svc-{i}"] for i in range(len(values))]
        fake.scalar["query"] = ScalarAnswer(values, groups=groups)
    elif result is not None:
        fake.scalar["query"] = ScalarAnswer([result])
    return {"apiVersion": "v2", "query": QUERY}


@pytest.mark.parametrize("case", _cases())
async def test_datadog_measurement_matches_argo_vector(case: dict[str, Any]) -> None:
    async with DatadogFake(api_key=API_KEY, app_key=APP_KEY) as fake:
        config = serve(fake, case)
        values = {"api-key": API_KEY, "app-key": APP_KEY, "address": fake.url}
        provider = DatadogProvider.create(config, lambda _s, key: values.get(key))
        try:
            reading = await provider.measure(config)
        finally:
            await provider.aclose()
    assert reading.result == case["result"]
    if "expect_value_string" in case:
        assert reading.value == case["expect_value_string"]
    verdict = expr.decide(case["successCondition"], case["failureCondition"], reading.result)
    assert verdict.phase == case["expect"]
    for fragment in case.get("error_contains", []):
        assert fragment in verdict.message
