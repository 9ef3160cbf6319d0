"""The REST API for runs, over real HTTP against an in-process daemon (scripted provider)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.rig import (
    SCRIPTED_URL,
    ScriptedSource,
    run_manifest,
    running_daemon,
    scripted_metric,
    settings_for,
)


async def _wait_completed(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with asyncio.timeout(20):
        while True:
            async with session.get(url) as resp:
                body: dict[str, Any] = await resp.json()
            if body.get("status", {}).get("phase") in (
                "Successful",
                "Failed",
                "Error",
                "Inconclusive",
            ):
                return body
            await asyncio.sleep(0.02)


async def test_created_run_is_stored_and_reaches_successful(tmp_path: Path) -> None:
    async with (
        running_daemon(settings_for(tmp_path), ScriptedSource()) as (_, base),
        aiohttp.ClientSession() as s,
    ):
        manifest = run_manifest("r1", [scripted_metric(count=3)], labels={"app": "demo"})
        async with s.post(f"{base}/api/v1/namespaces/team-a/analysisruns", json=manifest) as resp:
            assert resp.status == 201
            created = await resp.json()
        assert created["metadata"]["namespace"] == "team-a"
        assert created["metadata"]["uid"]
        assert created["kind"] == "AnalysisRun"
        run = await _wait_completed(s, f"{base}/api/v1/namespaces/team-a/analysisruns/r1")
        assert run["status"]["phase"] == "Successful"
        assert run["status"]["metricResults"][0]["count"] == 3
        async with s.get(f"{base}/api/v1/namespaces/team-a/analysisruns/r1/measurements") as resp:
            history = await resp.json()
        assert len(history["items"]) == 3


async def test_yaml_body_and_generate_name_are_accepted(tmp_path: Path) -> None:
    text = """
apiVersion: argoproj.io/v1alpha1
kind: AnalysisRun
metadata:
  generateName: canary-
spec:
  metrics:
  - name: m
    successCondition: result < 10
    provider:
      web: {url: 'http://scripted.invalid/', value: 1}
