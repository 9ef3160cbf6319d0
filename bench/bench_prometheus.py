"""Benchmark: Prometheus measurement throughput, as a ratio to a bare aiohttp loop.

Run from the repository root:  python bench/bench_prometheus.py [--requests 3000]

Starts the test rig's real Prometheus (tests/rigs/prometheus.py), then, in
alternating rounds with the same concurrency and the same success-rate query:

- baseline: one aiohttp ClientSession POSTing /api/v1/query and reading the JSON;
- provider: PrometheusProvider.measure() (config parsing, decoding, value string).

Reports requests/s of each and provider/baseline. If providers.registry exists,
also fires bursts of identical measurements through ProviderRegistry and counts
what reached Prometheus (its own prometheus_http_requests_total), giving the
coalescing factor = measurements / HTTP requests.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from providers.prometheus import PrometheusProvider
from tests.rigs.prometheus import SUCCESS_RATE_QUERY, running_prometheus

QUERY = SUCCESS_RATE_QUERY.format(version="canary")


def _no_secrets(name: str, key: str) -> str | None:
    return None


async def _drive(total: int, concurrency: int, one: Callable[[], Awaitable[object]]) -> float:
    """Requests per second for `total` calls of `one`, `concurrency` at a time."""
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await one()

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(worker())
    return total / (time.perf_counter() - started)


async def baseline_rate(url: str, total: int, concurrency: int) -> float:
    async with aiohttp.ClientSession() as session:

        async def one() -> object:
            async with session.post(f"{url}/api/v1/query", data={"query": QUERY}) as response:
                return await response.json()

        return await _drive(total, concurrency, one)


async def provider_rate(url: str, total: int, concurrency: int) -> float:
    config = {"address": url, "query": QUERY}
    provider = PrometheusProvider.create(config, _no_secrets)
    try:
        return await _drive(total, concurrency, lambda: provider.measure(config))
    finally:
        await provider.aclose()


def query_requests_served(url: str) -> float:
    """Prometheus's own count of /api/v1/query requests (its /metrics)."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    pattern = r'prometheus_http_requests_total\{code="200",handler="/api/v1/query"\} (\S+)'
    match = re.search(pattern, text)
    return float(match.group(1)) if match else 0.0


async def coalescing_factor(url: str, bursts: int, burst_size: int) -> float | None:
    try:
        from providers.registry import ProviderRegistry
    except ImportError:
        return None
    config = {"address": url, "query": QUERY}
    before = query_requests_served(url)
    async with ProviderRegistry(secrets=_no_secrets) as registry:
        for _ in range(bursts):
            await asyncio.gather(
                *(registry.measure("prometheus", config) for _ in range(burst_size))
            )
    sent = query_requests_served(url) - before
    return (bursts * burst_size) / sent if sent else None


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with running_prometheus() as rig:
        # Warm both paths (connections, Prometheus caches) before measuring.
        await baseline_rate(rig.url, 200, args.concurrency)
        await provider_rate(rig.url, 200, args.concurrency)
        baseline, provider = [], []
        for _ in range(args.rounds):
            baseline.append(await baseline_rate(rig.url, args.requests, args.concurrency))
            provider.append(await provider_rate(rig.url, args.requests, args.concurrency))
        factor = await coalescing_factor(rig.url, bursts=20, burst_size=50)
    base, prov = statistics.median(baseline), statistics.median(provider)
    print(
        f"requests per round: {args.requests}, concurrency {args.concurrency}, rounds {args.rounds}"
    )
    print(f"bare aiohttp loop:   {base:8.0f} req/s (median; rounds {[round(b) for b in baseline]})")
    print(f"PrometheusProvider:  {prov:8.0f} req/s (median; rounds {[round(p) for p in provider]})")
    print(f"provider / baseline: {prov / base:.2f}")
    if factor is None:
        print("coalescing: providers.registry not available (or nothing sent)")
    else:
        print(f"coalescing factor (20 bursts x 50 identical measurements): {factor:.1f}")


if __name__ == "__main__":
    asyncio.run(main())
