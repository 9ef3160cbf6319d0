"""Scheduler benchmark: many concurrent runs through the Web provider vs a bare aiohttp loop.

    python bench/bench_scheduler.py [--runs 10000] [--concurrency 1000] [--seconds 4]
                                    [--rounds 3] [--settle 10] [--no-steady]
                                    [--source web|bare|instant] [--gc default|tuned|large]
                                    [--yielding-baseline] [--profile FILE]

Against one JSON endpoint served by another process on 127.0.0.1 (bench/endpoint_server.py):
1. baseline: `concurrency` bare aiohttp workers GET + decode JSON in a loop for `seconds`,
   cycling through the same 2 x `runs` URLs the runs' metrics query;
2. saturation: `runs` runs x 2 metrics (interval 5 s, count 2), all due at one instant
   `--settle` seconds after submission (stored startedAt + initialDelay), so the wave is
   timed apart from the one-time cost of submitting and preparing the runs (reported
   on its own); the wave's measurements/s is compared with the baseline;
3. steady state: `runs` runs x 2 metrics, interval 5 s, count 3, first measurements
   spread over one interval from `--settle` seconds after submission (initialDelay), i.e.
   below saturation and after the one-time burst of setting ten thousand runs up;
   reports p50/p90/p99 scheduling lag (measurement start - due time) of later and of
   first measurements, and the CPU-seconds the process used per second meanwhile (near
   1.0 the loop is saturated and the tail grows). RSS per active run is read over the
   first wave. `--rounds 0` runs the steady state alone.

Every metric of every run queries its own URL (`?service=<run>&metric=<n>`), as a fleet
of runs watching different services does: identical requests would be shared by the
registry's single-flight coalescing, and the bench would measure fewer requests than
measurements (with one shared URL, 40,000 measurements once made 51 requests).

`--source web` (default) measures through providers.registry.ProviderRegistry and the
Web provider; `--source bare` through a minimal aiohttp MeasurementSource, which
isolates the scheduler's own cost from the provider's; `--source instant` through the
registry with a Web-keyed provider that answers without HTTP (analysisd's own cost per
measurement: compare its wave with the baseline's time per request). `--gc tuned` sets the
garbage collector's thresholds `analysisd serve` sets (commands/serve.py GC_THRESHOLDS)
for both the baseline and the scheduler (with ten thousand live runs, default full
collections cost as much as the work itself); `--gc large` puts young collections off.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysisd.commands.serve import GC_THRESHOLDS
from analysisd.engine.observer import RunChange
from analysisd.engine.scheduler import Scheduler
from analysisd.spec import AnalysisRun, AnalysisRunSpec, AnalysisRunStatus, ObjectMeta
from providers.base import Reading

INTERVAL = timedelta(seconds=5)
# --gc: the thresholds `analysisd serve` sets, and a first threshold ten times higher
# (no young collection in a saturated wave: it comes later, over more objects at once).
GC_PRESETS: dict[str, tuple[int, int, int]] = {
    "tuned": GC_THRESHOLDS,
    "large": (500_000, *GC_THRESHOLDS[1:]),
}


class GcClock:
    """Wall seconds spent in the garbage collector (gc.callbacks), for the wave's share,
    and the collections of each generation and the longest one since `reset`."""

    seconds = 0.0
    _began = 0.0
    collections: ClassVar[list[int]] = [0, 0, 0]
    longest = 0.0

    @classmethod
    def callback(cls, phase: str, info: Mapping[str, Any]) -> None:
        if phase == "start":
            cls._began = time.perf_counter()
        else:
            took = time.perf_counter() - cls._began
            cls.seconds += took
            cls.collections[info["generation"]] += 1
            cls.longest = max(cls.longest, took)

    @classmethod
    def reset(cls) -> None:
        cls.collections = [0, 0, 0]
        cls.longest = 0.0

    @classmethod
    def figures(cls) -> dict[str, float]:
        young, middle, full = cls.collections
        return {
            "gc_young": young,
            "gc_middle": middle,
            "gc_full": full,
            "gc_longest_ms": 1000 * cls.longest,
        }


gc.callbacks.append(GcClock.callback)


async def sleep_until_collected(due: datetime, margin: float = 0.5) -> None:
    """Sleep until `due`, emptying the collector's young generation `margin` s before it.

    A timed phase starts with nothing pending for the collector and ends with a young
    collection counted in its time (`gc.collect(0)`): it pays for walking exactly what it
    leaves alive, whether or not set-up's leftovers would have tipped a collection into
    it (that phase alone moved bench_scheduler's figure by about 3 points).
    """
    await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds() - margin))
    gc.collect(0)
    await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()))


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


def service_url(url: str, name: str, metric: int = 0) -> str:
    return f"{url}?service={name}&metric={metric}"


async def baseline(
    url: str,
    runs: int,
    concurrency: int,
    seconds: float,
    yielding: bool = False,
    requests: int | None = None,
) -> tuple[float, float]:
    """(requests per wall second, per CPU second of this process) of bare aiohttp workers.

    `yielding`: each worker passes once through the event loop after each request, as
    the scheduler's workers do (--yielding-baseline; that batching alone makes the bare
    loop cheaper per request, so the ratio against it is the stricter one).
    `requests`: stop after that many requests (each URL once when it is 2 x runs, the
    wave's work: a fresh pool's connections are then opened for as many requests as the
    wave opens them for) instead of after `seconds`.
    """
    urls = [service_url(url, f"r{i}", m) for i in range(runs) for m in range(2)]
    done = 0
    taken = 0
    gc.collect(0)  # as before a wave (see scheduler_phase), and after it in its time
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        deadline = time.perf_counter() + seconds

        def more() -> bool:
            if requests is None:
                return time.perf_counter() < deadline
            return taken < requests

        async def worker() -> None:
            nonlocal done, taken
            while more():
                taken += 1
                async with session.get(urls[taken % len(urls)]) as response:
                    await response.json()
                done += 1
                if yielding:
                    await asyncio.sleep(0)

        start, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        gc.collect(0)
        elapsed, cpu_used = time.perf_counter() - start, time.process_time() - cpu
    return done / elapsed, done / cpu_used


@dataclass
class BenchObserver:
    """An in-memory 'store' that also measures scheduling lag."""

    metrics: Mapping[str, Any]
    lags: list[float] = field(default_factory=list)
    first_lags: list[float] = field(default_factory=list)
    finished: int = 0
    first_done: int = 0  # first measurements finished
    errors: int = 0
    last_finish: dict[tuple[str, str], datetime] = field(default_factory=dict)
    first_wave_done: asyncio.Event = field(default_factory=asyncio.Event)
    first_wave: int = 0
    runs: int = 0
    completed: int = 0
    all_done: asyncio.Event = field(default_factory=asyncio.Event)
    started: int = 0  # runs past their first assessment (prepared)
    all_started: float = 0.0  # perf_counter when the last run was prepared
    wave_end: tuple[float, float] = (0.0, 0.0)  # perf_counter, process_time
    # Lags are reported for the steady state only; the saturated wave's observer just
    # counts (it stands in for the store, and its own bookkeeping is not the scheduler's).
    lags_wanted: bool = True

    async def on_change(self, run: AnalysisRun, change: RunChange) -> None:
        assert run.status is not None
        if change.previous_phase in ("", "Pending") and change.phase == "Running":
            self.started += 1
            if self.started == self.runs:
                self.all_started = time.perf_counter()
        for new in change.measurements:
            m = new.measurement
            self.finished += 1
            if m.phase == "Error":
                self.errors += 1
            key = (run.metadata.name, new.metric)
            previous = self.last_finish.get(key)
            if not self.lags_wanted:
                if m.finished_at is not None:
                    self.last_finish[key] = m.finished_at
                if previous is None:
                    self._first_done()
                continue
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
            if previous is None:
                # The wave is every run's first measurements: a run set up late must
                # not be stood in for by an early run's second measurement.
                self._first_done()
        if change.completed:
            self.completed += 1
            if self.completed == self.runs:
                self.all_done.set()

    def _first_done(self) -> None:
        self.first_done += 1
        if self.first_done == self.first_wave:
            self.wave_end = (time.perf_counter(), time.process_time())
            self.first_wave_done.set()


def delay_ms(delay: timedelta) -> int:
    return int(delay.total_seconds() * 1000)


def make_run(
    name: str,
    url: str,
    count: int,
    initial_delay_ms: int | None,
    conditions: bool,
    started_at: datetime | None = None,
) -> AnalysisRun:
    metrics = []
    for index, metric in enumerate(("success-rate", "latency")):
        target = service_url(url, name, index)
        fields: dict[str, Any] = {
            "name": metric,
            "interval": "5s",
            "count": count,
            "provider": {"web": {"url": target, "jsonPath": "{$.value}", "timeoutSeconds": 30}},
        }
        if conditions:
            fields["successCondition"] = "result == 1"
        if initial_delay_ms is not None:
            fields["initialDelay"] = f"{initial_delay_ms}ms"
        metrics.append(fields)
    status = AnalysisRunStatus(phase="Pending", startedAt=started_at) if started_at else None
    return AnalysisRun(
        metadata=ObjectMeta(name=name, namespace="bench"),
        spec=AnalysisRunSpec.model_validate({"metrics": metrics}),
        status=status,
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


class InstantWeb:
    """`--source instant`: the Web provider's keys and binding, but an answer without HTTP.

    Everything analysisd does per measurement (scheduler, registry, conditions) with the
    network taken out: the per-measurement overhead, free of the endpoint's noise.
    """

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
    def create(cls, config: Mapping[str, Any], secrets: Any) -> InstantWeb:
        return cls()

    async def measure(self, config: Mapping[str, Any]) -> Reading:
        await asyncio.sleep(0)  # one trip through the loop, as any I/O takes
        return Reading(result=1.0, value="1")

    async def series(
        self, config: Mapping[str, Any], query: str, start: datetime, end: datetime, step: float
    ) -> list[float]:
        return []

    async def aclose(self) -> None:
        pass


def make_source(kind: str, concurrency: int) -> Any:
    if kind == "bare":
        return BareSource(concurrency)
    from providers.registry import LimitsConfig, ProviderRegistry

    # Rate limiting and coalescing off: they are policy, and would hide the cost measured.
    limits = LimitsConfig(rate=0, concurrency=concurrency, coalesce_window=0)
    classes = {"web": f"{__name__}:InstantWeb"} if kind == "instant" else None
    return ProviderRegistry(secrets=lambda name, key: None, limits=limits, classes=classes)


async def scheduler_phase(
    url: str,
    runs: int,
    concurrency: int,
    *,
    staggered: bool,
    source_kind: str,
    settle: float = 3.0,
    profiler: cProfile.Profile | None = None,
) -> dict[str, float]:
    count = 3 if staggered else 2
    settle_ms = int(settle * 1000)
    # Steady state: first measurements spread evenly over one interval, starting
    # `settle` seconds after submission, so that submitting and preparing ten
    # thousand runs at once (a one-time burst, reported on its own) is over first.
    delays = {
        f"r{i}": timedelta(milliseconds=settle_ms + (i * 5000 // runs if staggered else 0))
        for i in range(runs)
    }
    observer = BenchObserver(delays)
    observer.first_wave = runs * 2
    observer.runs = runs
    observer.lags_wanted = staggered
    # The bare source's runs have no conditions (the same preparation, less to judge).
    bare = source_kind == "bare"
    gc.collect()
    rss_before = rss_bytes()
    peak_rss = rss_before
    async with (
        make_source(source_kind, concurrency) as source,
        Scheduler(source, observer, max_concurrency=concurrency) as scheduler,
    ):
        # Every run stored as started now, first measurement due `settle` seconds later
        # (saturation: all at that instant; steady state: spread over one interval).
        epoch = datetime.now(UTC)
        manifests = [
            make_run(name, url, count, delay_ms(delay), not bare, started_at=epoch)
            for name, delay in delays.items()
        ]
        # Timed from submission: building the manifests above is the test's own cost.
        start = time.perf_counter()
        for manifest in manifests:
            scheduler.submit(manifest)
        del manifests
        # The collector charged exactly (sleep_until_collected); the baseline likewise.
        await sleep_until_collected(epoch + timedelta(seconds=settle))
        wave_start, wave_cpu = time.perf_counter(), time.process_time()
        gc_before = GcClock.seconds
        GcClock.reset()
        if profiler is not None:
            profiler.enable()
        await observer.first_wave_done.wait()
        closing = (0.0, 0.0)
        if not staggered:  # (in the steady state it would be a pause among the lags)
            began = time.perf_counter(), time.process_time()
            gc.collect(0)
            closing = (time.perf_counter() - began[0], time.process_time() - began[1])
        wave_gc_seconds = GcClock.seconds - gc_before
        if profiler is not None:
            profiler.disable()
        peak_rss = max(peak_rss, rss_bytes())
        active = scheduler.active_runs()
        if staggered:
            await observer.all_done.wait()
            # How busy the process was over the steady state (first due -> last done):
            # near 1.0 the loop is a saturated queue and the lag tail grows without bound.
            steady_busy = (time.process_time() - wave_cpu) / (time.perf_counter() - wave_start)
        # else: the saturated wave is what was measured; closing drops the runs.
        collected = GcClock.figures()  # over the wave, or over the whole steady state
        total_seconds = time.perf_counter() - start
    wave_seconds = observer.wave_end[0] - wave_start + closing[0]
    wave_cpu_seconds = observer.wave_end[1] - wave_cpu + closing[1]
    if not staggered:
        steady_busy = math.nan
    lags = sorted(observer.lags) or [math.nan]
    first = sorted(observer.first_lags) or [math.nan]
    return {
        "measurements": float(observer.finished),
        "errors": float(observer.errors),
        # all_started stays 0 if some run never started (its set-up failed).
        "prepare_seconds": observer.all_started - start if observer.all_started else math.nan,
        "prepared_late": float(observer.all_started > wave_start),
        "first_wave_per_s": observer.first_wave / wave_seconds,
        "first_wave_per_cpu_s": observer.first_wave / wave_cpu_seconds,
        "wave_gc_share": wave_gc_seconds / wave_seconds,
        "total_seconds": total_seconds,
        "lag_p50_ms": 1000 * statistics.median(lags),
        "lag_p90_ms": 1000 * lags[int(0.90 * (len(lags) - 1))],
        "first_lag_p50_ms": 1000 * statistics.median(first),
        "first_lag_p99_ms": 1000 * first[int(0.99 * (len(first) - 1))],
        "lag_p99_ms": 1000 * lags[int(0.99 * (len(lags) - 1))],
        "rss_per_run_kib": (peak_rss - rss_before) / 1024 / max(active, 1),
        "active_at_peak": float(active),
        "steady_busy": steady_busy,
        **collected,
    }


async def amain(args: argparse.Namespace) -> None:
    if args.gc in GC_PRESETS:
        gc.set_threshold(*GC_PRESETS[args.gc])
    proc, url = start_endpoint()
    kind = args.source
    try:
        # Rounds of baseline, saturated wave, ..., baseline: each wave is compared with
        # the mean of the baselines either side of it, and the median round is reported.
        # The machine's speed drifts by tens of percent over minutes; adjacent phases
        # drift together, and the median ignores one disturbed round.
        yielding = args.yielding_baseline
        count = 2 * args.runs if args.baseline == "same-work" else None
        base: list[tuple[float, float]] = []  # --rounds 0: the steady state only
        if args.rounds:
            base.append(
                await baseline(url, args.runs, args.concurrency, args.seconds, yielding, count)
            )
        waves: list[dict[str, float]] = []
        profiler = cProfile.Profile() if args.profile else None
        for _ in range(args.rounds):
            waves.append(
                await scheduler_phase(
                    url,
                    args.runs,
                    args.concurrency,
                    staggered=False,
                    source_kind=kind,
                    settle=args.settle,
                    profiler=profiler,
                )
            )
            base.append(
                await baseline(url, args.runs, args.concurrency, args.seconds, yielding, count)
            )
        if profiler is not None:
            profiler.dump_stats(args.profile)
        ratios, cpu_ratios = [], []
        kind_of_loop = "yielding once per request" if yielding else "plain"
        print(
            f"bare aiohttp baseline ({kind_of_loop}): concurrency {args.concurrency}, gc {args.gc}"
        )
        for i, wave in enumerate(waves):
            wall = (base[i][0] + base[i + 1][0]) / 2
            cpu = (base[i][1] + base[i + 1][1]) / 2
            ratios.append(wave["first_wave_per_s"] / wall)
            cpu_ratios.append(wave["first_wave_per_cpu_s"] / cpu)
            late = " (NOT prepared before the wave: raise --settle)" * int(wave["prepared_late"])
            print(
                f"  round {i + 1}: baseline {wall:,.0f} req/s ({cpu:,.0f} per CPU-s); "
                f"{kind} source, {args.runs} runs x 2 metrics due at once: "
                f"{wave['first_wave_per_s']:,.0f} measurements/s = {ratios[-1]:.0%} "
                f"[{1e6 / wave['first_wave_per_cpu_s']:.0f} us CPU per measurement, "
                f"{1e6 / cpu:.0f} per bare request; GC {wave['wave_gc_share']:.1%} of the wave, "
                f"{wave['gc_young'] + wave['gc_middle'] + wave['gc_full']:.0f} collections, "
                f"longest {wave['gc_longest_ms']:.0f} ms] "
                f"({wave['first_wave_per_cpu_s']:,.0f} per CPU-s = {cpu_ratios[-1]:.0%}); "
                f"errors {wave['errors']:.0f}; submitting and preparing the runs took "
                f"{wave['prepare_seconds']:.2f} s{late}; "
                f"RSS {wave['rss_per_run_kib']:.1f} KiB per run"
            )
        if waves:
            print(
                f"throughput vs bare aiohttp, median of {len(waves)} rounds: "
                f"{statistics.median(ratios):.0%} wall, "
                f"{statistics.median(cpu_ratios):.0%} per CPU-s; "
                f"RSS per run (fresh heap, first round) {waves[0]['rss_per_run_kib']:.1f} KiB"
            )
        if args.no_steady:
            return
        steady = await scheduler_phase(
            url, args.runs, args.concurrency, staggered=True, source_kind=kind, settle=args.settle
        )
        offered = args.runs * 2 / INTERVAL.total_seconds()
        print(
            f"steady state ({offered:,.0f} measurements/s offered, "
            f"{steady['measurements']:.0f} measurements, errors {steady['errors']:.0f}): "
            f"lag of later measurements p50 {steady['lag_p50_ms']:.1f} ms, "
            f"p90 {steady['lag_p90_ms']:.1f} ms, p99 {steady['lag_p99_ms']:.1f} ms; "
            f"of first measurements p50 {steady['first_lag_p50_ms']:.1f} ms, "
            f"p99 {steady['first_lag_p99_ms']:.1f} ms; "
            f"CPU-s per second {steady['steady_busy']:.2f}; GC collections young/middle/full "
            f"{steady['gc_young']:.0f}/{steady['gc_middle']:.0f}/{steady['gc_full']:.0f}, "
            f"longest {steady['gc_longest_ms']:.0f} ms"
        )
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=4.0, help="per baseline phase")
    parser.add_argument(
        "--baseline",
        choices=("timed", "same-work"),
        default="timed",
        help="timed: each baseline phase runs --seconds; same-work: it makes 2 x runs "
        "requests, each URL once, on a fresh pool, as the wave does",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--settle", type=float, default=10.0, help="seconds before the wave (set-up must fit)"
    )
    parser.add_argument("--no-steady", action="store_true", help="skip the steady-state phase")
    parser.add_argument(
        "--profile", metavar="FILE", help="cProfile the saturated waves only, stats to FILE"
    )
    parser.add_argument("--source", choices=("web", "bare", "instant"), default="web")
    parser.add_argument(
        "--gc",
        choices=("default", *GC_PRESETS),
        default="default",
        help="default: CPython's thresholds; tuned: those `analysisd serve` sets; "
        "large: tuned with a first threshold of 500,000",
    )
    parser.add_argument(
        "--yielding-baseline",
        action="store_true",
        help="baseline workers pass once through the loop after each request",
    )
    asyncio.run(amain(parser.parse_args()))


if __name__ == "__main__":
    main()
