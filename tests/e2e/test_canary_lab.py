"""The canary lab end to end: the daemon (real ProviderRegistry) against the real
Prometheus rig, verdicts delivered signed to a real receiver."""

# ruff: noqa: F811  (the fixture is imported, then named as a parameter)
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from analysisd.outbox import CALLBACK_SECRET, CALLBACK_URL, COMPLETED_EVENT
from tests.e2e.process import COMPLETED
from tests.e2e.rig import Receiver, receiver, running_daemon, settings_for, write_secret
from tests.rigs.prometheus import (  # noqa: F401
    SUCCESS_RATE_QUERY,
    PrometheusRig,
    prometheus_rig,
)

KEY = "lab-hmac-key"


def _template(prometheus: str) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "success-rate"},
        "spec": {
            "args": [{"name": "version"}, {"name": "count", "value": "3"}],
            "metrics": [
                {
                    "name": "success-rate",
                    "interval": "100ms",
                    "count": "{{args.count}}",
                    "failureLimit": 1,
                    "successCondition": "result[0] >= 0.95",
                    "provider": {
                        "prometheus": {
                            "address": prometheus,
                            "query": SUCCESS_RATE_QUERY.format(version="{{args.version}}"),
                        }
                    },
                }
            ],
        },
    }


def _request(name: str, version: str, hook: Receiver, count: int = 3) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "annotations": {CALLBACK_URL: hook.url, CALLBACK_SECRET: "hooks"},
        },
        "templates": [{"templateName": "success-rate"}],
        "args": [{"name": "version", "value": version}, {"name": "count", "value": str(count)}],
    }


async def _finished(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with asyncio.timeout(30):
        while True:
            async with session.get(url) as resp:
                run: dict[str, Any] = await resp.json()
            if (run.get("status") or {}).get("phase") in COMPLETED:
                return run
            await asyncio.sleep(0.05)


async def test_good_canary_succeeds_bad_fails_fast_and_verdicts_arrive_signed(
    tmp_path: Path, prometheus_rig: PrometheusRig
) -> None:
    write_secret(tmp_path, "hooks", "hmac-key", KEY, namespace="lab")
    async with (
        receiver() as hook,
        running_daemon(settings_for(tmp_path)) as (_, base),
        aiohttp.ClientSession() as s,
    ):
        ns = f"{base}/api/v1/namespaces/lab"
        async with s.post(f"{ns}/analysistemplates", json=_template(prometheus_rig.url)) as resp:
            assert resp.status == 201, await resp.text()
        for name, version, count in (("good", "canary-fast", 3), ("bad", "canary", 10)):
            async with s.post(f"{ns}/analysisruns", json=_request(name, version, hook, count)) as r:
                assert r.status == 201, await r.text()
        good = await _finished(s, f"{ns}/analysisruns/good")
        bad = await _finished(s, f"{ns}/analysisruns/bad")
        assert good["status"]["phase"] == "Successful", good["status"]
        assert good["status"]["metricResults"][0]["count"] == 3
        assert bad["status"]["phase"] == "Failed", bad["status"]
        # failureLimit 1: the second failed measurement decides; no more are taken.
        assert bad["status"]["metricResults"][0]["count"] == 2
        assert bad["status"]["metricResults"][0]["failed"] == 2
        await hook.wait_for(lambda r: len(r.unique_ids(COMPLETED_EVENT)) == 2)
        verdicts = {d.event["subject"]: d for d in hook.by_type(COMPLETED_EVENT)}
        assert all(d.signed_with(KEY) for d in verdicts.values())
        assert verdicts["lab/good"].event["data"]["phase"] == "Successful"
        assert verdicts["lab/bad"].event["data"]["phase"] == "Failed"


async def test_terminating_an_endless_canary_run_ends_it_and_delivers_the_verdict(
    tmp_path: Path, prometheus_rig: PrometheusRig
) -> None:
    write_secret(tmp_path, "hooks", "hmac-key", KEY, namespace="lab")
    template = _template(prometheus_rig.url)
    del template["spec"]["metrics"][0]["count"]  # interval without count: until terminated
    async with (
        receiver() as hook,
        running_daemon(settings_for(tmp_path)) as (_, base),
        aiohttp.ClientSession() as s,
    ):
        ns = f"{base}/api/v1/namespaces/lab"
        async with s.post(f"{ns}/analysistemplates", json=template) as resp:
            assert resp.status == 201
        async with s.post(f"{ns}/analysisruns", json=_request("endless", "stable", hook)) as r:
            assert r.status == 201, await r.text()
        async with asyncio.timeout(30):
            while True:
                async with s.get(f"{ns}/analysisruns/endless") as resp:
                    results = ((await resp.json()).get("status") or {}).get("metricResults") or []
                if results and results[0]["count"] >= 2:
                    break
                await asyncio.sleep(0.05)
        async with s.post(f"{ns}/analysisruns/endless/terminate") as resp:
            assert resp.status == 202
        run = await _finished(s, f"{ns}/analysisruns/endless")
        assert run["status"]["phase"] == "Successful"
        await hook.wait_for(lambda r: r.by_type(COMPLETED_EVENT))
        assert hook.by_type(COMPLETED_EVENT)[0].signed_with(KEY)
