"""A `kayenta` metric run by analysisd against analysisd's own Kayenta API (`/kayenta`).

One in-process daemon is both sides: a run in namespace `rollouts` measures through
providers/kayenta.py, whose address is the daemon's own `/kayenta` front door; the
execution that starts is an ordinary run in the application's namespace (`shop`),
judged on data from the real Prometheus rig (tests/rigs/prometheus.py). The template
uses Argo's field names and lints clean.
"""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

# ruff: noqa: F811  (the fixture is imported, then named as a parameter)
from analysisd.cli import main
from analysisd.config import Account, KayentaSettings
from tests.e2e.rig import running_daemon, settings_for
from tests.rigs.prometheus import PrometheusRig, prometheus_rig  # noqa: F401

pytestmark = pytest.mark.integration

APP = "checkout"
STORAGE = "analysisd-store"
TEMPLATE = """\
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: kayenta-canary
spec:
  args:
  - name: kayenta-address
  - name: start-time
  - name: end-time
  - name: canary-version
  metrics:
  - name: kayenta-judgement
    provider:
      kayenta:
        address: "{{args.kayenta-address}}"
        application: checkout
        canaryConfigName: checkout-canary
        metricsAccountName: prom-main
        configurationAccountName: analysisd-store
        storageAccountName: analysisd-store
        threshold:
          pass: 90
          marginal: 75
        scopes:
        - name: default
          controlScope:
            scope: stable
            step: 60
            start: "{{args.start-time}}"
            end: "{{args.end-time}}"
          experimentScope:
            scope: "{{args.canary-version}}"
            step: 60
            start: "{{args.start-time}}"
            end: "{{args.end-time}}"
"""

CANARY_CONFIG: dict[str, Any] = {
    "name": "checkout-canary",
    "applications": [APP],
    "judge": {"name": "NetflixACAJudge-v1.0", "judgeConfigurations": {}},
    "metrics": [
        {
            "name": "error-ratio",
            "query": {
                "type": "prometheus",
                "customInlineTemplate": (
                    'PromQL:sum(rate(http_requests_total{app="demo",version="${scope}",'
                    'status=~"5.."}[1m])) / sum(rate(http_requests_total{app="demo",'
                    'version="${scope}"}[1m]))'
                ),
            },
            "groups": ["errors"],
            "analysisConfigurations": {
                "canary": {
                    "direction": "increase",
                    "critical": True,
                    "effectSize": {"allowedIncrease": 1.1},
                }
            },
            "scopeName": "default",
        },
        {
            "name": "mean-latency",
            "query": {
                "type": "prometheus",
                "customInlineTemplate": (
                    'PromQL:sum(rate(http_request_duration_seconds_sum{app="demo",'
                    'version="${scope}"}[1m])) / sum(rate(http_request_duration_seconds_count'
                    '{app="demo",version="${scope}"}[1m]))'
                ),
            },
            "groups": ["latency"],
            "analysisConfigurations": {"canary": {"direction": "increase"}},
            "scopeName": "default",
        },
    ],
    "classifier": {"groupWeights": {"errors": 60, "latency": 40}},
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def run_body(name: str, address: str, canary_version: str) -> dict[str, Any]:
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    args = {
        "kayenta-address": address,
        "start-time": stamp(end - timedelta(minutes=30)),
        "end-time": stamp(end),
        "canary-version": canary_version,
    }
    spec = yaml.safe_load(TEMPLATE)["spec"]
    spec["args"] = [{"name": k, "value": v} for k, v in args.items()]
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {"name": name},
        "spec": spec,
    }


async def run_to_the_end(http: aiohttp.ClientSession, runs: str, name: str) -> dict[str, Any]:
    run: dict[str, Any] = {}
    for _ in range(3000):
        async with http.get(f"{runs}/{name}") as response:
            run = await response.json()
        if (run.get("status") or {}).get("phase") in ("Successful", "Failed", "Error"):
            return run
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {name} did not end: {run.get('status')}")


def test_the_kayenta_template_lints_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "kayenta-canary.yaml"
    path.write_text(TEMPLATE)
    assert main(["lint", str(path)]) == 0
    assert capsys.readouterr().out == ""


