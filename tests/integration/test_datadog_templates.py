"""Every Datadog example of the Argo docs (tests/data/argo-templates) is a request the API takes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from providers.datadog import DatadogProvider
from tests.rigs.datadog_fake import DatadogFake
from tests.vectors import argo_templates_dir

API_KEY = "dd-api-key-0123456789abcdef"
APP_KEY = "dd-app-key-fedcba9876543210"
ARG = re.compile(r"\{\{\s*args\.([\w-]+)\s*\}\}")


def _datadog_blocks() -> list[Any]:
    params = []
    for path in sorted(argo_templates_dir().glob("*datadog*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            for metric in doc["spec"]["metrics"]:
                block = metric["provider"]["datadog"]
                params.append(pytest.param(block, id=f"{Path(path).stem}::{metric['name']}"))
    return params


def substitute(value: Any) -> Any:
    if isinstance(value, str):
        return ARG.sub(lambda m: f"demo-{m.group(1)}", value)
    if isinstance(value, dict):
        return {k: substitute(v) for k, v in value.items()}
    return value


@pytest.mark.parametrize("block", _datadog_blocks())
async def test_argo_datadog_example_is_accepted(block: dict[str, Any]) -> None:
    config = substitute(block)
    async with DatadogFake(api_key=API_KEY, app_key=APP_KEY) as fake:
        values = {"api-key": API_KEY, "app-key": APP_KEY, "address": fake.url}
        provider = DatadogProvider.create(config, lambda _s, key: values.get(key))
        try:
            reading = await provider.measure(config)
        finally:
            await provider.aclose()
        (request,) = fake.requests
    # The fake answers no data for queries it was not given: nil, as Argo.
    assert reading.result is None
    expected = "/api/v1/query" if config.get("apiVersion", "v1") == "v1" else "/api/v2/query/scalar"
    assert request.path == expected
    assert "{{" not in repr(request.body) + repr(request.query)
