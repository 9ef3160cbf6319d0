"""ProviderRegistry with the real Web provider and a counting aiohttp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from providers.base import ProviderUnsupported
from providers.registry import (
    PROVIDER_CLASSES,
    UNSUPPORTED_KINDS,
    LimitsConfig,
    ProviderRegistry,
)


class CountingServer:
    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str]] = Counter()  # (query, authorization)
        self.release = asyncio.Event()
        self.first = asyncio.Event()
        self.url = ""

    async def metric(self, request: web.Request) -> web.Response:
        self.requests[(request.query.get("q", ""), request.headers.get("Authorization", ""))] += 1
        self.first.set()
        await self.release.wait()  # hold the answer so callers pile up in flight
        return web.json_response({"value": len(self.requests), "series": [1.0, 2.0]})


@pytest.fixture
async def server() -> AsyncIterator[CountingServer]:
    state = CountingServer()
    app = web.Application()
    app.router.add_get("/metric", state.metric)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.url = f"http://127.0.0.1:{runner.addresses[0][1]}/metric"
    yield state
    state.release.set()
    await runner.cleanup()


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def _registry(clock: Clock, metrics: CollectorRegistry | None = None) -> ProviderRegistry:
    # Rate limit off: this file is about coalescing, not pacing.
    return ProviderRegistry(
        secrets=lambda n, k: None,
        limits=LimitsConfig(rate=0, coalesce_window=1.0, concurrency=1000),
        metrics_registry=metrics,
        clock=clock,
    )


def _web(url: str, query: str, token: str = "team-a-token") -> dict[str, Any]:
    return {
        "url": f"{url}?q={query}",
        "jsonPath": "{.value}",
        "headers": [{"key": "Authorization", "value": f"Bearer {token}"}],
    }


async def _burst(
    registry: ProviderRegistry, server: CountingServer, configs: list[Any]
) -> list[Any]:
    tasks = [asyncio.ensure_future(registry.measure("web", config)) for config in configs]
    await server.first.wait()
    for _ in range(10):
        await asyncio.sleep(0)
    server.release.set()
    return await asyncio.gather(*tasks)


async def test_500_identical_measurements_make_one_request_per_interval(
    server: CountingServer,
) -> None:
    clock, metrics = Clock(), CollectorRegistry()
    async with _registry(clock, metrics) as registry:
        readings = await _burst(registry, server, [_web(server.url, "errors")] * 500)
        assert server.requests[("errors", "Bearer team-a-token")] == 1
        assert {r.value for r in readings} == {"1"}
        # Due again later in the same interval: the answer is reused.
        clock.now += 0.5
        await registry.measure("web", _web(server.url, "errors"))
        assert server.requests[("errors", "Bearer team-a-token")] == 1
        # Next interval: one fresh request for the next 500.
        clock.now += 0.5
        await asyncio.gather(
            *(registry.measure("web", _web(server.url, "errors")) for _ in range(500))
        )
        assert server.requests[("errors", "Bearer team-a-token")] == 2
    coalesced = metrics.get_sample_value("analysisd_provider_coalesced_total", {"provider": "web"})
    assert coalesced == 500 - 1 + 1 + 500 - 1


async def test_distinct_queries_are_not_merged(server: CountingServer) -> None:
    async with _registry(Clock()) as registry:
        configs = [_web(server.url, f"q{i % 5}") for i in range(500)]
        readings = await _burst(registry, server, configs)
    assert sorted(server.requests.values()) == [1, 1, 1, 1, 1]
    assert len(readings) == 500


async def test_different_credentials_are_not_merged(server: CountingServer) -> None:
    async with _registry(Clock()) as registry:
        configs = [_web(server.url, "errors", token=f"team-{i % 2}") for i in range(500)]
        await _burst(registry, server, configs)
    assert server.requests == {
        ("errors", "Bearer team-0"): 1,
        ("errors", "Bearer team-1"): 1,
    }


async def test_one_pool_per_address_and_credentials(server: CountingServer) -> None:
    server.release.set()
    async with _registry(Clock()) as registry:
        await registry.measure("web", _web(server.url, "a"))
        await registry.measure("web", _web(server.url, "b"))
        assert registry.pooled() == 1  # same origin, no OAuth2: one session
        web_class = registry.provider_class("web")
        plain = web_class.pool_key(_web(server.url, "c"), lambda n, k: None)
        oauth = {**_web(server.url, "c"), "authentication": {"oauth2": {"tokenUrl": "http://x"}}}
        assert web_class.pool_key(oauth, lambda n, k: None) != plain  # its own token cache
    assert registry.pooled() == 0  # aclose released them


async def test_unknown_and_unsupported_kinds_say_what_is_supported() -> None:
    async with _registry(Clock()) as registry:
        # An Argo kind analysisd does not run (whichever are left), else an unknown one.
        kind = min(UNSUPPORTED_KINDS - set(PROVIDER_CLASSES), default="nosuch")
        with pytest.raises(ProviderUnsupported, match=f"'{kind}' is not supported") as caught:
            await registry.measure(kind, {"query": "x"})
        runs = sorted(k for k in PROVIDER_CLASSES if k not in UNSUPPORTED_KINDS)
        assert f"supported: {', '.join(runs)}" in str(caught.value)
        assert "cloudWatch, datadog" in str(caught.value)
        with pytest.raises(ProviderUnsupported, match="'nosuch' is not supported"):
            await registry.measure("nosuch", {})


async def test_a_broken_provider_module_is_unsupported_not_a_crash() -> None:
    registry = ProviderRegistry(
        secrets=lambda n, k: None, classes={"ghost": "providers.no_such_module:Ghost"}
    )
    with pytest.raises(ProviderUnsupported, match=r"cannot load providers\.no_such_module:Ghost"):
        await registry.measure("ghost", {})
    await registry.aclose()


async def test_closed_registry_refuses_work(server: CountingServer) -> None:
    registry = _registry(Clock())
    await registry.aclose()
    with pytest.raises(Exception, match="closed"):
        await registry.measure("web", _web(server.url, "a"))


async def test_identical_series_requests_are_coalesced_and_copies_returned(
    server: CountingServer,
) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    config = {"url": f"{server.url}?q=${{query}}", "jsonPath": "{.series}"}
    end = start + timedelta(minutes=1)
    async with _registry(Clock()) as registry:
        calls = [registry.series("web", config, "up", start, end, 60) for _ in range(50)]
        results = await _burst_of(server, calls)
    assert server.requests[("up", "")] == 1
    assert all(r == [1.0, 2.0] for r in results)
    results[0].append(99.0)
    assert results[1] == [1.0, 2.0]  # each caller got its own list


async def _burst_of(server: CountingServer, calls: list[Any]) -> list[Any]:
    tasks = [asyncio.ensure_future(call) for call in calls]
    await server.first.wait()
    server.release.set()
    return await asyncio.gather(*tasks)
