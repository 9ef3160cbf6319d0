"""Measurements that end on their own terms (a provider class with OWN_DEADLINE: a Job)
are not cut off by measurement_timeout, only by the long cap; the watchdog serves both."""

from __future__ import annotations

import asyncio
from typing import Any

from analysisd.engine.scheduler import Scheduler
from analysisd.engine.workers import Worker, WorkerPool
from providers.base import MeasurementContext
from tests.unit.engine_fakes import RecordingObserver, ScriptedSource, make_run, scripted_metric


class UntimedSource(ScriptedSource):
    """Binds each block; the metrics named in `untimed` end on their own terms."""

    def __init__(self, script: dict[str, str], untimed: set[str]) -> None:
        super().__init__(script)
        self.untimed = untimed

    def bind(self, kind: str, config: Any, context: MeasurementContext) -> Any:
        name = scripted_metric(kind, config)
        source = self

        class Bound:
            timed = name not in source.untimed

            async def measure(self) -> Any:
                return await source.measure(kind, config)

        return Bound()


async def test_an_untimed_measurement_is_cut_off_only_by_the_long_timeout() -> None:
    source = UntimedSource({"job": "H", "web": "H"}, untimed={"job"})
    metrics = {
        "job": {"count": 1, "consecutiveErrorLimit": 0},
        "web": {"count": 1, "consecutiveErrorLimit": 0},
    }
    s = Scheduler(
        source, RecordingObserver(), measurement_timeout=0.05, long_measurement_timeout=0.3
    )
    await s.start()
    try:
        s.submit(make_run(metrics))
        done = await asyncio.wait_for(s.wait("ns", "run"), 30)
    finally:
        await s.aclose()
    assert done.status is not None
    by_name = {r.name: r for r in done.status.metric_results}
    [job] = by_name["job"].measurements
    [web] = by_name["web"].measurements
    assert (job.phase, job.message) == ("Error", "job: measurement timed out after 0.3s")
    assert (web.phase, web.message) == ("Error", "web: measurement timed out after 0.05s")
    assert done.status.phase == "Error"


async def test_a_short_deadline_after_a_long_one_rearms_the_watchdog() -> None:
    loop = asyncio.get_running_loop()
    pool: WorkerPool[str] = WorkerPool(
        lambda worker, job: asyncio.sleep(0),
        lambda job, exc: None,
        namespace_of=lambda job: "ns",
        skip=lambda job: False,
        spawn=asyncio.ensure_future,
        loop=lambda: loop,
        max_concurrency=2,
        timeout=1.0,
        long_timeout=100.0,
    )
    long, short = Worker(), Worker()
    pool.started(long, "a Job", timed=False)
    watchdog = pool._watchdog
    assert watchdog is not None and watchdog.when() >= loop.time() + 99
    pool.started(short, "a web query")
    rearmed = pool._watchdog
    assert rearmed is not None and rearmed is not watchdog and watchdog.cancelled()
    assert rearmed.when() <= loop.time() + 1.0
    pool.ended(short)
    pool.ended(long)
    pool.close()
