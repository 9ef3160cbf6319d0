"""examples/argo-web-gate.yaml under `analysisd run`: our web provider polls our own verdict
endpoint on a real `analysisd serve`, which runs the delegated template against a loopback
JSON endpoint; the gate's verdict is the delegated template's."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.e2e.process import start_daemon

REPO = Path(__file__).resolve().parents[2]
GATE = REPO / "examples" / "argo-web-gate.yaml"


@asynccontextmanager
async def error_rates() -> AsyncIterator[tuple[str, list[str]]]:
    """/good answers 0.01, /bad 0.5; the query strings asked are kept."""
    asked: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        asked.append(request.path_qs)
        rate = 0.01 if request.path == "/good" else 0.5
        return web.json_response({"errorRate": rate})

    app = web.Application()
    app.router.add_get("/{which}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", asked
    finally:
        await runner.cleanup()


def delegated(name: str, base: str) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": name},
        "spec": {
            "args": [{"name": "canary-hash"}],
            "metrics": [
                {
                    "name": "error-rate",
                    "count": 2,
                    "interval": "1s",
                    "successCondition": "result < 0.05",
                    "provider": {
                        "web": {
                            "url": f"{base}/{name}?hash={{{{args.canary-hash}}}}",
                            "jsonPath": "{$.errorRate}",
                        }
                    },
                }
            ],
        },
    }


async def run_gate(analysisd: str, template: str, key: str) -> tuple[int, dict[str, Any]]:
    args = {
        "analysisd": analysisd,
        "namespace": "lab",
        "template": template,
        "key": key,
        "canary-hash": "abc123",
        "interval": "1s",
    }
    cmd = [sys.executable, "-m", "analysisd.cli", "run", str(GATE), "-o", "json"]
    for name, value in args.items():
        cmd += ["--arg", f"{name}={value}"]
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=str(REPO)
    )
    async with asyncio.timeout(120):
        out, err = await proc.communicate()
    assert out, err.decode()
    assert proc.returncode is not None
    return proc.returncode, json.loads(out)


@pytest.mark.slow
async def test_the_web_gate_example_gives_the_delegated_templates_verdict(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    async with error_rates() as (endpoint, asked), aiohttp.ClientSession() as session:
        daemon = await start_daemon(
            f"sqlite:///{tmp_path / 'analysisd.db'}", tmp_path / "secrets", tmp_path / "d.log"
        )
        try:
            for name in ("good", "bad"):
                async with session.post(
                    f"{daemon.base}/api/v1/namespaces/lab/analysistemplates",
                    json=delegated(name, endpoint),
                ) as resp:
                    assert resp.status == 201, await resp.text()
            (good_code, good), (bad_code, bad) = await asyncio.gather(
                run_gate(daemon.base, "good", "checkout-7"),
                run_gate(daemon.base, "bad", "checkout-8"),
            )
            assert (good_code, good["status"]["phase"]) == (0, "Successful")
            assert (bad_code, bad["status"]["phase"]) == (1, "Failed")
            # The gate polled while the delegated run ran (Inconclusive), then took its verdict.
            [gate_metric] = good["status"]["metricResults"]
            phases = [m["phase"] for m in gate_metric["measurements"]]
            assert phases[-1] == "Successful" and set(phases) <= {"Inconclusive", "Successful"}
            async with session.get(f"{daemon.base}/api/v1/namespaces/lab/analysisruns") as resp:
                runs = (await resp.json())["items"]
            assert sorted(r["status"]["phase"] for r in runs) == ["Failed", "Successful"]
            assert all(
                r["metadata"]["labels"]["analysisd.io/front-door"] == "verdict" for r in runs
            )
            # The gate's args reached the delegated template's query.
            assert asked and all(q.endswith("?hash=abc123") for q in asked)
        finally:
            assert await daemon.terminate() == 0
