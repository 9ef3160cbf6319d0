"""Argo Rollouts' built-in `kayenta` metric provider, replayed call for call against a real
`analysisd serve` process whose metrics account is the real Prometheus rig.

`ArgoKayentaProvider` below makes exactly the HTTP calls of Argo's
metricproviders/kayenta/kayenta.go: the config lookup
`GET {address}/canaryConfig?application=&configurationAccountName=<storageAccountName>`
(Argo passes the storage account there), picking the entry whose `name` matches;
`POST {address}/canary/{id}?application=&metricsAccountName=&configurationAccountName=
&storageAccountName=` with Argo's payload text (its Go format string, ScopeDetail
marshalled as {scope, region, step, start, end}); then, every resume (15 s in Argo,
shortened here), `GET {address}/canary/{canaryExecutionId}` reading only `complete`
and `result.judgeResult.score.score`, truncated to an int and mapped as Argo maps it.
No Authorization header unless the address carries userinfo (Go's client sends that
as HTTP Basic).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

# ruff: noqa: F811  (the fixture is imported, then named as a parameter)
from tests.e2e.process import DaemonProcess, start_daemon
from tests.rigs.prometheus import PrometheusRig, prometheus_rig  # noqa: F401

APP = "checkout"
NAMESPACE = "shop"  # kayenta.applications maps checkout -> shop
CONFIG_NAME = "checkout-canary"
STORAGE = "analysisd-store"
RESUME_DELAY = 0.2  # Argo: 15 s

# Kayenta's prometheus query syntax: an inline template starting "PromQL:" is the query;
# ${scope} is each side's scope.
CANARY_CONFIG: dict[str, Any] = {
    "name": CONFIG_NAME,
    "description": "error ratio and mean latency of the demo app, per version",
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


class ArgoKayentaProvider:
    """Argo's kayenta provider: Run (lookup + POST) and Resume (GET) as kayenta.go does."""

    def __init__(self, session: aiohttp.ClientSession, metric: dict[str, Any]) -> None:
        self.session = session
        self.m = metric
        address = urlsplit(metric["address"])
        self.headers: dict[str, str] = {}
        if address.username is not None:  # Go's client turns userinfo into Basic auth
            pair = f"{address.username}:{address.password or ''}".encode()
            self.headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
            netloc = address.hostname + (f":{address.port}" if address.port else "")
            self.address = address._replace(netloc=netloc).geturl()
        else:
            self.address = metric["address"]
        self.calls: list[tuple[str, str]] = []

    async def _call(self, method: str, url: str, body: str | None = None) -> tuple[int, bytes]:
        self.calls.append((method, url))
        headers = dict(self.headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        async with self.session.request(method, url, data=body, headers=headers) as resp:
            return resp.status, await resp.read()

    async def run(self) -> dict[str, Any]:
        """The measurement Argo's Run returns: Running with the execution id, or Error."""
        m = self.m
        lookup = (
            f"{self.address}/canaryConfig?application={m['application']}"
            f"&configurationAccountName={m['storageAccountName']}"
        )
        status, data = await self._call("GET", lookup)
        if status != 200:
            return {"phase": "Error", "message": "Invalid Response"}
        config_id = ""
        for entry in json.loads(data):
            if entry["name"] == m["canaryConfigName"]:
                config_id = entry["id"]
        job = (
            f"{self.address}/canary/{config_id}?application={m['application']}"
            f"&metricsAccountName={m['metricsAccountName']}"
            f"&configurationAccountName={m['configurationAccountName']}"
            f"&storageAccountName={m['storageAccountName']}"
        )
        scopes = ",".join(
            f'"{s["name"]}":{{"controlScope": {go_marshal(s["controlScope"])},'
            f' "experimentScope": {go_marshal(s["experimentScope"])}}}'
            for s in m["scopes"]
        )
        payload = (
            '\n\t\t\t\t\t\t\t{\n\t\t\t\t\t\t\t\t"scopes": {\n\t\t\t\t\t\t\t\t\t\t'
            + scopes
            + '\n\t\t\t\t\t\t\t\t},\n                                "thresholds" : {\n'
            f'                                    "pass": {m["thresholds"]["pass"]},\n'
            f'                                    "marginal": {m["thresholds"]["marginal"]}\n'
            "                                }\n                            }"
        )
        status, data = await self._call("POST", job, payload)
        if status != 200:
            return {"phase": "Error", "message": f"Invalid Response ({status}: {data!r})"}
        job_id = json.loads(data).get("canaryExecutionId")
        if not job_id:
            return {"phase": "Error", "message": "Invalid canaryExecutionId"}
        return {"phase": "Running", "metadata": {"canaryExecutionId": str(job_id)}}

    async def resume(self, measurement: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.address}/canary/{measurement['metadata']['canaryExecutionId']}"
        status, data = await self._call("GET", url)
        if status != 200:
            return {**measurement, "phase": "Error", "message": "Invalid Response"}
        patch = json.loads(data)
        complete = patch.get("complete")
        if not isinstance(complete, bool):
            return {**measurement, "phase": "Error", "message": "Missing Complete Status"}
        if not complete:
            return {**measurement, "phase": "Running"}
        score = (((patch.get("result") or {}).get("judgeResult") or {}).get("score") or {}).get(
            "score"
        )
        if not isinstance(score, int | float):
            return {**measurement, "phase": "Error", "message": "Missing Score"}
        value = int(score)
        t = self.m["thresholds"]
        if value >= t["pass"]:
            phase = "Successful"
        elif value >= t["marginal"]:
            phase = "Inconclusive"
        else:
            phase = "Failed"
        return {**measurement, "phase": phase, "value": str(value), "status": patch}

    async def measure(self) -> dict[str, Any]:
        """Run, then Resume every RESUME_DELAY until the measurement leaves Running."""
        measurement = await self.run()
        async with asyncio.timeout(90):
            while measurement["phase"] == "Running":
                await asyncio.sleep(RESUME_DELAY)
                measurement = await self.resume(measurement)
        return measurement


def go_marshal(scope: dict[str, Any]) -> str:
    """encoding/json of Argo's ScopeDetail: fields in struct order, no spaces."""
    ordered = {k: scope.get(k, "" if k != "step" else 0) for k in ("scope", "region", "step")}
    ordered["start"] = scope.get("start", "")
    ordered["end"] = scope.get("end", "")
    return json.dumps(ordered, separators=(",", ":"))


def argo_metric(address: str, canary_version: str) -> dict[str, Any]:
    """An Argo kayenta metric (AnalysisTemplate provider block), args resolved."""
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    start = end - timedelta(minutes=30)
    window = {"step": 60, "start": stamp(start), "end": stamp(end), "region": "us-west-2"}
    return {
        "address": address,
        "application": APP,
        "canaryConfigName": CONFIG_NAME,
        "metricsAccountName": "prom-main",
        "configurationAccountName": STORAGE,
        "storageAccountName": STORAGE,
        "thresholds": {"pass": 90, "marginal": 75},
        "scopes": [
            {
                "name": "default",
                "controlScope": {"scope": "stable", **window},
                "experimentScope": {"scope": canary_version, **window},
            }
        ],
    }


def stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def settings_file(tmp_path: Path, prometheus: str, tokens: dict[str, list[str]] | None) -> Path:
    settings: dict[str, Any] = {
        "accounts": {"prom-main": {"prometheus": {"address": prometheus}}},
        "kayenta": {"namespace": "kayenta", "applications": {APP: NAMESPACE}},
    }
    if tokens:
        settings["tokens"] = tokens
    path = tmp_path / "settings.yaml"
    path.write_text(json.dumps(settings))
    return path


async def serve(
    tmp_path: Path, prometheus: str, tokens: dict[str, list[str]] | None = None
) -> DaemonProcess:
    (tmp_path / "secrets").mkdir(exist_ok=True)
    return await start_daemon(
        f"sqlite:///{tmp_path / 'analysisd.db'}",
        tmp_path / "secrets",
        tmp_path / "daemon.log",
        config=settings_file(tmp_path, prometheus, tokens),
    )


@pytest.fixture
async def daemon(tmp_path: Path, prometheus_rig: PrometheusRig) -> AsyncIterator[DaemonProcess]:
    process = await serve(tmp_path, prometheus_rig.url)
    try:
        yield process
    finally:
        assert await process.terminate() == 0
    assert "unhandled error" not in (tmp_path / "daemon.log").read_text()


async def store_config(session: aiohttp.ClientSession, base: str, **kw: Any) -> str:
    async with session.post(
        f"{base}/kayenta/canaryConfig?configurationAccountName={STORAGE}",
        json=CANARY_CONFIG,
        **kw,
    ) as resp:
        assert resp.status == 200, await resp.text()
        return str((await resp.json())["canaryConfigId"])


@pytest.mark.slow
async def test_argos_kayenta_provider_gets_successful_for_a_good_canary_and_failed_for_a_bad_one(
    daemon: DaemonProcess,
) -> None:
    async with aiohttp.ClientSession() as session:
        config_id = await store_config(session, daemon.base)
        address = f"{daemon.base}/kayenta"
        good = ArgoKayentaProvider(session, argo_metric(address, "canary-fast"))
        bad = ArgoKayentaProvider(session, argo_metric(address, "canary"))
        good_m, bad_m = await asyncio.gather(good.measure(), bad.measure())

        assert good_m["phase"] == "Successful", good_m
        assert bad_m["phase"] == "Failed", bad_m
        assert int(good_m["value"]) >= 90 and int(bad_m["value"]) < 75
        # Exactly Argo's calls: lookup, start, then polls of the one execution.
        for provider, m in ((good, good_m), (bad, bad_m)):
            execution = m["metadata"]["canaryExecutionId"]
            assert provider.calls[0] == (
                "GET",
                f"{address}/canaryConfig?application={APP}&configurationAccountName={STORAGE}",
            )
            assert provider.calls[1] == (
                "POST",
                f"{address}/canary/{config_id}?application={APP}&metricsAccountName=prom-main"
                f"&configurationAccountName={STORAGE}&storageAccountName={STORAGE}",
            )
            assert set(provider.calls[2:]) == {("GET", f"{address}/canary/{execution}")}

        # Kayenta's status object: score and classification where Argo reads them, each
        # metric with its classification and the judge's explanation.
        bad_status = bad_m["status"]
        assert bad_status["status"] == "succeeded" and bad_status["canaryConfigId"] == config_id
        judge_result = bad_status["result"]["judgeResult"]
        assert judge_result["score"]["classification"] == "Fail"
        by_name = {r["name"]: r for r in judge_result["results"]}
        assert by_name["error-ratio"]["classification"] == "High"
        assert by_name["error-ratio"]["critical"] is True
        assert "higher" in by_name["error-ratio"]["explanation"]["why"].lower()
        assert by_name["error-ratio"]["experimentMetadata"]["stats"]["mean"] == pytest.approx(
            0.1, rel=1e-6
        )
        good_result = good_m["status"]["result"]["judgeResult"]
        assert good_result["score"]["classification"] == "Pass"
        assert {r["classification"] for r in good_result["results"]} == {"Pass"}

        # Each execution is an ordinary run in the application's namespace.
        async with session.get(f"{daemon.base}/api/v1/namespaces/{NAMESPACE}/analysisruns") as r:
            runs = (await r.json())["items"]
        assert sorted(run["status"]["phase"] for run in runs) == ["Failed", "Successful"]
        assert {run["metadata"]["labels"]["analysisd.io/front-door"] for run in runs} == {"kayenta"}
        names = {f"{NAMESPACE}.{run['metadata']['name']}" for run in runs}
        assert names == {m["metadata"]["canaryExecutionId"] for m in (good_m, bad_m)}


@pytest.mark.slow
async def test_with_tokens_argo_sends_the_token_as_userinfo_and_namespaces_apply(
    tmp_path: Path, prometheus_rig: PrometheusRig
) -> None:
    tokens = {"shop-token": [NAMESPACE], "other-token": ["elsewhere"]}
    daemon = await serve(tmp_path, prometheus_rig.url, tokens)
    try:
        async with aiohttp.ClientSession() as session:
            host = daemon.base.removeprefix("http://")
            await store_config(session, daemon.base, headers=bearer("shop-token"))
            # No token: Argo's plain address is refused, and says why.
            anonymous = ArgoKayentaProvider(
                session, argo_metric(f"{daemon.base}/kayenta", "canary-fast")
            )
            assert (await anonymous.run())["phase"] == "Error"
            # A token of another namespace sees no config of this application.
            other = ArgoKayentaProvider(
                session, argo_metric(f"http://argo:other-token@{host}/kayenta", "canary-fast")
            )
            assert (await other.run())["phase"] == "Error"
            async with session.get(
                f"{daemon.base}/kayenta/canaryConfig?application={APP}",
                headers=bearer("other-token"),
            ) as resp:
                assert resp.status == 403
                assert NAMESPACE in (await resp.json())["message"]
            # The namespace's token, as Argo sends it (http://user:TOKEN@host/kayenta).
            allowed = ArgoKayentaProvider(
                session, argo_metric(f"http://argo:shop-token@{host}/kayenta", "canary-fast")
            )
            measurement = await allowed.measure()
            assert measurement["phase"] == "Successful", measurement
            execution = measurement["metadata"]["canaryExecutionId"]
            async with session.get(
                f"{daemon.base}/kayenta/canary/{execution}", headers=bearer("other-token")
            ) as resp:
                assert resp.status == 403
    finally:
        assert await daemon.terminate() == 0
    log = (tmp_path / "daemon.log").read_text()
    assert "shop-token" not in log and "other-token" not in log


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
