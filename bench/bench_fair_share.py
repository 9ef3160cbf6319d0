"""Fair share: does one team saturating the daemon make another team's measurements late?

    python bench/bench_fair_share.py [--big 9900] [--small 100] [--concurrency 50]
                                     [--delay-ms 200] [--seconds 30]

One process, one Scheduler, the Web provider through ProviderRegistry, against a JSON
endpoint in another process that answers after `--delay-ms` (a slow provider: the
measurement workers, not the CPU, are what runs out). In the same run:

1. small alone: namespace `b`, `--small` runs x 1 metric, interval 5 s, first
   measurements spread over one interval; scheduling lag of every measurement after
   the first (start - previous finish - interval), for `--seconds`;
2. small beside big: namespace `a` gets `--big` runs (interval 5 s, spread over one
   interval) — more than `concurrency / delay` measurements a second, so a's due
   measurements queue up for workers (saturation, checked and printed) — then `b`
   gets `--small` fresh runs, measured as in 1;
3. for comparison, what a single queue would do: `--small` runs added to namespace
   `a` itself (behind its backlog), measured as in 1.

Reported: p50/p99 lag of each, and the ratio of b's p99 beside a to b's p99 alone
(the target: within 2x).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysisd.commands.serve import GC_THRESHOLDS
from analysisd.engine.observer import RunChange
from analysisd.engine.scheduler import Scheduler
from analysisd.spec import AnalysisRun, AnalysisRunSpec, AnalysisRunStatus, ObjectMeta
from bench.bench_scheduler import service_url

BIG_INTERVAL = timedelta(seconds=5)
SMALL_INTERVAL = timedelta(seconds=5)


def stop_endpoint(proc: Any) -> None:
    """Stop the endpoint and the worker processes it started (its process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    proc.wait()


def start_endpoint(delay_ms: float) -> tuple[Any, str]:
    import subprocess

    server = Path(__file__).with_name("endpoint_server.py")
    # Its own session: the endpoint's worker processes are stopped with it (stop_endpoint).
    proc = subprocess.Popen(
        [sys.executable, str(server), "--port", "0", "--workers", "2", "--delay-ms", str(delay_ms)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    return proc, f"http://127.0.0.1:{line[1]}/metric"


@dataclass
class LagObserver:
    """Keeps the scheduling lag of later measurements, per group of runs."""

    group_of: dict[tuple[str, str], str] = field(default_factory=dict)
    intervals: dict[str, timedelta] = field(default_factory=dict)
    lags: dict[str, list[float]] = field(default_factory=dict)
    measured: dict[str, int] = field(default_factory=dict)
    last_finish: dict[tuple[str, str], datetime] = field(default_factory=dict)
    started: dict[str, int] = field(default_factory=dict)  # runs set up, per group
    first_due: dict[tuple[str, str], datetime] = field(default_factory=dict)
    first_lags: dict[str, list[float]] = field(default_factory=dict)

    async def on_change(self, run: AnalysisRun, change: RunChange) -> None:
        key = (run.metadata.namespace or "", run.metadata.name)
        group = self.group_of.get(key)
        if group is not None and change.phase == "Running" and change.previous_phase != "Running":
            self.started[group] = self.started.get(group, 0) + 1
        for new in change.measurements:
            m = new.measurement
            if group is not None:
                self.measured[group] = self.measured.get(group, 0) + 1
            previous = self.last_finish.get(key)
            first = self.first_due.pop(key, None)
            if group is not None and first is not None and m.started_at is not None:
                self.first_lags.setdefault(group, []).append((m.started_at - first).total_seconds())
            if group is not None and previous is not None and m.started_at is not None:
                due = previous + self.intervals[group]
                self.lags.setdefault(group, []).append((m.started_at - due).total_seconds())
            if m.finished_at is not None:
                self.last_finish[key] = m.finished_at


def make_run(
    namespace: str, name: str, url: str, interval: timedelta, delay_ms: int, count: int | None
) -> AnalysisRun:
    metric: dict[str, Any] = {
        "name": "m",
        "interval": f"{int(interval.total_seconds() * 1000)}ms",
        "initialDelay": f"{delay_ms}ms",
        "successCondition": "result == 1",
        "provider": {"web": {"url": service_url(url, name), "jsonPath": "{$.value}"}},
    }
    if count is not None:
        metric["count"] = count
    return AnalysisRun(
        metadata=ObjectMeta(name=name, namespace=namespace),
        spec=AnalysisRunSpec.model_validate({"metrics": [metric]}),
        status=AnalysisRunStatus(phase="Pending", startedAt=datetime.now(UTC)),
    )


def submit_group(
    scheduler: Scheduler,
    observer: LagObserver,
    group: str,
    namespace: str,
    runs: int,
    url: str,
    interval: timedelta,
    count: int | None,
    tracked: bool = True,
) -> None:
    spread_ms = int(interval.total_seconds() * 1000)
    observer.intervals[group] = interval
    for i in range(runs):
        name = f"{group}-{i}"
        if tracked:
            observer.group_of[(namespace, name)] = group
        delay_ms = 200 + i * spread_ms // runs
        run = make_run(namespace, name, url, interval, delay_ms, count)
        assert run.status is not None and run.status.started_at is not None
        observer.first_due[(namespace, name)] = run.status.started_at + timedelta(
            milliseconds=delay_ms
        )
        scheduler.submit(run)


async def finish(scheduler: Scheduler, namespace: str, group: str, runs: int) -> None:
    for i in range(runs):
        await scheduler.wait(namespace, f"{group}-{i}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1)))] if ordered else float("nan")


def summary(observer: LagObserver, group: str) -> str:
    lags = observer.lags.get(group, [])
    first = observer.first_lags.get(group, [])
    firsts = (
        f"first measurements: {len(first)}, lag p50 {1000 * statistics.median(first):.1f} ms"
        if first
        else "no first measurements"
    )
    if not lags:
        return f"no later measurements; {firsts}"
    return (
        f"{observer.measured.get(group, 0)} measurements, lag p50 "
        f"{1000 * statistics.median(lags):.1f} ms, p99 {1000 * percentile(lags, 0.99):.1f} ms, "
        f"max {1000 * max(lags):.1f} ms; {firsts}"
    )


async def amain(args: argparse.Namespace) -> None:
    from providers.registry import LimitsConfig, ProviderRegistry

    gc.set_threshold(*GC_THRESHOLDS)  # the thresholds `analysisd serve` sets
    proc, url = start_endpoint(args.delay_ms)
    small_count = int(args.seconds / SMALL_INTERVAL.total_seconds())
    observer = LagObserver()
    # Rate limiting and coalescing off: each run queries its own URL, at the pool's size.
    limits = LimitsConfig(rate=0, concurrency=args.concurrency * 2, coalesce_window=0)
    registry = ProviderRegistry(secrets=lambda name, key: None, limits=limits)
    try:
        async with (
            registry,
            Scheduler(registry, observer, max_concurrency=args.concurrency) as scheduler,
        ):
            # Both phases with the collector as `analysisd serve` has it once started.
            gc.collect()
            gc.freeze()
            # 1. small alone
            submit_group(
                scheduler, observer, "alone", "b", args.small, url, SMALL_INTERVAL, small_count
            )
            await finish(scheduler, "b", "alone", args.small)
            # 2. big saturates the workers, then small again beside it
            start = time.perf_counter()
            submit_group(
                scheduler, observer, "big", "a", args.big, url, BIG_INTERVAL, None, tracked=True
            )
            # Saturated: every big run set up (set-up is FIFO) and due measurements waiting.
            async with asyncio.timeout(120):
                while observer.started.get("big", 0) < args.big or scheduler.waiting("a") < 100:  # noqa: ASYNC110
                    await asyncio.sleep(0.5)
            # As `analysisd serve` does once started (commands/serve.py tune_gc): with ten
            # thousand live runs, default collections stall the loop for 100s of ms.
            gc.collect()
            gc.freeze()
            await asyncio.sleep(2)
            backlog = scheduler.waiting("a")
            big_before = observer.measured.get("big", 0)
            submit_group(
                scheduler, observer, "beside", "b", args.small, url, SMALL_INTERVAL, small_count
            )
            began = time.perf_counter()
            await finish(scheduler, "b", "beside", args.small)
            backlog_after = scheduler.waiting("a")
            big_rate = (observer.measured.get("big", 0) - big_before) / (
                time.perf_counter() - began
            )
            # 3. the same small runs behind big's backlog, in big's own namespace
            if args.single_queue:
                submit_group(
                    scheduler, observer, "queued", "a", args.small, url, SMALL_INTERVAL, small_count
                )
                # Behind a's backlog these take minutes: a while is enough to see it.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(args.seconds):
                        await finish(scheduler, "a", "queued", args.small)
            elapsed = time.perf_counter() - start
    finally:
        stop_endpoint(proc)
    offered = args.big / BIG_INTERVAL.total_seconds()
    capacity = args.concurrency / (args.delay_ms / 1000)
    alone = percentile(observer.lags.get("alone", []), 0.99)
    beside = percentile(observer.lags.get("beside", []), 0.99)
    print(
        f"workers {args.concurrency}, endpoint delay {args.delay_ms:.0f} ms "
        f"(capacity ~{capacity:,.0f} measurements/s); a offers {offered:,.0f}/s "
        f"({args.big} runs, interval 5 s), b {args.small} runs, interval 5 s; {elapsed:.0f} s"
    )
    print(
        f"a while b measured beside it: {big_rate:,.0f} measurements/s, "
        f"{backlog} then {backlog_after} of a's due measurements waiting for a worker "
        f"({'saturated' if backlog and backlog_after else 'NOT saturated: raise --big'})"
    )
    print(f"b alone:              {summary(observer, 'alone')}")
    print(f"b beside a (own ns):  {summary(observer, 'beside')}")
    if args.single_queue:
        print(f"b inside a's queue:   {summary(observer, 'queued')}")
    print(f"b's p99 beside a / b's p99 alone: {beside / alone:.2f} (target <= 2)")
    if args.json:
        print(json.dumps({"alone_p99": alone, "beside_p99": beside, "ratio": beside / alone}))


def rounds(args: argparse.Namespace) -> None:
    """`--rounds N`: N fresh processes one after another, then the medians
    (--single-queue in the first only)."""
    results = []
    for i in range(args.rounds):
        command = [sys.executable, __file__, "--json"]
        for flag in ("big", "small", "concurrency", "delay_ms", "seconds"):
            command += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
        if args.single_queue and i == 0:
            command.append("--single-queue")
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        lines = out.strip().splitlines()
        print(f"--- round {i + 1}")
        print("\n".join(lines[:-1]), flush=True)
        results.append(json.loads(lines[-1]))
    ratios = [r["ratio"] for r in results]
    print(
        f"b's p99 beside a / alone over {len(ratios)} rounds: "
        f"{', '.join(f'{x:.2f}' for x in ratios)}; median {statistics.median(ratios):.2f} "
        f"(b alone p99 median {1000 * statistics.median(r['alone_p99'] for r in results):.1f} ms, "
        f"beside a {1000 * statistics.median(r['beside_p99'] for r in results):.1f} ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--big", type=int, default=9900)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--delay-ms", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=1, help="fresh processes; medians")
    parser.add_argument(
        "--single-queue", action="store_true", help="also: b's runs inside a's own namespace"
    )
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rounds > 1:
        rounds(args)
    else:
        asyncio.run(amain(args))


if __name__ == "__main__":
    main()
