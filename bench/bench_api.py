"""API benchmark: create-run and get-run throughput against a bare aiohttp handler measured
in the same run (ratio), and the time to resume 10,000 stored runs after a restart.

    python bench/bench_api.py [--requests 1000] [--rounds 5] [--concurrency 32] [--resume 10000]
                              [--profile FILE] [--gc serve|default]

--gc serve (default): the collector tuned as `analysisd serve` tunes it once the daemon
has started (commands.serve.tune_gc: start-up objects frozen, higher thresholds), for the
bare handler and the daemon alike (one process); --gc default keeps CPython's settings.
--profile FILE writes cProfile stats of the daemon's create rounds (client included:
one process) to FILE (`python -m pstats FILE`).

Client and servers share one event loop, for the baseline and the daemon alike, so
the ratio compares like with like. Runs carry `initialDelay: 1h`: the numbers are the
API + store path, not measurement work. Each round measures bare create, daemon create,
bare get and daemon get back to back (the machine is shared: its speed drifts between
rounds, hardly within one); the median of the per-round ratios is reported, with the
ratio of process CPU per request beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import logging
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import structlog
from aiohttp import web

from analysisd.commands.serve import tune_gc
from analysisd.config import Settings
from analysisd.daemon import Daemon
from analysisd.store import SqliteStore
from providers.base import Reading


class InstantSource:
    async def measure(self, kind: str, config: Mapping[str, Any]) -> Reading:
        return Reading(result=1, value="1")


def manifest(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {"name": f"run-{i}", "labels": {"app": "bench"}},
        "spec": {
            "metrics": [
                {
                    "name": "m",
                    "interval": "1h",
                    "initialDelay": "1h",
                    "successCondition": "result < 10",
                    "provider": {"web": {"url": "http://127.0.0.1:9/x"}},
                }
            ]
        },
    }


async def drive(
    n: int, concurrency: int, call: Callable[[aiohttp.ClientSession, int], Awaitable[None]]
) -> float:
    """Requests per second for n calls with `concurrency` in flight."""
    queue = iter(range(n))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for i in queue:
                await call(session, i)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return n / (time.perf_counter() - start)


async def bare_server() -> tuple[web.AppRunner, str]:
    stored: dict[str, Any] = {}

    async def create(request: web.Request) -> web.Response:
        body = await request.json()
        stored[body["metadata"]["name"]] = body
        return web.json_response(body, status=201)

    async def get(request: web.Request) -> web.Response:
        return web.json_response(stored[request.match_info["name"]])

    app = web.Application()
    app.router.add_post("/runs", create)
    app.router.add_get("/runs/{name}", get)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/runs"


async def throughput(
    n: int,
    concurrency: int,
    rounds: int,
    folder: Path,
    profile: cProfile.Profile | None = None,
    gc_mode: str = "serve",
) -> dict[str, Any]:
    """Rounds of bare create, daemon create, bare get, daemon get (n requests each), side by
    side so that the machine's drift falls on both alike: per-round ratios of requests/s
    and of process CPU per request (the aiosqlite thread included)."""

    async def post(url: str, s: aiohttp.ClientSession, i: int) -> None:
        async with s.post(url, json=manifest(i)) as resp:
            assert resp.status == 201, await resp.text()
            await resp.read()

    async def get(url: str, s: aiohttp.ClientSession, i: int) -> None:
        async with s.get(f"{url}/run-{i}") as resp:
            assert resp.status == 200
            await resp.read()

    async def timed(
        call: Callable[[aiohttp.ClientSession, int], Awaitable[None]],
        first: int,
        profiled: cProfile.Profile | None = None,
    ) -> tuple[float, float]:
        cpu = time.process_time()
        if profiled is not None:
            profiled.enable()
        try:
            rate = await drive(n, concurrency, lambda s, i: call(s, first + i))
        finally:
            if profiled is not None:
                profiled.disable()
        return rate, (time.process_time() - cpu) / n

    runner, bare = await bare_server()
    settings = Settings(
        port=0, store=f"sqlite:///{folder / 'tp.db'}", max_active_runs_per_namespace=10**9
    )
    rows: list[dict[str, float]] = []
    try:
        async with Daemon(settings, source=InstantSource()) as daemon:
            url = f"http://127.0.0.1:{daemon.port}/api/v1/namespaces/bench/analysisruns"
            if gc_mode == "serve":
                tune_gc()  # as `analysisd serve` does once its daemon has started
            for r in range(rounds):
                first = r * n
                row: dict[str, float] = {}
                row["bare_create"], row["bare_create_cpu"] = await timed(
                    lambda s, i: post(bare, s, i), first
                )
                row["create"], row["create_cpu"] = await timed(
                    lambda s, i: post(url, s, i), first, profile
                )
                row["bare_get"], row["bare_get_cpu"] = await timed(
                    lambda s, i: get(bare, s, i), first
                )
                row["get"], row["get_cpu"] = await timed(lambda s, i: get(url, s, i), first)
                rows.append(row)
            group = getattr(daemon.store, "group", None)  # None: before group commit
            writes_per_commit = group.ops / max(1, group.batches) if group else float("nan")
    finally:
        await runner.cleanup()

    def median(key: str) -> float:
        return statistics.median(row[key] for row in rows)

    def ratio(a: str, b: str) -> list[float]:
        return [round(row[a] / row[b], 3) for row in rows]

    return {
        "create": median("create"),
        "bare_create": median("bare_create"),
        "get": median("get"),
        "bare_get": median("bare_get"),
        "create_ratios": ratio("create", "bare_create"),
        "get_ratios": ratio("get", "bare_get"),
        # CPU per bare request / CPU per daemon request: the throughput ratio if the CPU
        # were all ours (insensitive to what else the machine runs).
        "create_cpu_ratios": ratio("bare_create_cpu", "create_cpu"),
        "get_cpu_ratios": ratio("bare_get_cpu", "get_cpu"),
        "create_cpu_us": median("create_cpu") * 1e6,
        "create_cpu_us_rounds": [round(row["create_cpu"] * 1e6) for row in rows],
        "bare_create_cpu_us": median("bare_create_cpu") * 1e6,
        "writes_per_commit": writes_per_commit,
    }


async def seed(path: Path, runs: int) -> None:
    """Stored runs as a killed daemon leaves them: Running, one measurement just taken
    (the next is an hour away, so resuming is scheduling work, not measuring)."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    async with SqliteStore(path) as store:
        for i in range(runs):
            body = manifest(i)
            body["metadata"]["namespace"] = "bench"
            status = {
                "phase": "Running",
                "startedAt": "2026-01-01T00:00:00Z",
                "metricResults": [
                    {
                        "name": "m",
                        "phase": "Running",
                        "count": 1,
                        "successful": 1,
                        "measurements": [
                            {
                                "phase": "Successful",
                                "value": "1",
                                "startedAt": now,
                                "finishedAt": now,
                            }
                        ],
                    }
                ],
            }
            await store.create_run(
                "bench", f"run-{i}", f"uid-{i}", body, None, "Running", {}, "2026-01-01T00:00:00Z"
            )
            await store.record_change(
                "bench",
                f"run-{i}",
                status=status,
                phase="Running",
                completed=False,
                measurements=[],
                outbox=[],
            )


