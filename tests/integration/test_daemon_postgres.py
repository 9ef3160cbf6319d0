"""The daemon on the PostgreSQL store: runs complete, history and verdicts are stored,
and a restart resumes unfinished runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from analysisd.outbox import CALLBACK_URL, COMPLETED_EVENT
from tests.e2e.rig import (
    ScriptedSource,
    receiver,
    run_manifest,
    running_daemon,
    scripted_metric,
    settings_for,
)
from tests.rigs.postgres import scratch_schema


@pytest.fixture
async def pg_store_url() -> AsyncIterator[str]:
    async with scratch_schema("d") as schema:
        yield schema.url


async def test_runs_complete_and_resume_on_postgres(tmp_path: Path, pg_store_url: str) -> None:
    settings = replace(settings_for(tmp_path), store=pg_store_url)
    async with receiver() as hook, aiohttp.ClientSession() as s:
        async with running_daemon(settings, ScriptedSource()) as (_, base):
            url = f"{base}/api/v1/namespaces/ns/analysisruns"
            done = run_manifest(
                "done", [scripted_metric(count=3)], annotations={CALLBACK_URL: hook.url}
            )
            async with s.post(url, json=done) as resp:
                assert resp.status == 201
            endless = scripted_metric(count=2, interval="1h")
            async with s.post(url, json=run_manifest("later", [endless])) as resp:
                assert resp.status == 201
            # Every event of "done" (three measurements, the verdict) before the stop: the
            # deliverer sends them concurrently, so the verdict may arrive before the last
            # measurement's event, which the next daemon would then deliver.
            await hook.wait_for(lambda r: r.by_type(COMPLETED_EVENT) and len(r.unique_ids()) == 4)
            async with s.get(f"{url}/done/measurements") as resp:
                assert len((await resp.json())["items"]) == 3
        async with running_daemon(settings, ScriptedSource()) as (daemon, base):
            assert daemon.resumed == 1
            async with s.get(f"{base}/api/v1/namespaces/ns/analysisruns/later") as resp:
                run = await resp.json()
            assert run["status"]["metricResults"][0]["count"] == 1
            async with s.get(f"{base}/api/v1/namespaces/ns/analysisruns/done/deliveries") as resp:
                items = (await resp.json())["items"]
            assert {i["state"] for i in items} == {"delivered"}
