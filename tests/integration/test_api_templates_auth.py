"""Templates over the API, runs built from template references, and namespace-scoped tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from tests.e2e.rig import SCRIPTED_URL, ScriptedSource, running_daemon, settings_for


def _template(name: str, kind: str = "AnalysisTemplate", **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": {
            "args": [{"name": "limit"}],
            "metrics": [
                {
                    "name": f"{name}-metric",
                    "successCondition": "result < {{args.limit}}",
                    "provider": {"web": {"url": SCRIPTED_URL, "value": 1}},
                }
            ],
            **extra,
        },
    }


async def test_template_crud_round_trip(tmp_path: Path) -> None:
    async with (
        running_daemon(settings_for(tmp_path), ScriptedSource()) as (_, base),
        aiohttp.ClientSession() as s,
    ):
        url = f"{base}/api/v1/namespaces/team/analysistemplates"
        async with s.post(url, json=_template("t1")) as resp:
            assert resp.status == 201
            assert (await resp.json())["metadata"]["namespace"] == "team"
        async with s.post(url, json=_template("t1")) as resp:
            assert resp.status == 409
        replaced = _template("t1")
        replaced["spec"]["metrics"][0]["successCondition"] = "result < 5"
        async with s.put(f"{url}/t1", json=replaced) as resp:
            assert resp.status == 200
        async with s.get(f"{url}/t1") as resp:
            got = await resp.json()
        assert got["spec"]["metrics"][0]["successCondition"] == "result < 5"
        async with s.put(f"{url}/other", json=replaced) as resp:
            assert resp.status == 400
            assert (await resp.json())["details"]["field"] == "metadata.name"
        async with s.get(url) as resp:
            listing = await resp.json()
        assert listing["kind"] == "AnalysisTemplateList"
        assert [i["metadata"]["name"] for i in listing["items"]] == ["t1"]
        async with s.delete(f"{url}/t1") as resp:
            assert resp.status == 200
        async with s.get(f"{url}/t1") as resp:
            assert resp.status == 404


async def test_wrong_kind_and_invalid_metric_are_400_with_field(tmp_path: Path) -> None:
    async with (
        running_daemon(settings_for(tmp_path), ScriptedSource()) as (_, base),
        aiohttp.ClientSession() as s,
    ):
        url = f"{base}/api/v1/namespaces/team/analysistemplates"
        async with s.post(url, json=_template("x", kind="ClusterAnalysisTemplate")) as resp:
            assert resp.status == 400
            assert (await resp.json())["details"]["field"] == "kind"
        bad = _template("x")
        bad["spec"]["metrics"][0]["count"] = 3
        async with s.post(url, json=bad) as resp:
            assert resp.status == 400
            body = await resp.json()
        assert body["details"]["field"].startswith("spec.metrics[0]")
        assert "interval" in body["message"]


async def test_run_from_template_references_merges_args_like_a_rollout_step(
    tmp_path: Path,
) -> None:
    async with (
        running_daemon(settings_for(tmp_path), ScriptedSource()) as (_, base),
        aiohttp.ClientSession() as s,
    ):
        ns = f"{base}/api/v1/namespaces/team"
        async with s.post(f"{ns}/analysistemplates", json=_template("local")) as resp:
            assert resp.status == 201
        cluster = _template("shared", kind="ClusterAnalysisTemplate")
        async with s.post(f"{base}/api/v1/clusteranalysistemplates", json=cluster) as resp:
            assert resp.status == 201
        request = {
            "metadata": {"name": "from-refs"},
            "templates": [
                {"templateName": "local"},
                {"templateName": "shared", "clusterScope": True},
            ],
            "args": [{"name": "limit", "value": "10"}],
        }
        async with s.post(f"{ns}/analysisruns", json=request) as resp:
            assert resp.status == 201, await resp.text()
            run = await resp.json()
        assert [m["name"] for m in run["spec"]["metrics"]] == ["local-metric", "shared-metric"]
        assert run["spec"]["args"] == [{"name": "limit", "value": "10"}]
        missing = {**request, "metadata": {"name": "nope"}, "templates": [{"templateName": "gone"}]}
        async with s.post(f"{ns}/analysisruns", json=missing) as resp:
            assert resp.status == 404
            assert "gone" in (await resp.json())["message"]


async def test_tokens_are_scoped_to_namespaces(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, tokens={"team-a-token": ("team-a",), "admin": ("*",)})
    async with (
        running_daemon(settings, ScriptedSource()) as (_, base),
        aiohttp.ClientSession() as s,
    ):
        a_url = f"{base}/api/v1/namespaces/team-a/analysistemplates"
        b_url = f"{base}/api/v1/namespaces/team-b/analysistemplates"
        cluster = f"{base}/api/v1/clusteranalysistemplates"
        team = {"Authorization": "Bearer team-a-token"}
        admin = {"Authorization": "Bearer admin"}
        async with s.get(a_url) as resp:
            assert resp.status == 401
        async with s.get(a_url, headers={"Authorization": "Bearer guess"}) as resp:
            assert resp.status == 401
        async with s.get(a_url, headers=team) as resp:
            assert resp.status == 200
        async with s.get(b_url, headers=team) as resp:
            assert resp.status == 403
        async with s.get(cluster, headers=team) as resp:
            assert resp.status == 200
        shared = _template("shared", kind="ClusterAnalysisTemplate")
        async with s.post(cluster, json=shared, headers=team) as resp:
            assert resp.status == 403
        async with s.post(cluster, json=shared, headers=admin) as resp:
            assert resp.status == 201
        async with s.get(f"{base}/healthz") as resp:
            assert resp.status == 200


async def test_metrics_endpoint_exports_daemon_metrics(tmp_path: Path) -> None:
    async with (
        running_daemon(settings_for(tmp_path), ScriptedSource()) as (_, base),
        aiohttp.ClientSession() as s,
        s.get(f"{base}/metrics") as resp,
    ):
        text = await resp.text()
    for name in ("analysisd_runs", "analysisd_webhook_backlog", "analysisd_active_runs"):
        assert name in text
