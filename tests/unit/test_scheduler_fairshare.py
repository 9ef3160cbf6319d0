"""The scheduler under saturation: namespaces take turns; a rate quota delays, never drops."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from analysisd.engine.scheduler import Scheduler
from providers.base import Reading
from tests.unit.engine_fakes import RecordingObserver, ScriptedSource, make_run


class OrderSource(ScriptedSource):
    """Records which run each measurement belonged to (the URL's ?run= query)."""

    def __init__(self) -> None:
        super().__init__({"m": "S"})
        self.order: list[str] = []
        self.gate = asyncio.Event()

    async def measure(self, kind: str, config: Mapping[str, Any]) -> Reading:
        self.order.append(str(config["url"]).partition("?run=")[2])
        await self.gate.wait()
        return await super().measure(kind, config)


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not condition():  # noqa: ASYNC110 (polls the scheduler's own state)
            await asyncio.sleep(0.001)


def run_in(namespace: str, name: str, **metric: Any) -> Any:
    run = make_run({"m": metric}, name=name, namespace=namespace)
    web = run.spec.metrics[0].provider["web"]
    web["url"] = f"{web['url']}?run={namespace}/{name}"
    return run


async def test_a_small_namespace_is_served_in_turn_not_behind_a_big_backlog() -> None:
    source = OrderSource()
    async with Scheduler(source, RecordingObserver(), max_concurrency=2) as s:
        for i in range(200):
            s.submit(run_in("big", f"b{i}"))
        await until(lambda: len(source.order) == 2)  # both workers busy: big waits
        for i in range(3):
            s.submit(run_in("small", f"s{i}"))
        await until(lambda: s.waiting("small") == 3)
        source.gate.set()
        for i in range(3):
            await s.wait("small", f"s{i}")
        position = max(source.order.index(f"small/s{i}") for i in range(3))
        # Global FIFO would put them after all 200 of big; in turn, within the next ~6.
        assert position < 10, source.order[:12]
        for i in range(200):
            await s.wait("big", f"b{i}")
    assert len(source.order) == 203


async def test_one_namespace_alone_keeps_first_in_first_out() -> None:
    source = OrderSource()
    source.gate.set()
    async with Scheduler(source, RecordingObserver(), max_concurrency=1) as s:
        for i in range(20):
            s.submit(run_in("ns", f"r{i:02}"))
        for i in range(20):
            await s.wait("ns", f"r{i:02}")
    assert source.order == [f"ns/r{i:02}" for i in range(20)]


async def test_rate_quota_delays_measurements_of_its_namespace_and_drops_none() -> None:
    source = ScriptedSource({"m": "S"})
    rates = {"limited": 20.0}
    interval = {"count": 3, "interval": "1ms"}
    async with Scheduler(
        source,
        RecordingObserver(),
        error_retry=timedelta(milliseconds=1),
        rate_of=rates.get,
    ) as s:
        for i in range(10):
            s.submit(make_run({"m": interval}, name=f"l{i}", namespace="limited"))
            s.submit(make_run({"m": interval}, name=f"f{i}", namespace="free"))
        for i in range(10):
            await s.wait("free", f"f{i}")
        # 30 measurements against a bucket of 20 a second (20 at once): the free
        # namespace is done while the limited one still has measurements waiting.
        held_back = s.waiting("limited") + sum(s.is_active("limited", f"l{i}") for i in range(10))
        assert held_back > 0
        done = [await s.wait("limited", f"l{i}") for i in range(10)]
    assert all(run.status is not None and run.status.phase == "Successful" for run in done)
    assert all(run.status is not None and run.status.metric_results[0].count == 3 for run in done)
    assert source.calls == 60


async def test_a_busy_namespace_leaves_workers_for_another_with_runs() -> None:
    source = OrderSource()
    async with Scheduler(source, RecordingObserver(), max_concurrency=10) as s:
        s.submit(run_in("small", "idle", initialDelay="1h"))  # small has a run: share
        for i in range(50):
            s.submit(run_in("big", f"b{i}"))
        await until(lambda: s.waiting("big") == 41)
        assert len(source.order) == 9  # one worker kept back from big
        s.submit(run_in("small", "now"))
        await until(lambda: "small/now" in source.order)  # at once, no worker freed
        assert len(source.order) == 10
        s.terminate("small", "idle")
        source.gate.set()
        for i in range(50):
            await s.wait("big", f"b{i}")
