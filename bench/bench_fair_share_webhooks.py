"""Fair share of webhook delivery: does team a's dead receiver delay team b's events?

    python bench/bench_fair_share_webhooks.py [--big 300] [--small 100] [--rounds 3]

One daemon (SQLite store, scripted provider answering at once, webhook timeout 10 s,
the default per-target queues). Team b's receiver answers 200 at once. In the same run,
per round:

1. b alone: `--small` runs posted (one measurement each), each run's callback is b's
   receiver; b's delivery lag per run = arrival of the run's `completed` event at
   b's receiver - the moment its POST was answered;
2. b beside a hanging receiver: namespace a posts `--big` runs of 5 measurements each
   (6 events a run) to a receiver that accepts every request and never answers, and
   b's runs are posted once a's events are piling up (checked and printed);
3. b beside a refusing receiver: the same with a's callback on a port nobody listens on
   (connection refused at once: a's events back off and retry).

Reported: b's p50/p99 lag in each, and the ratio of b's p99 beside a dead receiver to
b's p99 alone (the target: no delay, i.e. within noise, <= ~1.5x); medians over the
rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysisd.outbox import CALLBACK_URL
from tests.e2e.rig import (
    ScriptedSource,
    run_manifest,
    running_daemon,
    scripted_metric,
    settings_for,
)


class Arrivals:
    """b's receiver: the moment each run's completed event first arrived."""

    def __init__(self) -> None:
        self.completed: dict[str, float] = {}
        self.arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        event = await request.json()
        if event["type"].endswith("completed"):
            self.completed.setdefault(event["subject"], time.perf_counter())
            self.arrived.set()
        return web.Response(status=200)


class Hanging:
    """a's hanging receiver: accepts, reads, never answers (until the bench ends)."""

    def __init__(self) -> None:
        self.opened = 0
        self.release = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.opened += 1
        await self.release.wait()
        return web.Response(status=200)


@asynccontextmanager
async def serving(handler: Any) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/hook", handler)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    finally:
        await runner.cleanup()


def closed_port_url() -> str:
    """A loopback URL nobody listens on (bound, then closed: connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


async def post_runs(
    http: aiohttp.ClientSession,
    base: str,
    namespace: str,
    prefix: str,
    runs: int,
    callback: str,
    count: int,
) -> dict[str, float]:
    """Post runs one after another; the moment each POST was answered, by subject."""
    posted: dict[str, float] = {}
    url = f"{base}/api/v1/namespaces/{namespace}/analysisruns"
    metric = scripted_metric(count=count, interval="100ms")
    for i in range(runs):
        name = f"{prefix}-{i}"
        body = run_manifest(name, [metric], annotations={CALLBACK_URL: callback})
        async with http.post(url, json=body) as resp:
            if resp.status != 201:
                raise RuntimeError(f"POST {name}: {resp.status} {await resp.text()}")
        posted[f"{namespace}/{name}"] = time.perf_counter()
    return posted


async def b_lags(
    http: aiohttp.ClientSession, base: str, arrivals: Arrivals, url: str, prefix: str, runs: int
) -> list[float]:
    posted = await post_runs(http, base, "b", prefix, runs, url, count=1)
    async with asyncio.timeout(120):
        while not all(subject in arrivals.completed for subject in posted):
            arrivals.arrived.clear()
            await arrivals.arrived.wait()
    return [arrivals.completed[s] - t for s, t in posted.items()]


async def pending(http: aiohttp.ClientSession, base: str, namespace: str, name: str) -> int:
    """Events of one run still undelivered."""
    if not name.rpartition("-")[2].isdigit():
        name = f"{name}-0"
    url = f"{base}/api/v1/namespaces/{namespace}/analysisruns/{name}/deliveries"
    async with http.get(url) as resp:
        if resp.status != 200:
            return 0
        body = await resp.json()
    items = body.get("items", body) if isinstance(body, dict) else body
    return sum(1 for row in items if row.get("state") == "pending")


async def completed(http: aiohttp.ClientSession, base: str, namespace: str, name: str) -> bool:
    async with http.get(f"{base}/api/v1/namespaces/{namespace}/analysisruns/{name}") as resp:
        if resp.status != 200:
            return False
        body = await resp.json()
    return (body.get("status") or {}).get("phase") in ("Successful", "Failed", "Error")


async def pending_all(
    http: aiohttp.ClientSession, base: str, namespace: str, prefix: str, runs: int
) -> int:
    """Every undelivered event of a's runs (printed: the backlog b's events meet)."""
    return sum([await pending(http, base, namespace, f"{prefix}-{i}") for i in range(runs)])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1)))]


def line(label: str, lags: list[float]) -> str:
    return (
        f"{label}: {len(lags)} runs, lag p50 {1000 * statistics.median(lags):.1f} ms, "
        f"p99 {1000 * percentile(lags, 0.99):.1f} ms"
    )


async def one_round(args: argparse.Namespace, round_no: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = replace(
            settings_for(Path(tmp)),
            webhook_timeout=10.0,
            webhook_backoff_base=1.0,
            webhook_backoff_max=30.0,
            webhook_poll_interval=0.2,
            max_active_runs_per_namespace=args.big + args.small + 10,
        )
        hang = Hanging()
        arrivals = Arrivals()
        async with (
            serving(arrivals.handle) as b_url,
            serving(hang.handle) as hang_url,
            running_daemon(settings, ScriptedSource()) as (_, base),
            aiohttp.ClientSession() as http,
        ):
            alone = await b_lags(http, base, arrivals, b_url, "alone", args.small)
            out = {"alone": percentile(alone, 0.99)}
            print(f"round {round_no}: {line('b alone', alone)}")
            for mode, a_url in (("hanging", hang_url), ("refused", closed_port_url())):
                await post_runs(http, base, "a", mode, args.big, a_url, count=5)
                # a's runs done (their measuring is not what is measured here) and their
                # events piled up behind the dead receiver.
                async with asyncio.timeout(120):
                    while not await completed(http, base, "a", f"{mode}-{args.big - 1}"):  # noqa: ASYNC110
                        await asyncio.sleep(0.1)
                    while await pending(http, base, "a", mode) < 3:  # noqa: ASYNC110
                        await asyncio.sleep(0.1)
                backlog = await pending_all(http, base, "a", mode, args.big)
                beside = await b_lags(http, base, arrivals, b_url, f"beside-{mode}", args.small)
                out[mode] = percentile(beside, 0.99)
                extra = f", its receiver {hang.opened} requests open" if mode == "hanging" else ""
                print(
                    f"round {round_no}: {line(f'b beside a {mode}', beside)} "
                    f"(a: {backlog} events undelivered{extra})"
                )
            hang.release.set()
    return out


async def amain(args: argparse.Namespace) -> None:
    rounds = [await one_round(args, i + 1) for i in range(args.rounds)]
    for mode in ("hanging", "refused"):
        ratios = [r[mode] / r["alone"] for r in rounds]
        print(
            f"b's p99 beside a {mode} receiver / b's p99 alone: "
            f"{', '.join(f'{x:.2f}' for x in ratios)}; median {statistics.median(ratios):.2f} "
            "(target <= ~1.5)"
        )


def main() -> None:
    from analysisd.telemetry import configure_logging

    configure_logging("WARNING")  # a line per delivery would be most of the work
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--big", type=int, default=300)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(amain(parser.parse_args()))


if __name__ == "__main__":
    main()
