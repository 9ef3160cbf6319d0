"""The daemon's own metrics follow runs: counts by phase; no series names a run."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from tests.e2e.rig import (
    SCRIPTED_URL,
    ScriptedSource,
    run_manifest,
    running_daemon,
    settings_for,
)


async def test_run_counts_follow_the_run_and_no_series_names_it(
    tmp_path: Path,
) -> None:
    endless = {
        "name": "latency",
        "interval": "50ms",
        "successCondition": "result < 10",
        "provider": {"web": {"url": SCRIPTED_URL, "value": 4.5}},
    }
    async with (
        running_daemon(settings_for(tmp_path), ScriptedSource()) as (_, base),
        aiohttp.ClientSession() as s,
    ):
        url = f"{base}/api/v1/namespaces/ns/analysisruns"
        async with s.post(url, json=run_manifest("live", [endless])) as resp:
            assert resp.status == 201
        line = 'analysisd_namespace_measurements_total{namespace="ns",phase="Successful"}'
        async with asyncio.timeout(10):
            while True:
                async with s.get(f"{base}/metrics") as resp:
                    text = await resp.text()
                if line in text:
                    break
                await asyncio.sleep(0.05)
        assert 'analysisd_measurements_total{phase="Successful",provider="web"}' in text
        assert 'run="live"' not in text  # per-run detail stays in the API
        assert 'analysisd_runs{phase="Running"} 1.0' in text
        async with s.post(f"{url}/live/terminate") as resp:
            assert resp.status == 202
        async with asyncio.timeout(10):
            while True:
                async with s.get(f"{base}/metrics") as resp:
                    text = await resp.text()
                if 'analysisd_runs{phase="Successful"} 1.0' in text:
                    break
                await asyncio.sleep(0.05)
        assert 'run="live"' not in text
