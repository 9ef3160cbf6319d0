"""Provider registry benchmark: coalescing factor and per-request overhead.

    python bench/bench_coalescing.py [--runs 500] [--queries 5] [--requests 3000]
                                     [--concurrency 50]

A counting JSON endpoint runs in a child process on 127.0.0.1 (this script with
--serve), so server work does not share the client's event loop. Measured in one run:

1. overhead: `requests` distinct-query GETs at `concurrency` in flight,
   (a) bare aiohttp (one session, GET + json decode) — the baseline,
   (b) ProviderRegistry.measure("web", ...) with coalescing and rate limits on
       but nothing to coalesce (every query distinct): the registry path's price;
   reported as requests/s and the ratio (b)/(a).
2. burst: `runs` runs x `queries` distinct queries all due at once (what 500 runs
   started by one rollout wave look like) -> measurements / HTTP requests.
3. spread: the same measurements arriving evenly over 3 s (runs out of phase),
   1 s coalescing window -> measurements / HTTP requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from providers.limits import LimitsConfig
from providers.registry import ProviderRegistry


def serve() -> None:
    counts: Counter[str] = Counter()

    async def metric(request: web.Request) -> web.Response:
        counts[request.query.get("q", "")] += 1
        return web.json_response({"value": 1.5, "ok": True})

    async def count(request: web.Request) -> web.Response:
        return web.json_response({"total": sum(counts.values())})

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/metric", metric)
        app.router.add_get("/count", count)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
        await site.start()
        sys.stdout.write(f"PORT {runner.addresses[0][1]}\n")
        sys.stdout.flush()
        await asyncio.Event().wait()

    asyncio.run(main())


async def server_total(session: aiohttp.ClientSession, base: str) -> int:
    async with session.get(f"{base}/count") as response:
        return int((await response.json())["total"])


async def bare(base: str, requests: int, concurrency: int) -> tuple[float, float]:
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        queue = iter(range(requests))
        started, cpu = time.perf_counter(), time.process_time()

        async def worker() -> None:
            for i in queue:
                async with asyncio.timeout(10):
                    async with session.get(f"{base}/metric", params={"q": f"bare{i}"}) as resp:
                        json.loads(await resp.read())

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        # Client CPU per request is robust to a loaded machine; wall-clock rate is not.
        cpu_us = (time.process_time() - cpu) / requests * 1e6
        return requests / (time.perf_counter() - started), cpu_us


async def through_registry(base: str, requests: int, concurrency: int) -> tuple[float, float]:
    limits = LimitsConfig(rate=1e9, burst=1e9, concurrency=concurrency)
    async with ProviderRegistry(secrets=lambda n, k: None, limits=limits) as registry:
        queue = iter(range(requests))
        started, cpu = time.perf_counter(), time.process_time()

        async def worker() -> None:
            for i in queue:
                config = {"url": f"{base}/metric?q=reg{i}", "jsonPath": "{.value}"}
                await registry.measure("web", config)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        # Client CPU per request is robust to a loaded machine; wall-clock rate is not.
        cpu_us = (time.process_time() - cpu) / requests * 1e6
        return requests / (time.perf_counter() - started), cpu_us


async def burst(base: str, runs: int, queries: int) -> tuple[int, int]:
    async with aiohttp.ClientSession() as session:
        before = await server_total(session, base)
        async with ProviderRegistry(secrets=lambda n, k: None) as registry:
            calls = [
                registry.measure("web", {"url": f"{base}/metric?q=burst{q}", "jsonPath": "{.ok}"})
                for _ in range(runs)
                for q in range(queries)
            ]
            await asyncio.gather(*calls)
        return len(calls), await server_total(session, base) - before


async def spread(base: str, runs: int, queries: int, seconds: float) -> tuple[int, int]:
    async with aiohttp.ClientSession() as session:
        before = await server_total(session, base)
        async with ProviderRegistry(
            secrets=lambda n, k: None, limits=LimitsConfig(coalesce_window=1.0)
        ) as registry:
            total = runs * queries
            started = time.perf_counter()
            tasks = []
            for i in range(total):
                due = started + seconds * i / total
                await asyncio.sleep(max(due - time.perf_counter(), 0))
                config = {"url": f"{base}/metric?q=spread{i % queries}", "jsonPath": "{.ok}"}
                tasks.append(asyncio.ensure_future(registry.measure("web", config)))
            await asyncio.gather(*tasks)
        return total, await server_total(session, base) - before


async def run(args: argparse.Namespace, base: str) -> None:
    await bare(base, 200, args.concurrency)  # warm-up: connections, JIT-free but caches
    bare_runs, reg_runs = [], []
    for _ in range(3):  # interleaved, best of 3, so machine noise hits both alike
        bare_runs.append(await bare(base, args.requests, args.concurrency))
        reg_runs.append(await through_registry(base, args.requests, args.concurrency))
    best_bare, best_reg = max(r for r, _ in bare_runs), max(r for r, _ in reg_runs)
    cpu_bare, cpu_reg = min(c for _, c in bare_runs), min(c for _, c in reg_runs)
    print(f"overhead: bare aiohttp {best_bare:,.0f} req/s, registry path {best_reg:,.0f} req/s")
    print(f"  ratio registry/bare throughput = {best_reg / best_bare:.2f}")
    print(
        f"  client CPU per request: bare {cpu_bare:,.0f} us, registry {cpu_reg:,.0f} us "
        f"(ratio {cpu_reg / cpu_bare:.2f}, +{cpu_reg - cpu_bare:,.0f} us)"
    )
    measurements, sent = await burst(base, args.runs, args.queries)
    print(
        f"burst: {measurements} measurements ({args.runs} runs x {args.queries} queries) -> "
        f"{sent} HTTP requests; coalescing factor {measurements / sent:.0f}x, "
        f"{1 - sent / measurements:.1%} saved"
    )
    measurements, sent = await spread(base, args.runs, args.queries, 3.0)
    print(
        f"spread over 3 s, 1 s window: {measurements} measurements -> {sent} HTTP requests; "
        f"factor {measurements / sent:.0f}x, {1 - sent / measurements:.1%} saved"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--queries", type=int, default=5)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().split()[1])
        asyncio.run(run(args, f"http://127.0.0.1:{port}"))
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
