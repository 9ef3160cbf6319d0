"""API benchmark: create-run and get-run throughput against a bare aiohttp handler measured
in the same run (ratio), and the time to resume 10,000 stored runs after a restart.

    python bench/bench_api.py [--requests 2000] [--concurrency 32] [--resume 10000]

Client and servers share one event loop, for the baseline and the daemon alike, so
the ratio compares like with like. Runs carry `initialDelay: 1h`: the numbers are the
API + store path, not measurement work.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
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


async def throughput(n: int, concurrency: int, folder: Path) -> dict[str, float]:
    async def post(url: str, s: aiohttp.ClientSession, i: int) -> None:
        async with s.post(url, json=manifest(i)) as resp:
            assert resp.status == 201, await resp.text()
            await resp.read()

    async def get(url: str, s: aiohttp.ClientSession, i: int) -> None:
        async with s.get(f"{url}/run-{i}") as resp:
            assert resp.status == 200
            await resp.read()

    runner, bare = await bare_server()
    try:
        bare_create = await drive(n, concurrency, lambda s, i: post(bare, s, i))
        bare_get = await drive(n, concurrency, lambda s, i: get(bare, s, i))
    finally:
        await runner.cleanup()
    settings = Settings(
        port=0, store=f"sqlite:///{folder / 'tp.db'}", max_active_runs_per_namespace=10**9
    )
    async with Daemon(settings, source=InstantSource()) as daemon:
        url = f"http://127.0.0.1:{daemon.port}/api/v1/namespaces/bench/analysisruns"
        create = await drive(n, concurrency, lambda s, i: post(url, s, i))
        read = await drive(n, concurrency, lambda s, i: get(url, s, i))
    return {"bare_create": bare_create, "create": create, "bare_get": bare_get, "get": read}


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
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--resume", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        tp = await throughput(args.requests, args.concurrency, folder)
        rs = await resume(args.resume, folder)
    report = {
        "create_runs_per_s": round(tp["create"]),
        "bare_create_per_s": round(tp["bare_create"]),
        "create_ratio": round(tp["create"] / tp["bare_create"], 3),
        "get_runs_per_s": round(tp["get"]),
        "bare_get_per_s": round(tp["bare_get"]),
        "get_ratio": round(tp["get"] / tp["bare_get"], 3),
        "resume_runs": rs["runs"],
        "resume_start_s": round(rs["start_s"], 2),
        "resume_settled_s": round(rs["settled_s"], 2),
        "resume_active_runs": rs["active"],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
