"""A run created through the API is stored with its first step taken (Running, startedAt)
when that step only starts it: the daemon's observer is not told of it (no second write
of the new run); the phase change is still logged and published, and everything after it
goes as before."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from analysisd.engine.observer import RunChange
from analysisd.recorder import StoreObserver
from analysisd.spec import AnalysisRun
from tests.e2e.rig import (
    ScriptedSource,
    run_manifest,
    running_daemon,
    scripted_metric,
    settings_for,
)

RUNS = "/api/v1/namespaces/ns/analysisruns"


def delayed_metric() -> dict[str, Any]:
    return {**scripted_metric(), "initialDelay": "1h"}


@pytest.fixture
def told(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str | None, str | None]]:
    """Every change the daemon's observer is told: (run, previous phase, phase)."""
    changes: list[tuple[str, str | None, str | None]] = []
    original = StoreObserver.on_change

    async def on_change(self: StoreObserver, run: AnalysisRun, change: RunChange) -> None:
        changes.append((run.metadata.name, change.previous_phase, change.phase))
        await original(self, run, change)

    monkeypatch.setattr(StoreObserver, "on_change", on_change)
    return changes


async def _get(s: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with s.get(url) as resp:
        assert resp.status == 200
        body: dict[str, Any] = await resp.json()
        return body


async def test_a_delayed_run_is_stored_running_and_written_once(
    tmp_path: Path, told: list[tuple[str, str | None, str | None]]
) -> None:
    delayed = delayed_metric()
    with capture_logs() as logs:
        async with (
            running_daemon(settings_for(tmp_path), ScriptedSource()) as (daemon, base),
            aiohttp.ClientSession() as s,
        ):
            async with s.post(f"{base}{RUNS}", json=run_manifest("r", [delayed])) as resp:
                assert resp.status == 201
                created = await resp.json()
            assert "status" not in created  # the answer is the manifest, as before
            for _ in range(20):
                await asyncio.sleep(0)
            stored = await daemon.store.get_run("ns", "r")
            assert stored is not None and stored.phase == "Running" and not stored.completed
            assert stored.status is not None and stored.status["startedAt"]
            assert stored.epoch == 0  # inserted so: never written again
            run = await _get(s, f"{base}{RUNS}/r")
            assert run["status"]["phase"] == "Running"
            assert run["status"]["runSummary"]["count"] == 1
            assert told == []  # its first step was stored with it
            async with s.post(f"{base}{RUNS}/r/terminate") as resp:
                assert resp.status == 202
            assert daemon.scheduler is not None
            done = await asyncio.wait_for(daemon.scheduler.wait("ns", "r"), 20)
            assert done.status is not None and done.status.phase == "Successful"
    assert told == [("r", "Running", "Successful")]
    phases = [e for e in logs if e["event"] == "phase" and e.get("run") == "r"]
    assert [(e["previous"], e["phase"]) for e in phases] == [
        ("Pending", "Running"),
        ("Running", "Successful"),
    ]


async def test_a_run_due_at_once_is_measured_and_a_stopped_one_completes_as_before(
    tmp_path: Path, told: list[tuple[str, str | None, str | None]]
) -> None:
    async with (
        running_daemon(settings_for(tmp_path), ScriptedSource()) as (_, base),
        aiohttp.ClientSession() as s,
    ):
        now = run_manifest("now", [scripted_metric(count=2, interval="10ms")])
        stopped = run_manifest("stopped", [delayed_metric()])
        stopped["spec"]["terminate"] = True
        for manifest in (now, stopped):
            async with s.post(f"{base}{RUNS}", json=manifest) as resp:
                assert resp.status == 201
        async with asyncio.timeout(20):
            while True:
                runs = [await _get(s, f"{base}{RUNS}/{name}") for name in ("now", "stopped")]
                if all(r.get("status", {}).get("phase") == "Successful" for r in runs):
                    break
                await asyncio.sleep(0.02)
    assert runs[0]["status"]["metricResults"][0]["count"] == 2
    # The run due at once started Running (no Pending -> Running change to store); the
    # run told to stop from the start took its first step as before, completing in it.
    assert [c for c in told if c[0] == "now"][-1] == ("now", "Running", "Successful")
    assert all(previous == "Running" for name, previous, _ in told if name == "now")
    assert [c for c in told if c[0] == "stopped"] == [("stopped", "Pending", "Successful")]
