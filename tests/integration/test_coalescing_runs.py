"""500 runs from several teams watching the same queries share one request per interval.

The real Scheduler drives the runs through the real ProviderRegistry and Web provider
against a counting aiohttp server on 127.0.0.1; nothing is mocked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from analysisd.engine.observer import RunChange
from analysisd.engine.scheduler import Scheduler
from analysisd.spec import AnalysisRun
from providers.registry import LimitsConfig, ProviderRegistry

pytestmark = pytest.mark.integration

RUNS = 500
COUNT = 3
INTERVAL = "2s"
QUERIES = ("errors", "latency")


class Counting:
    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests[request.query["q"]] += 1
        return web.json_response({"value": 0.99})


@pytest.fixture
async def server() -> AsyncIterator[Counting]:
    state = Counting()
    app = web.Application()
    app.router.add_get("/metric", state.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.url = f"http://127.0.0.1:{runner.addresses[0][1]}/metric"
    yield state
    await runner.cleanup()


class Finished:
    def __init__(self) -> None:
        self.phases: dict[str, str] = {}

    async def on_change(self, run: AnalysisRun, change: RunChange) -> None:
        if change.completed and run.status is not None:
            self.phases[f"{run.metadata.namespace}/{run.metadata.name}"] = run.status.phase


def make_run(index: int, url: str) -> AnalysisRun:
    query = QUERIES[index % len(QUERIES)]
    return AnalysisRun.model_validate(
        {
            "metadata": {"name": f"run-{index}", "namespace": f"team-{index % 10}"},
            "spec": {
                "metrics": [
                    {
                        "name": "success-rate",
                        "interval": INTERVAL,
                        "count": COUNT,
                        "successCondition": "result >= 0.95",
                        "provider": {"web": {"url": f"{url}?q={query}", "jsonPath": "{$.value}"}},
                    }
                ]
            },
        }
    )


async def test_500_runs_with_the_same_queries_send_one_request_per_interval_per_query(
    server: Counting,
) -> None:
    observer = Finished()
    metrics = CollectorRegistry()
    limits: Any = LimitsConfig(rate=0, coalesce_window=1.0, concurrency=1000)
    async with (
        ProviderRegistry(
            secrets=lambda name, key: None, limits=limits, metrics_registry=metrics
        ) as registry,
        Scheduler(registry, observer) as scheduler,
    ):
        runs = [make_run(i, server.url) for i in range(RUNS)]
        for run in runs:
            scheduler.submit(run)
        for run in runs:
            await scheduler.wait(run.metadata.namespace or "", run.metadata.name)

    assert len(observer.phases) == RUNS
    assert set(observer.phases.values()) == {"Successful"}
    # Every distinct query was asked, and at most once per interval, for 500 runs × 3 each.
    assert set(server.requests) == set(QUERIES)
    assert all(1 <= n <= COUNT for n in server.requests.values()), server.requests
    coalesced = metrics.get_sample_value("analysisd_provider_coalesced_total", {"provider": "web"})
    assert coalesced == RUNS * COUNT - sum(server.requests.values())
