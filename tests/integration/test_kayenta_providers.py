"""Kayenta executions fetched through datadog and cloudWatch metrics accounts: the
DatadogFake (Datadog's API shapes, keys from the namespace's `datadog` secret) and a
real moto_server (CloudWatch GetMetricData), judged as Kayenta would."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiobotocore.session import AioSession

# ruff: noqa: F811  (fixtures are imported, then named as parameters)
from analysisd.config import Account, KayentaSettings
from tests.e2e.rig import running_daemon, settings_for, write_secret
from tests.rigs.datadog_fake import DatadogFake
from tests.rigs.moto import MotoServer, aws_env, moto_server  # noqa: F401

NS = "shop"
KAYENTA = KayentaSettings("kayenta", {"checkout": NS})


def canary_config(query: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "errors",
        "applications": ["checkout"],
        "judge": {"name": "NetflixACAJudge-v1.0", "judgeConfigurations": {}},
        "metrics": [
            {
                "name": "errors",
                "query": query,
                "groups": ["errors"],
                "analysisConfigurations": {"canary": {"direction": "increase"}},
                "scopeName": "default",
            }
        ],
        "classifier": {"groupWeights": {"errors": 100}},
    }


def request(control: str, experiment: str, start: datetime, end: datetime) -> dict[str, Any]:
    window = {"start": start.isoformat(), "end": end.isoformat(), "step": 60}
    return {
        "scopes": {
            "default": {
                "controlScope": {"scope": control, **window},
                "experimentScope": {"scope": experiment, **window},
            }
        },
        "thresholds": {"pass": 90, "marginal": 75},
    }


async def judged(tmp_path: Path, account: Account, config: dict[str, Any], body: Any) -> Any:
    """Store `config`, start one canary through `account`, wait for Kayenta's status."""
    settings = settings_for(tmp_path, accounts={account.name: account}, kayenta=KAYENTA)
    async with running_daemon(settings) as (_, base), aiohttp.ClientSession() as s:
        async with s.post(f"{base}/kayenta/canaryConfig", json=config) as resp:
            assert resp.status == 200, await resp.text()
            config_id = (await resp.json())["canaryConfigId"]
        url = (
            f"{base}/kayenta/canary/{config_id}?application=checkout"
            f"&metricsAccountName={account.name}"
        )
        async with s.post(url, json=body) as resp:
            assert resp.status == 200, await resp.text()
            execution = (await resp.json())["canaryExecutionId"]
        async with asyncio.timeout(30):
            while True:
                async with s.get(f"{base}/kayenta/canary/{execution}") as resp:
                    status = await resp.json()
                if status["complete"]:
                    return status
                await asyncio.sleep(0.05)


async def test_a_datadog_account_fetches_kayentas_datadog_queries(tmp_path: Path) -> None:
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    start = end - timedelta(minutes=20)
    times = [int((start + timedelta(minutes=i)).timestamp() * 1000) for i in range(20)]
    async with DatadogFake(api_key="dd-api", app_key="dd-app") as fake:
        for key, value in (("api-key", "dd-api"), ("app-key", "dd-app"), ("address", fake.url)):
            write_secret(tmp_path, "datadog", key, value, namespace=NS)
        fake.timeseries["errors{version:stable,env:prod}"] = (
            times,
            [[1.0 + 0.1 * (i % 5) for i in range(20)]],
        )
        fake.timeseries["errors{version:canary,env:prod}"] = (
            times,
            [[3.0 + 0.1 * (i % 5) for i in range(20)]],
        )
        query = {"type": "datadog", "metricName": "errors", "tags": ["env:prod"]}
        status = await judged(
            tmp_path,
            Account("dd", "datadog", {}),
            canary_config(query),
            request("version:stable", "version:canary", start, end),
        )
        asked = {
            r.body["data"]["attributes"]["queries"][0]["query"]
            for r in fake.requests
            if r.path == "/api/v2/query/timeseries"
        }
    assert asked == {"errors{version:stable,env:prod}", "errors{version:canary,env:prod}"}
    result = status["result"]["judgeResult"]
    [errors] = result["results"]
    assert errors["classification"] == "High"
    assert errors["controlMetadata"]["stats"]["count"] == 20
    assert result["score"]["classification"] == "Fail"
    assert "dd-api" not in json.dumps(status) and "dd-app" not in json.dumps(status)


async def test_a_cloudwatch_account_fetches_metric_data_queries(
    tmp_path: Path,
    aws_env: MotoServer,
) -> None:
    run = uuid.uuid4().hex  # moto ignores the namespace when dimensions are given
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    start = end - timedelta(minutes=20)
    data = [
        {
            "MetricName": "Errors",
            "Value": base + 0.1 * (i % 5),
            "Timestamp": start + timedelta(minutes=i, seconds=30),
            "Dimensions": [{"Name": "run", "Value": run}, {"Name": "version", "Value": version}],
        }
        for version, base in (("stable", 1.0), ("canary", 1.0))
        for i in range(20)
    ]
    async with AioSession().create_client("cloudwatch") as client:
        await client.put_metric_data(Namespace="Kayenta/Test", MetricData=data)
    query = {"type": "cloudwatch", "metricName": "Errors", "namespace": "Kayenta/Test"}
    status = await judged(
        tmp_path,
        Account("cw", "cloudwatch", {}),
        canary_config(query),
        request(f"run={run},version=stable", f"run={run},version=canary", start, end),
    )
    result = status["result"]["judgeResult"]
    [errors] = result["results"]
    assert errors["controlMetadata"]["stats"]["count"] == 20
    assert errors["experimentMetadata"]["stats"]["count"] == 20
    assert errors["classification"] == "Pass"
    assert result["score"]["score"] == 100