@pytest.mark.slow
async def test_a_good_canary_is_successful_and_a_bad_one_failed_through_our_own_front_door(
    tmp_path: Path, prometheus_rig: PrometheusRig
) -> None:
    port = free_port()
    settings = settings_for(
        tmp_path,
        port=port,
        accounts={"prom-main": Account("prom-main", "prometheus", {"address": prometheus_rig.url})},
        kayenta=KayentaSettings("kayenta", {APP: "shop"}),
        providers={"kayenta": {"resumeDelaySeconds": 0.2}},
        # The daemon's own address is refused unless an egress prefix names it literally.
        egress=(f"http://127.0.0.1:{port}/kayenta/", prometheus_rig.url),
    )
    async with running_daemon(settings) as (_, base), aiohttp.ClientSession() as http:
        assert base == f"http://127.0.0.1:{port}"
        async with http.post(
            f"{base}/kayenta/canaryConfig?configurationAccountName={STORAGE}", json=CANARY_CONFIG
        ) as response:
            assert response.status == 200, await response.text()
        runs = f"{base}/api/v1/namespaces/rollouts/analysisruns"
        for name, version in (("good-canary", "canary-fast"), ("bad-canary", "canary")):
            body = run_body(name, f"{base}/kayenta", version)
            async with http.post(runs, json=body) as response:
                assert response.status == 201, await response.text()
        good, bad = await asyncio.gather(
            run_to_the_end(http, runs, "good-canary"), run_to_the_end(http, runs, "bad-canary")
        )
        assert good["status"]["phase"] == "Successful", good["status"]
        assert bad["status"]["phase"] == "Failed", bad["status"]
        measurements = {}
        for run in (good, bad):
            (result,) = run["status"]["metricResults"]
            (measurement,) = result["measurements"]
            measurements[run["metadata"]["name"]] = measurement
        assert int(measurements["good-canary"]["value"]) >= 90
        assert int(measurements["bad-canary"]["value"]) < 75
        assert measurements["bad-canary"]["phase"] == "Failed"

        # Each canaryExecutionId is an execution of the front door: an ordinary run in the
        # application's namespace, whose Kayenta status holds the score Argo read.
        async with http.get(f"{base}/api/v1/namespaces/shop/analysisruns") as response:
            executions = (await response.json())["items"]
        assert {f"shop.{r['metadata']['name']}" for r in executions} == {
            m["metadata"]["canaryExecutionId"] for m in measurements.values()
        }
        for name, measurement in measurements.items():
            execution = measurement["metadata"]["canaryExecutionId"]
            async with http.get(f"{base}/kayenta/canary/{execution}") as response:
                status = await response.json()
            assert status["complete"] is True
            score = status["result"]["judgeResult"]["score"]["score"]
            assert measurement["value"] == str(int(score)), name


@pytest.mark.slow
async def test_against_our_front_door_with_tokens_and_without_data(
    tmp_path: Path, prometheus_rig: PrometheusRig
) -> None:
    """Tokens: the address's userinfo is the token (Basic), a wrong one is Argo's
    Invalid Response (HTTP 401); a canary version with no data in Prometheus."""
    port = free_port()
    settings = settings_for(
        tmp_path,
        port=port,
        accounts={"prom-main": Account("prom-main", "prometheus", {"address": prometheus_rig.url})},
        kayenta=KayentaSettings("kayenta", {APP: "shop"}),
        providers={"kayenta": {"resumeDelaySeconds": 0.2}},
        egress=(f"http://127.0.0.1:{port}/kayenta/", prometheus_rig.url),
        tokens={"shop-token": ("shop",), "argo-token": ("rollouts",)},
    )
    argo = {"Authorization": "Bearer argo-token"}
    async with running_daemon(settings) as (_, base), aiohttp.ClientSession() as http:
        async with http.post(
            f"{base}/kayenta/canaryConfig?configurationAccountName={STORAGE}",
            json=CANARY_CONFIG,
            headers={"Authorization": "Bearer shop-token"},
        ) as response:
            assert response.status == 200, await response.text()
        runs = f"{base}/api/v1/namespaces/rollouts/analysisruns"
        cases = {
            "with-token": (f"http://argo:shop-token@127.0.0.1:{port}/kayenta", "canary-fast"),
            "wrong-token": (f"http://argo:nope-token@127.0.0.1:{port}/kayenta", "canary-fast"),
            "no-data": (f"http://argo:shop-token@127.0.0.1:{port}/kayenta", "no-such-version"),
        }
        for name, (address, version) in cases.items():
            body = run_body(name, address, version)
            body["spec"]["metrics"][0]["consecutiveErrorLimit"] = 0
            async with http.post(runs, json=body, headers=argo) as response:
                assert response.status == 201, await response.text()
        ended = {}
        for name in cases:
            for _ in range(3000):
                async with http.get(f"{runs}/{name}", headers=argo) as response:
                    run = await response.json()
                if (run.get("status") or {}).get("phase") in ("Successful", "Failed", "Error"):
                    break
                await asyncio.sleep(0.05)
            (result,) = run["status"]["metricResults"]
            ended[name] = (run["status"]["phase"], result["measurements"][-1])
        execution = ended["no-data"][1]["metadata"]["canaryExecutionId"]
        async with http.get(
            f"{base}/kayenta/canary/{execution}", headers={"Authorization": "Bearer shop-token"}
        ) as response:
            no_data = (await response.json())["result"]["judgeResult"]
    assert ended["with-token"][0] == "Successful", ended["with-token"]
    phase, measurement = ended["wrong-token"]
    assert phase == "Error"
    assert measurement["message"].startswith(
        f"kayenta at http://127.0.0.1:{port}/kayenta/canaryConfig?application={APP}"
    )
    assert measurement["message"].endswith("(HTTP 401)"), measurement
    assert "Invalid Response" in measurement["message"]
    assert "nope-token" not in measurement["message"]
    # No data for the canary: Kayenta's judgement classifies each metric Nodata and
    # scores 0, so the measurement is Failed with value 0 (as Argo would record it).
    phase, measurement = ended["no-data"]
    assert (phase, measurement["phase"], measurement["value"]) == ("Failed", "Failed", "0")
    assert {r["classification"] for r in no_data["results"]} == {"Nodata"}, no_data["results"]
