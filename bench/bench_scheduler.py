"""Scheduler benchmark: many concurrent runs through the Web provider vs a bare aiohttp loop.

    python bench/bench_scheduler.py [--runs 10000] [--concurrency 1000] [--seconds 10]
                                    [--source web|bare] [--gc default|tuned]

Against one JSON endpoint served by another process on 127.0.0.1 (bench/endpoint_server.py):
1. baseline: `concurrency` bare aiohttp workers GET + decode JSON in a loop for `seconds`;
2. saturation: `runs` runs x 2 metrics (interval 5 s, count 2), all due at once; the
   first wave's measurements/s is compared with the baseline;
3. steady state: `runs` runs x 2 metrics, interval 5 s, count 3, starts spread over one
   interval (initialDelay), i.e. below saturation; reports p50/p99 scheduling lag
   (measurement start - due time) and RSS per active run.

`--source web` (default) measures through providers.registry.ProviderRegistry and the
Web provider; `--source bare` through a minimal aiohttp MeasurementSource, which
isolates the scheduler's own cost from the provider's. `--gc tuned` raises the
garbage collector's thresholds for both the baseline and the scheduler (with ten
thousand live runs, default full collections cost as much as the work itself).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysisd.engine.measure import prepare_plain
from analysisd.engine.observer import RunChange
from analysisd.engine.scheduler import Scheduler
from analysisd.spec import AnalysisRun, AnalysisRunSpec, ObjectMeta
from providers.base import Reading

INTERVAL = timedelta(seconds=5)


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    import resource

    return pages * resource.getpagesize()


def start_endpoint() -> tuple[subprocess.Popen[str], str]:
    server = Path(__file__).with_name("endpoint_server.py")
    proc = subprocess.Popen(
        [sys.executable, str(server), "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    return proc, f"http://127.0.0.1:{line[1]}/metric"


async def baseline(url: str, concurrency: int, seconds: float) -> tuple[float, float]:
    """(requests per wall second, per CPU second of this process) of bare aiohttp workers."""
    done = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                async with session.get(url) as response:
                    await response.json()
                done += 1

        start, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed, cpu_used = time.perf_counter() - start, time.process_time() - cpu
    return done / elapsed, done / cpu_used


@dataclass
class BenchObserver:
    """An in-memory 'store' that also measures scheduling lag."""

    metrics: Mapping[str, Any]
    lags: list[float] = field(default_factory=list)
    first_lags: list[float] = field(default_factory=list)
    finished: int = 0
    errors: int = 0
    last_finish: dict[tuple[str, str], datetime] = field(default_factory=dict)
    first_wave_done: asyncio.Event = field(default_factory=asyncio.Event)
    first_wave: int = 0
    runs: int = 0
    completed: int = 0
    all_done: asyncio.Event = field(default_factory=asyncio.Event)

    async def on_change(self, run: AnalysisRun, change: RunChange) -> None:
        assert run.status is not None
        for new in change.measurements:
            m = new.measurement
            self.finished += 1
            if m.phase == "Error":
                self.errors += 1
            key = (run.metadata.name, new.metric)
            previous = self.last_finish.get(key)
            due: datetime | None
            if previous is not None:
                due = previous + INTERVAL
            else:
                delay = self.metrics[run.metadata.name]
                due = run.status.started_at + delay if run.status.started_at else None
            if due is not None and m.started_at is not None:
                # First measurements compete with the submission of every run (argument
                # resolution and validation); later ones show the steady state.
                lags = self.lags if previous is not None else self.first_lags
                lags.append((m.started_at - due).total_seconds())
            if m.finished_at is not None:
                self.last_finish[key] = m.finished_at
            if self.finished == self.first_wave:
                self.first_wave_done.set()
        if change.completed:
            self.completed += 1
            if self.completed == self.runs:
                self.all_done.set()


def delay_ms(delay: timedelta) -> int:
    return int(delay.total_seconds() * 1000)


def make_run(
    name: str, url: str, count: int, initial_delay_ms: int | None, conditions: bool
) -> AnalysisRun:
    metrics = []
    for metric in ("success-rate", "latency"):
        fields: dict[str, Any] = {
            "name": metric,
            "interval": "5s",
            "count": count,
            "provider": {"web": {"url": url, "jsonPath": "{$.value}", "timeoutSeconds": 30}},
        }
        if conditions:
            fields["successCondition"] = "result == 1"
        if initial_delay_ms is not None:
            fields["initialDelay"] = f"{initial_delay_ms}ms"
        metrics.append(fields)
    return AnalysisRun(
        metadata=ObjectMeta(name=name, namespace="bench"),
        spec=AnalysisRunSpec.model_validate({"metrics": metrics}),
    )


class BareSource:
    """GET + JSON decode with one aiohttp session: the scheduler without a provider layer."""

    def __init__(self, concurrency: int) -> None:
        self._concurrency = concurrency
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> BareSource:
        connector = aiohttp.TCPConnector(limit=self._concurrency)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=30)
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._session is not None
        await self._session.close()

    async def measure(self, kind: str, config: Mapping[str, Any]) -> Reading:
        assert self._session is not None
        async with self._session.get(config["url"]) as response:
            body = await response.json()
        return Reading(result=body["value"], value=str(body["value"]))


def make_source(kind: str, concurrency: int) -> Any:
    if kind == "bare":
        return BareSource(concurrency)
    from providers.registry import LimitsConfig, ProviderRegistry

    # Rate limiting and coalescing off: they are policy, and would hide the cost measured.
    limits = LimitsConfig(rate=0, concurrency=concurrency, coalesce_window=0)
    return ProviderRegistry(secrets=lambda name, key: None, limits=limits)


async def scheduler_phase(
    url: str, runs: int, concurrency: int, *, staggered: bool, source_kind: str
) -> dict[str, float]:
    count = 3 if staggered else 2
    delays = {
        f"r{i}": timedelta(milliseconds=(i * 5000 // runs) if staggered else 0) for i in range(runs)
    }
    observer = BenchObserver(delays)
    observer.first_wave = runs * 2
    observer.runs = runs
    # The bare source runs without the argument resolver and the condition language.
    bare = source_kind == "bare"
    options: dict[str, Any] = {"prepare": prepare_plain} if bare else {}
    gc.collect()
    rss_before = rss_bytes()
    peak_rss = rss_before
    async with (
        make_source(source_kind, concurrency) as source,
        Scheduler(source, observer, max_concurrency=concurrency, **options) as scheduler,
    ):
        manifests = [
            make_run(name, url, count, delay_ms(delay) if staggered else None, not bare)
            for name, delay in delays.items()
        ]
        # Timed from submission: building the manifests above is the test's own cost.
        start, cpu = time.perf_counter(), time.process_time()
        for manifest in manifests:
            scheduler.submit(manifest)
        del manifests
        await observer.first_wave_done.wait()
        first_wave_seconds = time.perf_counter() - start
        first_wave_cpu = time.process_time() - cpu
        peak_rss = max(peak_rss, rss_bytes())
        active = scheduler.active_runs()
        await observer.all_done.wait()
        total_seconds = time.perf_counter() - start
    lags = sorted(observer.lags)
    first = sorted(observer.first_lags)
    return {
        "measurements": float(observer.finished),
        "errors": float(observer.errors),
        "first_wave_per_s": observer.first_wave / first_wave_seconds,
        "first_wave_per_cpu_s": observer.first_wave / first_wave_cpu,
        "total_seconds": total_seconds,
        "lag_p50_ms": 1000 * statistics.median(lags),
        "lag_p90_ms": 1000 * lags[int(0.90 * (len(lags) - 1))],
        "first_lag_p50_ms": 1000 * statistics.median(first),
        "first_lag_p99_ms": 1000 * first[int(0.99 * (len(first) - 1))],
        "lag_p99_ms": 1000 * lags[int(0.99 * (len(lags) - 1))],
        "rss_per_run_kib": (peak_rss - rss_before) / 1024 / max(active, 1),
        "active_at_peak": float(active),
    }


async def amain(args: argparse.Namespace) -> None:
    if args.gc == "tuned":
        gc.set_threshold(50_000, 50, 1000)
    proc, url = start_endpoint()
    try:
        # Baseline before and after, the better of each kept: other load on the machine
        # then counts against the scheduler, never for it. CPU-second rates (this
        # process only) are the figure that other load disturbs least.
        before = await baseline(url, args.concurrency, args.seconds)
        kind = args.source
        burst = await scheduler_phase(
            url, args.runs, args.concurrency, staggered=False, source_kind=kind
        )
        after = await baseline(url, args.concurrency, args.seconds)
        base, base_cpu = max(before[0], after[0]), max(before[1], after[1])
        print(
            f"baseline bare aiohttp (concurrency {args.concurrency}, gc {args.gc}): "
            f"{base:,.0f} req/s, {base_cpu:,.0f} req per CPU-s"
        )
        print(
            f"scheduler ({kind} source), {args.runs} runs x 2 metrics all due at once: "
            f"{burst['first_wave_per_s']:,.0f} measurements/s = "
            f"{burst['first_wave_per_s'] / base:.0%} of baseline; "
            f"{burst['first_wave_per_cpu_s']:,.0f} per CPU-s = "
            f"{burst['first_wave_per_cpu_s'] / base_cpu:.0%} of baseline "
            f"(errors {burst['errors']:.0f}); RSS {burst['rss_per_run_kib']:.1f} KiB per run"
        )
        steady = await scheduler_phase(
            url, args.runs, args.concurrency, staggered=True, source_kind=kind
        )
        offered = args.runs * 2 / INTERVAL.total_seconds()
        print(
            f"steady state ({offered:,.0f} measurements/s offered, "
            f"{steady['measurements']:.0f} measurements, errors {steady['errors']:.0f}): "
            f"lag of later measurements p50 {steady['lag_p50_ms']:.1f} ms, "
            f"p90 {steady['lag_p90_ms']:.1f} ms, p99 {steady['lag_p99_ms']:.1f} ms; "
            f"of first measurements p50 {steady['first_lag_p50_ms']:.1f} ms, "
            f"p99 {steady['first_lag_p99_ms']:.1f} ms; "
            f"RSS {steady['rss_per_run_kib']:.1f} KiB per active run "
            f"({steady['active_at_peak']:.0f} active)"
        )
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--source", choices=("web", "bare"), default="web")
    parser.add_argument("--gc", choices=("default", "tuned"), default="default")
    asyncio.run(amain(parser.parse_args()))


if __name__ == "__main__":
    main()
