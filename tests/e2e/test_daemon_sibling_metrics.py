"""A real `analysisd serve` (SQLite) with 200 runs × 3 Web metrics, coalescing on.

Every metric gets exactly `count` measurements, spaced at least `interval` apart, and
a metric that fails only its first measurement (count 2, failureLimit 1) beside two
healthy siblings leaves every run Successful, as it does in Argo. Then the same
through two `kill -9` restarts mid-run.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.e2e.process import DaemonProcess, start_daemon, wait_all_completed

RUNS = 200
INTERVAL = timedelta(seconds=1)
# metric -> (count, failureLimit); "flaky" fails its first measurement in every run.
METRICS = {"flaky": (2, 1), "healthy-a": (4, 0), "healthy-b": (4, 0)}


class Endpoint:
    """A loopback JSON endpoint: per-run URLs for the flaky metric, shared URLs (so
    coalesced across runs) for the healthy ones."""

    def __init__(self) -> None:
        self.hits: dict[tuple[str, str], int] = defaultdict(int)
        self.url = ""
        self.asked = asyncio.Event()

    def flaky_hits(self) -> int:
        return sum(n for (_, metric), n in self.hits.items() if metric == "flaky")

    async def handle(self, request: web.Request) -> web.Response:
        run, metric = request.query.get("run", ""), request.query["m"]
        self.hits[(run, metric)] += 1
        self.asked.set()
        await asyncio.sleep(0.01)  # measurements stay in flight for a moment
        failing = metric == "flaky" and self.hits[(run, metric)] == 1
        return web.json_response({"errorRate": 0.5 if failing else 0.01})


@asynccontextmanager
async def endpoint() -> AsyncIterator[Endpoint]:
    served = Endpoint()
    app = web.Application()
    app.router.add_get("/metric", served.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    served.url = f"http://127.0.0.1:{runner.addresses[0][1]}/metric"
    try:
        yield served
    finally:
        await runner.cleanup()


def manifest(i: int, url: str) -> dict[str, Any]:
    name = f"run-{i:03d}"
    metrics = []
    for metric, (count, failure_limit) in METRICS.items():
        query = f"?run={name}&m={metric}" if metric == "flaky" else f"?m={metric}"
        metrics.append(
            {
                "name": metric,
                "count": count,
                "interval": f"{INTERVAL.total_seconds():g}s",
                "failureLimit": failure_limit,
                "successCondition": "result < 0.05",
                "provider": {"web": {"url": url + query, "jsonPath": "{$.errorRate}"}},
            }
        )
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {"name": name},
        "spec": {"metrics": metrics},
    }


async def submit_all(session: aiohttp.ClientSession, daemon: DaemonProcess, url: str) -> None:
    for i in range(RUNS):
        async with session.post(
            f"{daemon.base}/api/v1/namespaces/lab/analysisruns", json=manifest(i, url)
        ) as resp:
            assert resp.status == 201, await resp.text()


async def wait_flaky_hits(served: Endpoint, at_least: int) -> None:
    """Until the flaky metric's per-run URLs have been asked `at_least` times in all."""
    async with asyncio.timeout(120):
        while served.flaky_hits() < at_least:
            served.asked.clear()
            await served.asked.wait()


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def check_every_run(session: aiohttp.ClientSession, daemon: DaemonProcess) -> None:
    items = await wait_all_completed(session, daemon.base, "lab", RUNS, limit=240)
    assert len(items) == RUNS
    for item in items:
        name = item["metadata"]["name"]
        status = item["status"]
        assert status["phase"] == "Successful", (name, status.get("message"))
        url = f"{daemon.base}/api/v1/namespaces/lab/analysisruns/{name}/measurements"
        async with session.get(url) as resp:
            assert resp.status == 200
            history = (await resp.json())["items"]
        by_metric: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in history:
            by_metric[row["metric"]].append(row)
        assert set(by_metric) == set(METRICS), name
        for metric, (count, _) in METRICS.items():
            rows = sorted(by_metric[metric], key=lambda r: _time(r["startedAt"]))
            assert len(rows) == count, (name, metric, rows)
            assert all(r["phase"] in {"Successful", "Failed"} for r in rows), (name, rows)
            assert sum(r["phase"] == "Failed" for r in rows) <= (1 if metric == "flaky" else 0)
            for before, after in itertools.pairwise(rows):
                gap = _time(after["startedAt"]) - _time(before["finishedAt"])
                assert gap >= INTERVAL, (name, metric, before, after)
        for result in status["metricResults"]:
            assert result["count"] == METRICS[result["name"]][0], (name, result)


@pytest.mark.slow
async def test_200_runs_of_3_metrics_measure_each_metric_exactly_count_times(
    tmp_path: Path,
) -> None:
    store = f"sqlite:///{tmp_path / 'analysisd.db'}"
    (tmp_path / "secrets").mkdir()
    async with endpoint() as served, aiohttp.ClientSession() as session:
        daemon = await start_daemon(store, tmp_path / "secrets", tmp_path / "daemon.log")
        try:
            await submit_all(session, daemon, served.url)
            await check_every_run(session, daemon)
        finally:
            assert await daemon.terminate() == 0
    # The flaky metric's endpoint was asked exactly twice per run: no hidden re-take.
    assert all(served.hits[(f"run-{i:03d}", "flaky")] == 2 for i in range(RUNS))


@pytest.mark.slow
async def test_the_same_through_two_kill9_restarts_mid_run(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'analysisd.db'}"
    (tmp_path / "secrets").mkdir()
    log = tmp_path / "daemon.log"
    async with endpoint() as served, aiohttp.ClientSession() as session:
        first = await start_daemon(store, tmp_path / "secrets", log)
        try:
            await submit_all(session, first, served.url)
            await wait_flaky_hits(served, RUNS // 2)  # a quarter of the flaky asks
        finally:
            await first.kill9()
        second = await start_daemon(store, tmp_path / "secrets", log)
        try:
            # RUNS more asks, or every flaky ask there is (2 per run): when the first daemon
            # got through the whole first burst before the kill landed, fewer than RUNS
            # remain, and the healthy metrics (4 at 1 s) are still running after them.
            await wait_flaky_hits(served, min(served.flaky_hits() + RUNS, 2 * RUNS))
        finally:
            await second.kill9()
        url = f"{second.base}/api/v1/namespaces/lab/analysisruns"
        third = await start_daemon(store, tmp_path / "secrets", log)
        try:
            async with session.get(url.replace(second.base, third.base)) as resp:
                items = (await resp.json())["items"]
            # Really killed mid-run: some runs had not finished when the second one died.
            unfinished = [i for i in items if i["status"]["phase"] not in {"Successful"}]
            assert unfinished, "the second daemon finished every run before it was killed"
            await check_every_run(session, third)
        finally:
            assert await third.terminate() == 0
