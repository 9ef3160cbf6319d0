"""Datadog provider overhead: DatadogProvider.measure() against the local fake API.

Baseline, in the same run and against the same server: a bare aiohttp session
sending the same v2 scalar POST with the same headers and json.loads of the
answer. The ratio is what the real datadog-api-client (aiosonic), request
model building and our validation cost per measurement.

    python bench/bench_datadog.py [--requests 2000] [--concurrency 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from providers.datadog import DatadogProvider
from tests.rigs.datadog_fake import DatadogFake, ScalarAnswer

KEYS = {"api-key": "bench-api-key", "app-key": "bench-app-key"}
CONFIG = {"apiVersion": "v2", "query": "avg:errors{app:demo}"}


async def run_batch(total: int, concurrency: int, call: object) -> float:
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            await call()  # type: ignore[operator]

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(total):
            group.create_task(one())
    return total / (time.perf_counter() - started)


async def main(total: int, concurrency: int) -> None:
    async with DatadogFake(api_key=KEYS["api-key"], app_key=KEYS["app-key"]) as fake:
        fake.scalar["query"] = ScalarAnswer([0.01])
        values = {**KEYS, "address": fake.url}
        provider = DatadogProvider.create(CONFIG, lambda _s, key: values.get(key))
        now = int(time.time())
        body = {
            "data": {
                "type": "scalar_request",
                "attributes": {
                    "from": (now - 300) * 1000,
                    "to": now * 1000,
                    "formulas": [{"formula": "query"}],
                    "queries": [
                        {
                            "name": "query",
                            "query": CONFIG["query"],
                            "aggregator": "last",
                            "data_source": "metrics",
                        }
                    ],
                },
            }
        }
        headers = {"DD-API-KEY": KEYS["api-key"], "DD-APPLICATION-KEY": KEYS["app-key"]}
        async with aiohttp.ClientSession(headers=headers) as session:

            async def bare() -> None:
                async with session.post(f"{fake.url}/api/v2/query/scalar", json=body) as resp:
                    json.loads(await resp.read())

            async def ours() -> None:
                await provider.measure(CONFIG)

            try:
                await run_batch(200, concurrency, bare)  # warm both paths
                await run_batch(200, concurrency, ours)
                rows = []
                for _ in range(3):
                    rows.append(
                        (
                            await run_batch(total, concurrency, bare),
                            await run_batch(total, concurrency, ours),
                        )
                    )
            finally:
                await provider.aclose()
    best_bare = max(r[0] for r in rows)
    best_ours = max(r[1] for r in rows)
    print(f"requests={total} concurrency={concurrency} (best of 3)")
    print(f"bare aiohttp POST + json.loads : {best_bare:8.0f} req/s")
    print(f"DatadogProvider.measure (v2)   : {best_ours:8.0f} req/s")
    print(f"ratio (bare / provider)        : {best_bare / best_ours:8.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.concurrency))