async def resume(runs: int, folder: Path) -> dict[str, float]:
    path = folder / "resume.db"
    await seed(path, runs)
    settings = replace(Settings(), port=0, store=f"sqlite:///{path}")
    start = time.perf_counter()
    daemon = Daemon(settings, source=InstantSource())
    await daemon.start()
    started = time.perf_counter() - start
    # Settled: every resumed run has begun and the API answers behind them.
    async with (
        aiohttp.ClientSession() as s,
        s.get(f"http://127.0.0.1:{daemon.port}/readyz") as resp,
    ):
        assert resp.status == 200
    settled = time.perf_counter() - start
    assert daemon.resumed == runs and daemon.scheduler is not None
    active = daemon.scheduler.active_runs()
    await daemon.aclose()
    return {"runs": runs, "start_s": started, "settled_s": settled, "active": active}


async def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000, help="per round and kind")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--resume", type=int, default=10_000)
    parser.add_argument(
        "--profile", metavar="FILE", help="cProfile stats of the daemon's create rounds"
    )
    parser.add_argument("--gc", choices=("serve", "default"), default="serve")
    args = parser.parse_args()
    profile = cProfile.Profile() if args.profile else None
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        tp = await throughput(
            args.requests, args.concurrency, args.rounds, folder, profile, args.gc
        )
        rs = await resume(args.resume, folder)
    if profile is not None:
        profile.dump_stats(args.profile)
    report = {
        "gc": args.gc,
        "create_runs_per_s": round(tp["create"]),
        "bare_create_per_s": round(tp["bare_create"]),
        "create_ratio": statistics.median(tp["create_ratios"]),
        "create_ratios": tp["create_ratios"],
        "create_cpu_ratio": statistics.median(tp["create_cpu_ratios"]),
        "create_cpu_us": round(tp["create_cpu_us"]),
        "create_cpu_us_rounds": tp["create_cpu_us_rounds"],
        "bare_create_cpu_us": round(tp["bare_create_cpu_us"]),
        "writes_per_commit": round(tp["writes_per_commit"], 1),
        "get_runs_per_s": round(tp["get"]),
        "bare_get_per_s": round(tp["bare_get"]),
        "get_ratio": statistics.median(tp["get_ratios"]),
        "get_ratios": tp["get_ratios"],
        "get_cpu_ratio": statistics.median(tp["get_cpu_ratios"]),
        "resume_runs": rs["runs"],
        "resume_start_s": round(rs["start_s"], 2),
        "resume_settled_s": round(rs["settled_s"], 2),
        "resume_active_runs": rs["active"],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
