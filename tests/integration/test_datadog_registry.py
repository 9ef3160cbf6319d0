"""Datadog through ProviderRegistry, the way the engine calls it."""

from __future__ import annotations

import time

import pytest

from providers.base import ProviderRateLimited
from providers.registry import LimitsConfig, ProviderRegistry
from tests.rigs.datadog_fake import Canned, DatadogFake

API_KEY = "dd-api-key-0123456789abcdef"
APP_KEY = "dd-app-key-fedcba9876543210"


def lookup_for(fake: DatadogFake):  # type: ignore[no-untyped-def]
    values = {"api-key": API_KEY, "app-key": APP_KEY, "address": fake.url}
    return lambda secret, key: values.get(key) if secret == "datadog" else None


async def test_registry_measures_and_pools_one_client_per_address() -> None:
    async with DatadogFake(api_key=API_KEY, app_key=APP_KEY) as fake:
        fake.v1["avg:a{*}"] = [[[int(time.time()) * 1000, 0.5]]]
        fake.v1["avg:b{*}"] = [[[int(time.time()) * 1000, 1.5]]]
        async with ProviderRegistry(secrets=lookup_for(fake)) as registry:
            first = await registry.measure("datadog", {"query": "avg:a{*}"})
            second = await registry.measure("datadog", {"query": "avg:b{*}"})
            assert (first.result, second.result) == (0.5, 1.5)
            assert registry.pooled() == 1


async def test_registry_surfaces_rate_limits_with_the_reset_delay() -> None:
    async with DatadogFake(api_key=API_KEY, app_key=APP_KEY) as fake:
        for _ in range(10):
            fake.script.append(
                Canned(429, '{"errors": ["Rate limit"]}', {"X-RateLimit-Reset": "0"})
            )
        limits = LimitsConfig(max_attempts=1)
        async with ProviderRegistry(secrets=lookup_for(fake), limits=limits) as registry:
            with pytest.raises(ProviderRateLimited) as caught:
                await registry.measure("datadog", {"query": "avg:a{*}"})
    assert caught.value.retry_after == 0.0
