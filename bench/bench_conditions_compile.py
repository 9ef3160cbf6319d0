"""Compile-once proof: 5,000 runs with distinct condition texts vs one shared text.

    python bench/bench_conditions_compile.py [--runs 5000] [--count 3] [--rounds 4]
                                             [--source instant|web] [--gc default|tuned]

Every run goes through the real Scheduler and the one measurement path
(engine.dispatch.take_measurement via providers.registry.ProviderRegistry), as in
bench/bench_scheduler.py. Each run has 2 metrics (interval 1 s, `--count` measurements)
whose successConditions are either all the same text (`shared`) or every one its own
(`distinct`: `result >= 0.<run><metric>1`, so 2 x 5,000 texts, far past any 1,024-entry
cache). Conditions are compiled when a run is prepared (engine.measure.prepare_run), so a
measurement's CPU must not depend on how many distinct texts there are: the distinct
case's process CPU per measurement should be within 10 % of the shared case's.

Per phase the process CPU (`time.process_time`) is split at the moment the first
measurements fall due (`--settle` seconds after submission): before it, submitting and
preparing the runs (where the compiling happens, reported per run); after it, the
measurements (reported per measurement). Phases alternate shared, distinct, distinct,
shared, ... (ABBA) so drift on the shared machine falls on both cases alike; the
per-round ratio uses each round's adjacent pair and the median round is reported.

`--source instant` (default) answers without HTTP (bench_scheduler's InstantWeb), so
the CPU measured is analysisd's own and a compile per measurement would show at full
size; `--source web` queries a JSON endpoint in another process over loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scheduler import service_url, sleep_until_collected, start_endpoint

from analysisd.commands.serve import GC_THRESHOLDS
from analysisd.engine.observer import RunChange
from analysisd.engine.scheduler import Scheduler
from analysisd.spec import AnalysisRun, AnalysisRunSpec, AnalysisRunStatus, ObjectMeta

METRICS = ("success-rate", "latency")


def condition(run: int, metric: int, distinct: bool) -> str:
    """`result >= 0.<digits>1`: the same shape and length either way, so only sharing differs."""
    if not distinct:
        run, metric = 0, 0
    return f"result >= 0.{run:05d}{metric}1"


def make_run(
    index: int, url: str, count: int, settle_ms: int, distinct: bool, epoch: datetime
) -> AnalysisRun:
    name = f"r{index}"
    metrics = [
        {
            "name": metric,
            "interval": "1s",
            "count": count,
            "initialDelay": f"{settle_ms}ms",
            "successCondition": condition(index, position, distinct),
            "provider": {
                "web": {
                    "url": service_url(url, name, position),
                    "jsonPath": "{$.value}",
                    "timeoutSeconds": 30,
                }
            },
        }
        for position, metric in enumerate(METRICS)
    ]
    return AnalysisRun(
        metadata=ObjectMeta(name=name, namespace="bench"),
        spec=AnalysisRunSpec.model_validate({"metrics": metrics}),
        status=AnalysisRunStatus(phase="Pending", startedAt=epoch),
    )


@dataclass
class CountingObserver:
    """An in-memory 'store' that counts measurements and notes when set-up and runs end."""

    runs: int
    measurements: int = 0
    errors: int = 0
    failed: int = 0
    started: int = 0
    completed: int = 0
    setup_done_cpu: float = 0.0
    setup_done_at: float = 0.0
    all_done: asyncio.Event = field(default_factory=asyncio.Event)

    async def on_change(self, run: AnalysisRun, change: RunChange) -> None:
        if change.previous_phase in ("", "Pending") and change.phase == "Running":
            self.started += 1
            if self.started == self.runs:
                self.setup_done_cpu = time.process_time()
                self.setup_done_at = time.perf_counter()
        for new in change.measurements:
            self.measurements += 1
            if new.measurement.phase == "Error":
                self.errors += 1
            elif new.measurement.phase != "Successful":
                self.failed += 1
        if change.completed:
            self.completed += 1
            if self.completed == self.runs:
                self.all_done.set()


def make_source(kind: str) -> Any:
    from providers.registry import LimitsConfig, ProviderRegistry

    # Rate limiting and coalescing off: policy, not cost (as in bench_scheduler).
    limits = LimitsConfig(rate=0, concurrency=1000, coalesce_window=0)
    classes = {"web": "bench_scheduler:InstantWeb"} if kind == "instant" else None
    return ProviderRegistry(secrets=lambda name, key: None, limits=limits, classes=classes)


async def phase(
    url: str, runs: int, count: int, settle: float, distinct: bool, source_kind: str
) -> dict[str, float]:
    """One phase: submit `runs` runs, let them finish; CPU of set-up and of measuring."""
    observer = CountingObserver(runs)
    settle_ms = int(settle * 1000)
    gc.collect()
    async with (
        make_source(source_kind) as source,
        Scheduler(source, observer, max_concurrency=1000) as scheduler,
    ):
        epoch = datetime.now(UTC)
        manifests = [make_run(i, url, count, settle_ms, distinct, epoch) for i in range(runs)]
        submit_cpu = time.process_time()
        for manifest in manifests:
            scheduler.submit(manifest)
        del manifests
        # The collector charged exactly, as in bench_scheduler: the measurements pay for
        # walking what they leave alive, not for set-up's leftovers (in the distinct case,
        # 10,000 freshly compiled programs) that a collection might catch among them.
        await sleep_until_collected(epoch + timedelta(seconds=settle), margin=0.3)
        due_cpu, due_at = time.process_time(), time.perf_counter()
        await observer.all_done.wait()
        gc.collect(0)
        end_cpu = time.process_time()
    expected = runs * len(METRICS) * count
    if observer.measurements != expected or observer.errors or observer.failed:
        raise SystemExit(
            f"unexpected outcome: {observer.measurements} of {expected} measurements, "
            f"{observer.errors} errors, {observer.failed} not Successful"
        )
    return {
        "setup_us_per_run": 1e6 * (observer.setup_done_cpu - submit_cpu) / runs,
        "setup_late": float(observer.setup_done_at > due_at),
        "measure_us": 1e6 * (end_cpu - due_cpu) / observer.measurements,
        "measurements": float(observer.measurements),
    }


async def amain(args: argparse.Namespace) -> None:
    if args.gc == "tuned":  # as `analysisd serve` sets it
        gc.set_threshold(*GC_THRESHOLDS)
    proc, url = (None, "http://127.0.0.1:9/metric")
    if args.source == "web":
        proc, url = start_endpoint()
    try:
        # One unreported warm-up phase (imports, pools, first allocation of the heap).
        await phase(url, min(args.runs, 500), 1, 0.5, False, args.source)
        rounds: list[tuple[dict[str, float], dict[str, float]]] = []
        for round_index in range(args.rounds):
            # ABBA: shared first in even rounds, distinct first in odd ones.
            order = (False, True) if round_index % 2 == 0 else (True, False)
            results: dict[bool, dict[str, float]] = {}
            for is_distinct in order:
                results[is_distinct] = await phase(
                    url, args.runs, args.count, args.settle, is_distinct, args.source
                )
            rounds.append((results[False], results[True]))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait()
    print(
        f"{args.runs} runs x {len(METRICS)} metrics x {args.count} measurements, "
        f"source {args.source}, gc {args.gc}, Python {platform.python_version()}"
    )
    ratios, setup_ratios = [], []
    for index, (shared, distinct) in enumerate(rounds):
        ratios.append(distinct["measure_us"] / shared["measure_us"])
        setup_ratios.append(distinct["setup_us_per_run"] / shared["setup_us_per_run"])
        late = any(r["setup_late"] for r in (shared, distinct))
        print(
            f"  round {index + 1}: CPU per measurement shared {shared['measure_us']:.1f} us, "
            f"distinct {distinct['measure_us']:.1f} us = {ratios[-1]:.3f}; "
            f"set-up per run shared {shared['setup_us_per_run']:.0f} us, "
            f"distinct {distinct['setup_us_per_run']:.0f} us = {setup_ratios[-1]:.3f}"
            + (" (set-up overran the settle time: raise --settle)" if late else "")
        )
    shared_us = statistics.median(r[0]["measure_us"] for r in rounds)
    distinct_us = statistics.median(r[1]["measure_us"] for r in rounds)
    print(
        f"CPU per measurement, median of {len(rounds)} rounds: shared {shared_us:.1f} us, "
        f"distinct {distinct_us:.1f} us; distinct / shared: median {statistics.median(ratios):.3f} "
        f"(rounds {min(ratios):.3f}-{max(ratios):.3f}; target <= 1.10); "
        f"set-up per run distinct / shared: median {statistics.median(setup_ratios):.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--count", type=int, default=3, help="measurements per metric")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--settle", type=float, default=3.0, help="seconds before first due")
    parser.add_argument("--source", choices=("instant", "web"), default="instant")
    parser.add_argument("--gc", choices=("default", "tuned"), default="tuned")
    asyncio.run(amain(parser.parse_args()))


if __name__ == "__main__":
    main()