"""
    async with (
        running_daemon(settings_for(tmp_path), ScriptedSource()) as (_, base),
        aiohttp.ClientSession() as s,
    ):
        async with s.post(
            f"{base}/api/v1/namespaces/ns/analysisruns",
            data=text,
            headers={"Content-Type": "application/yaml"},
        ) as resp:
            assert resp.status == 201
            body = await resp.json()
        assert body["metadata"]["name"].startswith("canary-")
        assert len(body["metadata"]["name"]) == len("canary-") + 5


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("{not json", "body"),
        ("kind: [unclosed", "body"),
        (json.dumps(run_manifest("Bad_Name", [scripted_metric()])), "metadata.name"),
        (
            json.dumps(
                {
                    "apiVersion": "argoproj.io/v1alpha1",
                    "kind": "AnalysisRun",
                    "metadata": {"name": "x"},
                    "spec": {"metrics": [{"name": "m", "count": "lots", "provider": {"web": {}}}]},
                }
            ),
            None,
        ),
        (
            json.dumps(run_manifest("x", [{"name": "m", "count": 3, "provider": {"web": {}}}])),
            # Argo's message; the field its check names, not only spec.metrics.
            "spec.metrics[0].interval",
        ),
        ("", "body"),
    ],
    ids=[
        "malformed-json",
        "malformed-yaml",
        "bad-name",
        "bad-count-type",
        "count-without-interval",
        "empty",
    ],
)
async def test_bad_run_bodies_get_json_400_naming_the_field(
    tmp_path: Path, body: str, field: str | None
) -> None:
    async with (
        running_daemon(settings_for(tmp_path), ScriptedSource()) as (_, base),
        aiohttp.ClientSession() as s,
    ):
        async with s.post(f"{base}/api/v1/namespaces/ns/analysisruns", data=body) as resp:
            assert resp.status == 400
            status = await resp.json()
        assert status["kind"] == "Status"
        assert "Traceback" not in status["message"]
        if field is not None:
            assert status["details"]["field"] == field
        else:
            assert "count" in status["message"]


async def test_unresolved_argument_is_rejected_with_argo_message(tmp_path: Path) -> None:
    manifest = run_manifest("r", [scripted_metric(value="{{args.missing}}")])
    async with (
        running_daemon(settings_for(tmp_path), ScriptedSource()) as (_, base),
        aiohttp.ClientSession() as s,
    ):
        async with s.post(f"{base}/api/v1/namespaces/ns/analysisruns", json=manifest) as resp:
            assert resp.status == 400
            status = await resp.json()
        # Argo's message, after the field it is about.
        assert status["message"].startswith("spec.args: Unable to resolve metric arguments")
        assert status["details"]["field"] == "spec.args"


async def test_duplicate_run_name_is_409(tmp_path: Path) -> None:
    manifest = run_manifest("dup", [scripted_metric()])
    async with (
        running_daemon(settings_for(tmp_path), ScriptedSource()) as (_, base),
        aiohttp.ClientSession() as s,
    ):
        url = f"{base}/api/v1/namespaces/ns/analysisruns"
        async with s.post(url, json=manifest) as resp:
            assert resp.status == 201
        async with s.post(url, json=manifest) as resp:
            assert resp.status == 409
            assert (await resp.json())["details"]["field"] == "metadata.name"


async def test_runs_per_namespace_limit_is_429_and_other_namespaces_unaffected(
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path, max_active_runs_per_namespace=2)
    endless = scripted_metric(count=0, interval="1h")
    endless.pop("count")
    endless["interval"] = "1h"
    async with (
        running_daemon(settings, ScriptedSource()) as (_, base),
        aiohttp.ClientSession() as s,
    ):
        for i in range(2):
            async with s.post(
                f"{base}/api/v1/namespaces/a/analysisruns", json=run_manifest(f"r{i}", [endless])
            ) as resp:
                assert resp.status == 201
        async with s.post(
            f"{base}/api/v1/namespaces/a/analysisruns", json=run_manifest("r9", [endless])
        ) as resp:
            assert resp.status == 429
            assert "limit 2" in (await resp.json())["message"]
        async with s.post(
            f"{base}/api/v1/namespaces/b/analysisruns", json=run_manifest("r9", [endless])
        ) as resp:
            assert resp.status == 201


async def test_oversized_body_is_413_json(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, max_body_bytes=1000)
    async with (
        running_daemon(settings, ScriptedSource()) as (_, base),
        aiohttp.ClientSession() as s,
        s.post(f"{base}/api/v1/namespaces/ns/analysisruns", data="x" * 5000) as resp,
    ):
        assert resp.status == 413
        assert (await resp.json())["kind"] == "Status"


async def test_list_filters_by_label_selector_and_phase(tmp_path: Path) -> None:
    async with (
        running_daemon(settings_for(tmp_path), ScriptedSource()) as (_, base),
        aiohttp.ClientSession() as s,
    ):
        url = f"{base}/api/v1/namespaces/ns/analysisruns"
        good = run_manifest("good", [scripted_metric()], labels={"app": "a", "tier": "web"})
        bad = run_manifest("bad", [scripted_metric(value=50)], labels={"app": "b"})
        for manifest in (good, bad):
            async with s.post(url, json=manifest) as resp:
                assert resp.status == 201
        await _wait_completed(s, f"{url}/good")
        await _wait_completed(s, f"{url}/bad")
        async with s.get(url, params={"labelSelector": "app=a"}) as resp:
            assert [i["metadata"]["name"] for i in (await resp.json())["items"]] == ["good"]
        async with s.get(url, params={"labelSelector": "app in (a,b),tier!=web"}) as resp:
            assert [i["metadata"]["name"] for i in (await resp.json())["items"]] == ["bad"]
        async with s.get(url, params={"phase": "Failed"}) as resp:
            assert [i["metadata"]["name"] for i in (await resp.json())["items"]] == ["bad"]
        async with s.get(url, params={"labelSelector": "a in (b"}) as resp:
            assert resp.status == 400


async def test_terminate_stops_an_endless_run_and_delete_removes_it(tmp_path: Path) -> None:
    endless = {
        "name": "m",
        "interval": "50ms",
        "successCondition": "result < 10",
        "provider": {"web": {"url": SCRIPTED_URL, "value": 1}},
    }
    async with (
        running_daemon(settings_for(tmp_path), ScriptedSource()) as (_, base),
        aiohttp.ClientSession() as s,
    ):
        url = f"{base}/api/v1/namespaces/ns/analysisruns/forever"
        async with s.post(
            f"{base}/api/v1/namespaces/ns/analysisruns", json=run_manifest("forever", [endless])
        ) as resp:
            assert resp.status == 201
        async with asyncio.timeout(10):
            while True:
                async with s.get(url) as resp:
                    run = await resp.json()
                if (
                    run.get("status", {}).get("metricResults")
                    and run["status"]["metricResults"][0]["count"] >= 2
                ):
                    break
                await asyncio.sleep(0.02)
        async with s.post(url + "/terminate") as resp:
            assert resp.status == 202
        final = await _wait_completed(s, url)
        assert final["status"]["phase"] == "Successful"
        assert final["spec"]["terminate"] is True
        async with s.delete(url) as resp:
            assert resp.status == 200
        async with s.get(url) as resp:
            assert resp.status == 404


async def test_events_stream_status_measurements_and_completion(tmp_path: Path) -> None:
    async with (
        running_daemon(settings_for(tmp_path), ScriptedSource()) as (_, base),
        aiohttp.ClientSession() as s,
    ):
        url = f"{base}/api/v1/namespaces/ns/analysisruns"
        # No count: the run goes on until terminated, so the stream surely sees it live.
        endless = {
            "name": "m",
            "interval": "50ms",
            "successCondition": "result < 10",
            "provider": {"web": {"url": SCRIPTED_URL, "value": 1}},
        }
        async with s.post(url, json=run_manifest("watched", [endless])) as resp:
            assert resp.status == 201
        events: list[tuple[str, Any]] = []
        event = ""
        terminated = False
        async with asyncio.timeout(20), s.get(f"{url}/watched/events") as resp:
            assert resp.headers["Content-Type"].startswith("text/event-stream")
            async for line in resp.content:
                if line.startswith(b"event: "):
                    event = line[7:].decode().strip()
                elif line.startswith(b"data: "):
                    events.append((event, json.loads(line[6:])))
                    if event == "measurement" and not terminated:
                        terminated = True
                        async with s.post(f"{url}/watched/terminate") as stop:
                            assert stop.status == 202
        names = [name for name, _ in events]
        assert names[0] == "status"
        assert names[-1] == "completed"
        assert "measurement" in names
        measurement = next(data for name, data in events if name == "measurement")
        assert measurement["metric"] == "m" and measurement["phase"] == "Successful"
        assert events[-1][1]["phase"] == "Successful"


async def test_unknown_route_and_unknown_run_are_json_404(tmp_path: Path) -> None:
    async with (
        running_daemon(settings_for(tmp_path), ScriptedSource()) as (_, base),
        aiohttp.ClientSession() as s,
    ):
        for path in ("/api/v1/nope", "/api/v1/namespaces/ns/analysisruns/missing"):
            async with s.get(base + path) as resp:
                assert resp.status == 404
                assert (await resp.json())["kind"] == "Status"
