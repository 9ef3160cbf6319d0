"""SIGTERM: stop accepting, finish in-flight work, persist, exit 0; the run resumes later
with its schedule and history intact."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from tests.e2e.process import start_daemon, wait_all_completed

COUNT = 6


async def _endpoint() -> tuple[web.AppRunner, str]:
    async def handle(request: web.Request) -> web.Response:
        return web.json_response({"ok": 1})

    app = web.Application()
    app.router.add_get("/m", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/m"


def _manifest(url: str) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {"name": "steady"},
        "spec": {
            "metrics": [
                {
                    "name": "ok",
                    "count": COUNT,
                    "interval": "200ms",
                    "successCondition": "result == 1",
                    "provider": {"web": {"url": url, "jsonPath": "{$.ok}"}},
                }
            ]
        },
    }


async def test_sigterm_exits_zero_and_the_run_resumes_after_restart(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    # The store comes from the environment, as `make serve` in CI passes it.
    env = {"ANALYSISD_STORE": f"sqlite:///{tmp_path / 'env.db'}"}
    log = tmp_path / "daemon.log"
    runner, url = await _endpoint()
    try:
        async with aiohttp.ClientSession() as s:
            first = await start_daemon(None, tmp_path / "secrets", log, env=env)
            async with s.post(
                f"{first.base}/api/v1/namespaces/ns/analysisruns", json=_manifest(url)
            ) as resp:
                assert resp.status == 201
            async with asyncio.timeout(20):
                while True:
                    async with s.get(f"{first.base}/api/v1/namespaces/ns/analysisruns/steady") as r:
                        results = ((await r.json()).get("status") or {}).get("metricResults")
                    if results and results[0]["count"] >= 2:
                        break
                    await asyncio.sleep(0.05)
            assert await first.terminate() == 0
            assert (tmp_path / "env.db").exists()

            second = await start_daemon(None, tmp_path / "secrets", log, env=env)
            try:
                items = await wait_all_completed(s, second.base, "ns", 1, limit=30)
                status = items[0]["status"]
                assert status["phase"] == "Successful"
                assert status["metricResults"][0]["count"] == COUNT
                history_url = f"{second.base}/api/v1/namespaces/ns/analysisruns/steady/measurements"
                async with s.get(history_url) as resp:
                    history = (await resp.json())["items"]
                assert len(history) == COUNT
                starts = [m["startedAt"] for m in history]
                assert starts == sorted(starts)
            finally:
                assert await second.terminate() == 0
        assert '"resumed": 1' in log.read_text()
    finally:
        await runner.cleanup()
