"""kill -9 with 100 runs in flight, restart: every run finishes, every verdict arrives once
(after de-duplication by id), and no measurement is missing or doubled in the history."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from analysisd.outbox import CALLBACK_SECRET, CALLBACK_URL, COMPLETED_EVENT, MEASUREMENT_EVENT
from tests.e2e.process import start_daemon, wait_all_completed
from tests.e2e.rig import receiver, write_secret

RUNS = 100
COUNT = 5
KEY = "kill-nine-key"


async def _metric_endpoint() -> tuple[web.AppRunner, str, dict[str, int]]:
    """A loopback JSON endpoint the Web provider measures; counts requests per run."""
    hits: dict[str, int] = defaultdict(int)

    async def handle(request: web.Request) -> web.Response:
        hits[request.query.get("run", "")] += 1
        await asyncio.sleep(0.02)  # measurements stay in flight for a moment
        return web.json_response({"errorRate": 0.01})

    app = web.Application()
    app.router.add_get("/metric", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/metric", hits


def _manifest(i: int, metric_url: str, hook_url: str) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {
            "name": f"run-{i:03d}",
            "annotations": {CALLBACK_URL: hook_url, CALLBACK_SECRET: "hooks"},
        },
        "spec": {
            "metrics": [
                {
                    "name": "error-rate",
                    "count": COUNT,
                    "interval": "300ms",
                    "successCondition": "result < 0.05",
                    "provider": {
                        "web": {"url": f"{metric_url}?run=run-{i:03d}", "jsonPath": "{$.errorRate}"}
                    },
                }
            ]
        },
    }


@pytest.mark.slow
async def test_kill9_with_100_runs_in_flight_loses_and_doubles_nothing(tmp_path: Path) -> None:
    write_secret(tmp_path, "hooks", "hmac-key", KEY, namespace="lab")
    store = f"sqlite:///{tmp_path / 'analysisd.db'}"
    log_path = tmp_path / "daemon.log"
    runner, metric_url, _hits = await _metric_endpoint()
    try:
        async with receiver() as rec, aiohttp.ClientSession() as session:
            first = await start_daemon(store, tmp_path / "secrets", log_path)
            try:
                for i in range(RUNS):
                    async with session.post(
                        f"{first.base}/api/v1/namespaces/lab/analysisruns",
                        json=_manifest(i, metric_url, rec.url),
                    ) as resp:
                        assert resp.status == 201, await resp.text()
                # Let some measurements land, then pull the plug mid-flight.
                await rec.wait_for(lambda r: len(r.by_type(MEASUREMENT_EVENT)) >= RUNS)
            finally:
                await first.kill9()
            assert len(rec.unique_ids(COMPLETED_EVENT)) < RUNS  # really killed mid-run

            second = await start_daemon(store, tmp_path / "secrets", log_path)
            try:
                items = await wait_all_completed(session, second.base, "lab", RUNS)
                assert {i["status"]["phase"] for i in items} == {"Successful"}
                for item in items:
                    name = item["metadata"]["name"]
                    result = item["status"]["metricResults"][0]
                    assert result["count"] == COUNT, name
                    url = f"{second.base}/api/v1/namespaces/lab/analysisruns/{name}/measurements"
                    async with session.get(url) as resp:
                        history = (await resp.json())["items"]
                    assert len(history) == COUNT, name
                    assert all(m["phase"] == "Successful" for m in history)
                await rec.wait_for(lambda r: len(r.unique_ids(COMPLETED_EVENT)) == RUNS, 60)
            finally:
                assert await second.terminate() == 0
        completed_by_run: dict[str, set[str]] = defaultdict(set)
        for delivery in rec.by_type(COMPLETED_EVENT):
            assert delivery.signed_with(KEY)
            completed_by_run[delivery.event["subject"]].add(delivery.event["id"])
        assert len(completed_by_run) == RUNS
        assert all(len(ids) == 1 for ids in completed_by_run.values())
    finally:
        await runner.cleanup()
