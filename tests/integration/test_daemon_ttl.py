"""spec.ttlStrategy: completed runs are deleted once their TTL has passed, as Argo does."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from tests.e2e.rig import (
    ScriptedSource,
    run_manifest,
    running_daemon,
    scripted_metric,
    settings_for,
)


def with_ttl(manifest: dict[str, Any], ttl: dict[str, int] | None) -> dict[str, Any]:
    if ttl is not None:
        manifest["spec"]["ttlStrategy"] = ttl
    return manifest


async def create(http: aiohttp.ClientSession, base: str, manifest: dict[str, Any]) -> None:
    async with http.post(f"{base}/api/v1/namespaces/team-a/analysisruns", json=manifest) as r:
        assert r.status == 201, await r.text()


async def phase_of(http: aiohttp.ClientSession, base: str, name: str) -> str | None:
    async with http.get(f"{base}/api/v1/namespaces/team-a/analysisruns/{name}") as r:
        if r.status == 404:
            return None
        body = await r.json()
        status = body.get("status") or {}
        return str(status.get("phase", "Pending"))


async def wait_completed(http: aiohttp.ClientSession, base: str, names: list[str]) -> None:
    for _ in range(400):
        phases = [await phase_of(http, base, n) for n in names]
        if all(p in {"Successful", "Failed", "Error", "Inconclusive"} for p in phases):
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"runs did not complete: {phases}")


async def test_completed_runs_are_deleted_after_their_ttl_only(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, ttl_check_interval=0)  # driven explicitly below
    runs = {
        "ok-short-ttl": with_ttl(
            run_manifest("ok-short-ttl", [scripted_metric(value=1)]), {"secondsAfterSuccess": 60}
        ),
        "failed-long-ttl": with_ttl(
            run_manifest("failed-long-ttl", [scripted_metric(value=99)]),
            {"secondsAfterSuccess": 60, "secondsAfterFailure": 3600},
        ),
        "no-ttl": run_manifest("no-ttl", [scripted_metric(value=1)]),
    }
    async with (
        running_daemon(settings, ScriptedSource()) as (daemon, base),
        aiohttp.ClientSession() as http,
    ):
        for manifest in runs.values():
            await create(http, base, manifest)
        await wait_completed(http, base, list(runs))
        assert await phase_of(http, base, "failed-long-ttl") == "Failed"
        now = datetime.now(UTC)

        assert await daemon.collect_expired(now) == 0  # nothing has expired yet
        assert await daemon.collect_expired(now + timedelta(seconds=120)) == 1
        assert await phase_of(http, base, "ok-short-ttl") is None
        assert await phase_of(http, base, "failed-long-ttl") == "Failed"

        assert await daemon.collect_expired(now + timedelta(hours=2)) == 1
        assert await phase_of(http, base, "failed-long-ttl") is None
        assert await phase_of(http, base, "no-ttl") == "Successful"  # never expires


async def test_the_daemon_deletes_expired_runs_by_itself(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, ttl_check_interval=0.05)
    manifest = with_ttl(
        run_manifest("short-lived", [scripted_metric(value=1)]), {"secondsAfterCompletion": 0}
    )
    async with (
        running_daemon(settings, ScriptedSource()) as (_daemon, base),
        aiohttp.ClientSession() as http,
    ):
        await create(http, base, manifest)
        for _ in range(400):
            if await phase_of(http, base, "short-lived") is None:
                break
            await asyncio.sleep(0.025)
        assert await phase_of(http, base, "short-lived") is None
