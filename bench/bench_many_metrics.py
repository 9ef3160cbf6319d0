"""Per-metric cost of one run with many metrics against a run with three (issue 21).

    python bench/bench_many_metrics.py [--metrics 3000] [--small 3] [--count 3] [--rounds 5]

One run of `--metrics` Web metrics and, in the same process and run, runs of `--small`
metrics (as many of them, one after another, as make up the same number of metrics), each
metric measured `--count` times (interval 1 ms), through the real Scheduler: preparation
(arguments, validation, compiled conditions), binding, the registry's path to a Web-keyed
provider that answers without HTTP (one pass through the event loop), conditions,
assessment, planning. The observer writes the run's status as JSON on every change, as
the daemon's store does. Reported: CPU (process time) per measurement of the large run
and of the small runs, and their ratio (target: at most 2). Rounds alternate large and
small; the median ratio is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from analysisd.engine.observer import RunChange
from analysisd.engine.scheduler import Scheduler
from analysisd.spec import AnalysisRun, AnalysisRunSpec, ObjectMeta
from providers.base import Reading
from providers.registry import LimitsConfig, ProviderRegistry


class InstantWeb:
    """The Web provider's keys and binding, but an answer without HTTP."""

    kind: ClassVar[str] = "web"
    STATIC_KEYS: ClassVar[bool] = True

    @classmethod
    def pool_key(cls, config: Mapping[str, Any], secrets: Any) -> tuple[Any, ...]:
        from providers.web import WebProvider

        return WebProvider.pool_key(config, secrets)

    @classmethod
    def request_key(cls, config: Mapping[str, Any]) -> tuple[Any, ...]:
        from providers.web import WebProvider

        return WebProvider.request_key(config)

    @classmethod
    def limit_address(cls, config: Mapping[str, Any]) -> str:
        from providers.web import WebProvider

        return WebProvider.limit_address(config)

    @classmethod
    def check(cls, config: Mapping[str, Any]) -> None:
        from providers.web import WebProvider

        WebProvider.check(config)

    @classmethod
    def create(cls, config: Mapping[str, Any], secrets: Any) -> InstantWeb:
        return cls()

    async def measure(self, config: Mapping[str, Any]) -> Reading:
        await asyncio.sleep(0)  # one trip through the loop, as any I/O takes
        return Reading(result=1.0, value="1", go_type="float64")

    async def series(self, *args: Any) -> list[float]:
        return []

    async def aclose(self) -> None:
        pass


class StatusWriter:
    """Writes the run's status as JSON on every change (what the store does) and counts."""

    def __init__(self) -> None:
        self.measurements = 0
        self.changes = 0
        self.bytes = 0

    async def on_change(self, run: AnalysisRun, change: RunChange) -> None:
        assert run.status is not None
        self.changes += 1
        self.measurements += len(change.measurements)
        self.bytes += len(run.status.model_dump_json(by_alias=True, exclude_none=True))


def make_run(name: str, metrics: int, count: int) -> AnalysisRun:
    items = [
        {
            "name": f"m{i}",
            "interval": "1ms",
            "count": count,
            "successCondition": "result == 1",
            "provider": {"web": {"url": f"http://127.0.0.1:9/?m={i}", "jsonPath": "{$.value}"}},
        }
        for i in range(metrics)
    ]
    return AnalysisRun(
        metadata=ObjectMeta(name=name, namespace="bench"),
        spec=AnalysisRunSpec.model_validate({"metrics": items}),
    )


async def timed(runs: list[AnalysisRun], count: int) -> tuple[float, float, StatusWriter]:
    """CPU and wall seconds to run `runs` one after another to completion."""
    limits = LimitsConfig(rate=0, concurrency=1000, coalesce_window=0)
    classes = {"web": f"{__name__}:InstantWeb"}
    registry = ProviderRegistry(secrets=lambda name, key: None, limits=limits, classes=classes)
    observer = StatusWriter()
    gc.collect()
    async with registry, Scheduler(registry, observer, max_concurrency=1000) as scheduler:
        cpu, wall = time.process_time(), time.perf_counter()
        for run in runs:
            scheduler.submit(run)
            done = await scheduler.wait("bench", run.metadata.name)
            assert done.status is not None and done.status.phase == "Successful", done.status
            for result in done.status.metric_results:
                assert result.count == count, (result.name, result.count)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return cpu, wall, observer


async def amain(args: argparse.Namespace) -> None:
    sys.modules.setdefault(__name__, sys.modules["__main__"])
    large_n, small_n, count = args.metrics, args.small, args.count
    ratios = []
    print(
        f"one run of {large_n} metrics vs {large_n // small_n} runs of {small_n} metrics, "
        f"each metric measured {count} times (interval 1ms), instant Web-keyed source"
    )
    for index in range(args.rounds):
        large = [make_run(f"large-{index}", large_n, count)]
        small = [make_run(f"small-{index}-{i}", small_n, count) for i in range(large_n // small_n)]
        l_cpu, l_wall, l_obs = await timed(large, count)
        s_cpu, s_wall, s_obs = await timed(small, count)
        per_large = l_cpu / (large_n * count)
        per_small = s_cpu / (small_n * count * len(small))
        ratios.append(per_large / per_small)
        print(
            f"  round {index + 1}: {large_n}-metric run {l_cpu:.2f} s CPU ({l_wall:.2f} s wall), "
            f"{1e6 * per_large:.0f} us per measurement, {l_obs.changes} status writes "
            f"({l_obs.bytes / 1e6:.1f} MB); {small_n}-metric runs {s_cpu:.2f} s CPU "
            f"({s_wall:.2f} s wall), "
            f"{1e6 * per_small:.0f} us per measurement, {s_obs.changes} status writes "
            f"({s_obs.bytes / 1e6:.1f} MB); ratio {ratios[-1]:.2f}"
        )
    median = statistics.median(ratios)
    print(f"per-measurement cost, {large_n} metrics / {small_n}: median {median:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--metrics", type=int, default=3000)
    parser.add_argument("--small", type=int, default=3)
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(amain(parser.parse_args()))


if __name__ == "__main__":
    main()
