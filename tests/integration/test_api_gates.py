"""The gate front doors over real HTTP: Argo web-provider verdicts and Flagger webhooks."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import yaml

from tests.e2e.rig import SCRIPTED_URL, ScriptedSource, running_daemon, settings_for

REPO = Path(__file__).resolve().parents[2]
NS = "team-a"
TEMPLATES = f"/api/v1/namespaces/{NS}/analysistemplates"


def template(name: str, values: list[float], *, interval: str = "100ms") -> dict[str, Any]:
    """A template whose one metric reads `values` in turn; it passes below the threshold
    argument (default 10), so metadata/args reach its condition."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": name},
        "spec": {
            "args": [{"name": "threshold", "value": "10"}, {"name": "canary-name"}],
            "metrics": [
                {
                    "name": "error-rate",
                    "count": len(values),
                    "interval": interval,
                    "successCondition": "result < {{args.threshold}}",
                    "provider": {
                        "web": {
                            "url": SCRIPTED_URL + name + "/{{args.canary-name}}",
                            "values": values,
                        }
                    },
                }
            ],
        },
    }


async def store_templates(session: aiohttp.ClientSession, base: str) -> None:
    for body in (
        template("good", [1, 2, 3]),
        template("bad", [1, 50, 50]),
        template("slow", [1, 1, 1, 1, 1, 1], interval="300ms"),
    ):
        async with session.post(base + TEMPLATES, json=body) as resp:
            assert resp.status == 201, await resp.text()


