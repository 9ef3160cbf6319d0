"""A 201 means the run is committed, group commit or not: a real `analysisd serve` takes a
burst of concurrent creates and is killed with -9 while they are still arriving; after a
restart every run whose create was answered 201 is there and readable (SQLite;
PostgreSQL when reachable)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.process import DaemonProcess, start_daemon
from tests.rigs.postgres import scratch_schema

RUNS = 400
IN_FLIGHT = 32
KILL_AFTER = 150  # answers


def _manifest(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {"name": name},
        "spec": {
            "metrics": [
                {
                    "name": "m",
                    "interval": "1h",
                    "initialDelay": "1h",
                    "successCondition": "result < 10",
                    "provider": {"web": {"url": "http://127.0.0.1:9/x"}},
                }
            ]
        },
    }


@pytest.fixture(params=["sqlite", "postgres"])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'analysisd.db'}"
        return
    async with scratch_schema("k") as schema:
        yield schema.url


async def _burst(session: aiohttp.ClientSession, daemon: DaemonProcess) -> set[str]:
    """Create RUNS runs, IN_FLIGHT at a time; kill -9 once KILL_AFTER were answered 201.
    Returns the names answered 201."""
    url = f"{daemon.base}/api/v1/namespaces/lab/analysisruns"
    answered: set[str] = set()
    enough = asyncio.Event()
    names = iter(f"run-{i:03d}" for i in range(RUNS))

    async def worker() -> None:
        for name in names:
            try:
                async with session.post(url, json=_manifest(name)) as resp:
                    if resp.status == 201:
                        answered.add(name)
                        if len(answered) >= KILL_AFTER:
                            enough.set()
            except aiohttp.ClientError:
                return  # the daemon is gone

    workers = [asyncio.ensure_future(worker()) for _ in range(IN_FLIGHT)]
    async with asyncio.timeout(60):
        await enough.wait()
    await daemon.kill9()
    await asyncio.gather(*workers)
    return answered


@pytest.mark.slow
async def test_every_create_answered_201_survives_kill9(tmp_path: Path, store_url: str) -> None:
    (tmp_path / "secrets").mkdir()
    log = tmp_path / "daemon.log"
    async with aiohttp.ClientSession() as session:
        first = await start_daemon(store_url, tmp_path / "secrets", log)
        try:
            answered = await _burst(session, first)
        finally:
            if first.process.returncode is None:
                await first.kill9()
        assert KILL_AFTER <= len(answered) < RUNS  # killed while creates were arriving
        second = await start_daemon(store_url, tmp_path / "secrets", log)
        try:
            url = f"{second.base}/api/v1/namespaces/lab/analysisruns"
            async with session.get(url) as resp:
                stored = {item["metadata"]["name"] for item in (await resp.json())["items"]}
            assert answered <= stored, sorted(answered - stored)[:10]
            for name in sorted(answered)[:20]:
                async with session.get(f"{url}/{name}") as resp:
                    assert resp.status == 200
                    assert (await resp.json())["metadata"]["name"] == name
        finally:
            assert await second.terminate() == 0
