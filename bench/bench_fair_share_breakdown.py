"""Where does b's lag come from? bench_fair_share.py (one round), with the scheduler watched.

    python bench/bench_fair_share_breakdown.py [bench_fair_share.py's options]

Wraps three of the scheduler's internals (it is a diagnosis, not an interface: update it
when they move) to split each of b's measurements' lag in two:

- timer lateness: the run's timer ran this long after its wake-up time (the event loop
  was busy: a's bookkeeping, garbage collection, other processes on the machine);
- queue wait: from being queued to a worker starting it (no worker free for b).

One round only (--rounds is not watched). Also: event-loop stalls (a 5 ms sleep
overshooting), garbage collections over 20 ms.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench.bench_fair_share as fair
from analysisd.engine import scheduler as S

stats: dict[str, list[float]] = {}
queued_at: dict[Any, float] = {}
gc_pauses: list[tuple[int, float]] = []


def note(kind: str, group: str, seconds: float) -> None:
    stats.setdefault(f"{kind} ({group})", []).append(seconds)


fair_amain = fair.amain
original_on_timer = S.Scheduler._on_timer
original_plan = S.Scheduler._plan
original_measure = S.Scheduler._measure


def on_timer(self: Any, state: Any) -> None:
    if state.key[0] == "b" and state.wake is not None:
        note(
            "timer lateness",
            state.key[1].split("-")[0],
            (self._clock() - state.wake).total_seconds(),
        )
    original_on_timer(self, state)


def plan(self: Any, state: Any, now: Any) -> None:
    original_plan(self, state, now)
    if state.key[0] == "b":
        for name, worker in state.measuring.items():
            if worker is None:
                queued_at.setdefault((state.key, name), time.perf_counter())


async def measure(self: Any, worker: Any, *job: Any) -> None:
    # (worker, (state, task)) now; (worker, state, task) before the worker pool moved out.
    state, task = job[0] if len(job) == 1 else job
    at = queued_at.pop((state.key, task.metric.name), None)
    if at is not None:
        note("queue wait", state.key[1].split("-")[0], time.perf_counter() - at)
    await original_measure(self, worker, *job)


def on_gc(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        on_gc.started = time.perf_counter()  # type: ignore[attr-defined]
    else:
        took = time.perf_counter() - getattr(on_gc, "started", time.perf_counter())
        if took > 0.02:
            gc_pauses.append((info["generation"], took))


async def stalls() -> None:
    while True:
        before = time.perf_counter()
        await asyncio.sleep(0.005)
        note("loop stall", "all", time.perf_counter() - before - 0.005)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1)))]


async def amain(args: Any) -> None:
    watcher = asyncio.ensure_future(stalls())
    try:
        await fair_amain(args)
    finally:
        watcher.cancel()
    for key in sorted(stats):
        values = stats[key]
        print(
            f"{key}: n={len(values)} p50 {1000 * statistics.median(values):.1f} ms, "
            f"p99 {1000 * percentile(values, 0.99):.1f} ms, max {1000 * max(values):.1f} ms"
        )
    print("gc pauses over 20 ms (generation, ms):", [(g, round(1000 * t)) for g, t in gc_pauses])


def main() -> None:
    S.Scheduler._on_timer = on_timer  # type: ignore[method-assign]
    S.Scheduler._plan = plan  # type: ignore[method-assign]
    S.Scheduler._measure = measure  # type: ignore[method-assign]
    gc.callbacks.append(on_gc)
    fair.amain = amain  # fair.main runs this one round, watched
    fair.main()


if __name__ == "__main__":
    main()