async def poll_verdict(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with asyncio.timeout(20):
        while True:
            async with session.get(url) as resp:
                assert resp.status == 200, await resp.text()
                body: dict[str, Any] = await resp.json()
            if body["complete"]:
                return body
            await asyncio.sleep(0.05)


async def test_a_verdict_key_starts_one_run_and_answers_its_phase(tmp_path: Path) -> None:
    async with (
        running_daemon(settings_for(tmp_path), ScriptedSource()) as (_, base),
        aiohttp.ClientSession() as s,
    ):
        await store_templates(s, base)
        url = f"{base}/api/v1/namespaces/{NS}/verdicts/checkout-rev-7"
        ask = {"templateName": "good", "args": {"canary-name": "checkout", "threshold": 10}}
        async with s.post(url, json=ask) as resp:
            assert resp.status == 200, await resp.text()
            first = await resp.json()
        assert set(first) >= {"phase", "message", "run", "complete"}
        assert first["complete"] is False
        # Later calls, whatever their body, answer the same run.
        other = {"templateName": "bad", "args": {"canary-name": "x"}}
        answers = await asyncio.gather(*(s.post(url, json=other) for _ in range(8)))
        for resp in answers:
            assert resp.status == 200
            assert (await resp.json())["run"] == first["run"]
        done = await poll_verdict(s, url)
        assert done["phase"] == "Successful" and done["run"] == first["run"]
        assert done["metrics"]["error-rate"]["phase"] == "Successful"
        async with s.get(f"{base}/api/v1/namespaces/{NS}/analysisruns") as resp:
            runs = (await resp.json())["items"]
        assert [r["metadata"]["name"] for r in runs] == [first["run"]]
        assert runs[0]["metadata"]["labels"]["analysisd.io/front-door"] == "verdict"
        assert runs[0]["metadata"]["annotations"]["analysisd.io/verdict-key"] == "checkout-rev-7"

        bad_url = f"{base}/api/v1/namespaces/{NS}/verdicts/checkout-rev-8"
        async with s.post(bad_url, json=other) as resp:
            assert resp.status == 200
        failed = await poll_verdict(s, bad_url)
        assert failed["phase"] == "Failed"
        assert "error-rate" in failed["message"]


async def test_concurrent_first_calls_start_one_run(tmp_path: Path) -> None:
    async with (
        running_daemon(settings_for(tmp_path), ScriptedSource()) as (_, base),
        aiohttp.ClientSession() as s,
    ):
        await store_templates(s, base)
        url = f"{base}/api/v1/namespaces/{NS}/verdicts/race"
        ask = {"templateName": "slow", "args": {"canary-name": "c"}}
        answers = await asyncio.gather(*(s.post(url, json=ask) for _ in range(10)))
        names = set()
        for resp in answers:
            assert resp.status == 200, await resp.text()
            names.add((await resp.json())["run"])
        assert len(names) == 1
        async with s.get(f"{base}/api/v1/namespaces/{NS}/analysisruns") as resp:
            assert len((await resp.json())["items"]) == 1


async def test_verdict_requests_the_door_refuses(tmp_path: Path) -> None:
    async with (
        running_daemon(settings_for(tmp_path), ScriptedSource()) as (_, base),
        aiohttp.ClientSession() as s,
    ):
        await store_templates(s, base)
        verdicts = f"{base}/api/v1/namespaces/{NS}/verdicts"
        cases = [
            ("POST", f"{verdicts}/k1", {}, 400, "templateName"),
            ("POST", f"{verdicts}/k1", {"templateName": "Not A Name"}, 400, "templateName"),
            ("POST", f"{verdicts}/k1", {"templateName": "good", "args": [1]}, 400, "args"),
            ("POST", f"{verdicts}/k1", {"templateName": "missing"}, 404, "templates"),
            ("GET", f"{verdicts}/never-asked", None, 404, None),
            ("POST", f"{verdicts}/{'k' * 300}", {"templateName": "good"}, 400, "key"),
            ("POST", f"{base}/api/v1/namespaces/Bad_NS/verdicts/k", {}, 400, "namespace"),
        ]
        for method, url, body, status, field in cases:
            async with s.request(method, url, json=body) as resp:
                answer = await resp.json()
                assert resp.status == status, (url, answer)
            if field is not None:
                assert answer["details"]["field"] == field, answer
        # A refused first call starts nothing; the key is still free.
        async with s.get(f"{verdicts}/k1") as resp:
            assert resp.status == 404


def flagger_body(hook: str | None, checksum: str = "85d557f47b") -> dict[str, Any]:
    """Flagger's webhook payload, as its CanaryWebhookPayload marshals it."""
    body: dict[str, Any] = {
        "name": "podinfo",
        "namespace": "test",
        "phase": "Progressing",
        "checksum": checksum,
        "metadata": {"canary-name": "podinfo", "threshold": "10"},
    }
    if hook is not None:
        body["type"] = hook
    return body


async def flagger(
    s: aiohttp.ClientSession, url: str, hook: str | None, checksum: str = "85d557f47b"
) -> tuple[int, str]:
    async with s.post(url, json=flagger_body(hook, checksum)) as resp:
        return resp.status, await resp.text()


async def wait_for_status(
    s: aiohttp.ClientSession, url: str, hook: str, status: int, checksum: str = "85d557f47b"
) -> str:
    async with asyncio.timeout(20):
        while True:
            code, text = await flagger(s, url, hook, checksum)
            if code == status:
                return text
            await asyncio.sleep(0.05)


async def test_flagger_hooks_through_a_healthy_run(tmp_path: Path) -> None:
    async with (
        running_daemon(settings_for(tmp_path), ScriptedSource()) as (_, base),
        aiohttp.ClientSession() as s,
    ):
        await store_templates(s, base)
        url = f"{base}/flagger/{NS}/slow"
        code, text = await flagger(s, url, "pre-rollout")
        assert code == 200 and ("Running" in text or "Pending" in text)
        assert (await flagger(s, url, None))[0] == 200  # no type: a rollout hook
        code, text = await flagger(s, url, "confirm-promotion")
        assert code == 409 and "not yet decided" in text
        code, text = await flagger(s, url, "rollback")
        assert code == 409 and "no rollback" in text
        await wait_for_status(s, url, "confirm-promotion", 200)
        assert (await flagger(s, url, "rollout"))[0] == 200
        assert (await flagger(s, url, "rollback"))[0] == 409
        assert (await flagger(s, url, "post-rollout"))[0] == 200
        # One run for the checksum; a new checksum (a new revision) starts another.
        code, _ = await flagger(s, url, "rollout", checksum="f00dfeed")
        assert code == 200
        async with s.get(f"{base}/api/v1/namespaces/{NS}/analysisruns") as resp:
            runs = (await resp.json())["items"]
        assert len(runs) == 2
        assert {r["metadata"]["labels"]["analysisd.io/front-door"] for r in runs} == {"flagger"}


async def test_flagger_hooks_through_a_failing_run(tmp_path: Path) -> None:
    async with (
        running_daemon(settings_for(tmp_path), ScriptedSource()) as (_, base),
        aiohttp.ClientSession() as s,
    ):
        await store_templates(s, base)
        url = f"{base}/flagger/{NS}/bad"
        assert (await flagger(s, url, "rollout"))[0] == 200
        text = await wait_for_status(s, url, "rollout", 403)
        assert "Failed" in text and "error-rate" in text
        code, text = await flagger(s, url, "rollback")
        assert code == 200 and text.startswith("analysisd: roll back")
        code, _ = await flagger(s, url, "confirm-promotion")
        assert code == 403
        # Events and post-rollout start nothing.
        event = {**flagger_body("event", "cafe"), "metadata": {"eventMessage": "x"}}
        async with s.post(url, json=event) as resp:
            assert resp.status == 200
        async with s.get(f"{base}/api/v1/namespaces/{NS}/analysisruns") as resp:
            assert len((await resp.json())["items"]) == 1


async def test_flagger_type_from_the_query_and_bodies_refused(tmp_path: Path) -> None:
    async with (
        running_daemon(settings_for(tmp_path), ScriptedSource()) as (_, base),
        aiohttp.ClientSession() as s,
    ):
        await store_templates(s, base)
        async with s.post(
            f"{base}/flagger/{NS}/slow?type=confirm-rollout", json=flagger_body(None)
        ) as resp:
            assert resp.status == 409  # a confirm gate: not yet decided
        for body, field in (
            ({"namespace": "test", "checksum": "1"}, "name"),
            ({**flagger_body("sideways")}, "type"),
            ({**flagger_body(None), "metadata": ["x"]}, "metadata"),
        ):
            async with s.post(f"{base}/flagger/{NS}/slow", json=body) as resp:
                assert resp.status == 400
                assert (await resp.json())["details"]["field"] == field
        async with s.post(f"{base}/flagger/{NS}/missing", json=flagger_body(None)) as resp:
            assert resp.status == 404  # a 4xx: Flagger's client does not retry it


async def test_flagger_takes_its_token_from_the_url(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, tokens={"t-a": (NS,), "t-b": ("team-b",)})
    async with (
        running_daemon(settings, ScriptedSource()) as (_, base),
        aiohttp.ClientSession() as s,
    ):
        headers = {"Authorization": "Bearer t-a"}
        for body in (template("slow", [1, 1, 1], interval="300ms"),):
            async with s.post(base + TEMPLATES, json=body, headers=headers) as resp:
                assert resp.status == 201
        url = f"{base}/flagger/{NS}/slow"
        assert (await flagger(s, url, "rollout"))[0] == 401
        assert (await flagger(s, url + "?token=t-b", "rollout"))[0] == 403
        assert (await flagger(s, url + "?token=t-a", "rollout"))[0] == 200
        # The query token is for Flagger's door only.
        async with s.get(f"{base}/api/v1/namespaces/{NS}/analysisruns?token=t-a") as resp:
            assert resp.status == 401


async def test_the_flagger_example_webhooks_reach_their_gates(tmp_path: Path) -> None:
    canary = yaml.safe_load((REPO / "examples" / "flagger" / "canary.yaml").read_text())
    hooks = canary["spec"]["analysis"]["webhooks"]
    checks = template("podinfo-checks", [0.001, 0.001], interval="200ms")
    checks["spec"]["args"] = [{"name": "service"}, {"name": "threshold"}]
    metric = checks["spec"]["metrics"][0]
    metric["provider"]["web"]["url"] = SCRIPTED_URL + "{{args.service}}"
    async with (
        running_daemon(settings_for(tmp_path), ScriptedSource()) as (_, base),
        aiohttp.ClientSession() as s,
    ):
        async with s.post(f"{base}/api/v1/namespaces/shop/analysistemplates", json=checks) as r:
            assert r.status == 201, await r.text()
        by_type = {}
        for hook in hooks:
            url = urlsplit(hook["url"])
            assert url.path == "/flagger/shop/podinfo-checks"
            body = {
                "name": canary["metadata"]["name"],
                "namespace": canary["metadata"]["namespace"],
                "phase": "Progressing",
                "checksum": "5f6b7c",
                "metadata": hook["metadata"],
            }
            by_type[hook["type"]] = (f"{base}{url.path}?{url.query}", body)
        url, body = by_type["rollout"]
        async with s.post(url, json=body) as resp:
            assert resp.status == 200
        url, body = by_type["confirm-promotion"]
        async with asyncio.timeout(20):
            while True:
                async with s.post(url, json=body) as resp:
                    if resp.status == 200:
                        break
                    assert resp.status == 409, await resp.text()
                await asyncio.sleep(0.05)
        url, body = by_type["rollback"]
        async with s.post(url, json=body) as resp:
            assert resp.status == 409  # healthy: no rollback
        async with s.get(f"{base}/api/v1/namespaces/shop/analysisruns") as resp:
            [run] = (await resp.json())["items"]
        args = {a["name"]: a.get("value") for a in run["spec"]["args"]}
        assert args == {"service": "podinfo-canary.test", "threshold": "0.01"}
