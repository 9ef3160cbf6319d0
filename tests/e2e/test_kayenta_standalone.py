"""Kayenta's standalone canary analysis against a real `analysisd serve` and the real
Prometheus rig: three judgements passing, and a bad canary failing fast at the first.

The request is built as Kayenta's own integration test builds it
(StandaloneCanaryAnalysisSteps: `POST /standalone_canary_analysis` with
`{canaryConfig, executionRequest}`, query parameters metricsAccountName,
storageAccountName, application, user; then polling until `complete`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

# ruff: noqa: F811  (the fixture is imported, then named as a parameter)
from tests.e2e.process import DaemonProcess
from tests.e2e.test_kayenta_argo_provider import (
    APP,
    CANARY_CONFIG,
    NAMESPACE,
    STORAGE,
    serve,
    stamp,
    store_config,
)
from tests.rigs.prometheus import PrometheusRig, prometheus_rig  # noqa: F401

QUERY = f"?metricsAccountName=prom-main&storageAccountName={STORAGE}&application={APP}&user=qa"


@pytest.fixture
async def daemon(tmp_path: Path, prometheus_rig: PrometheusRig) -> AsyncIterator[DaemonProcess]:
    process = await serve(tmp_path, prometheus_rig.url)
    try:
        yield process
    finally:
        assert await process.terminate() == 0
    assert "unhandled error" not in (tmp_path / "daemon.log").read_text()


def scope(canary: str, **times: Any) -> dict[str, Any]:
    return {
        "scopeName": "default",
        "controlScope": "stable",
        "experimentScope": canary,
        "step": 60,
        "extendedScopeParams": {},
        **times,
    }


async def wait_complete(
    session: aiohttp.ClientSession, base: str, execution: str
) -> dict[str, Any]:
    async with asyncio.timeout(120):
        while True:
            async with session.get(f"{base}/kayenta/standalone_canary_analysis/{execution}") as r:
                assert r.status == 200, await r.text()
                status: dict[str, Any] = await r.json()
            if status["complete"]:
                return status
            await asyncio.sleep(0.2)


async def start(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> str:
    async with session.post(url, json=body) as resp:
        assert resp.status == 200, await resp.text()
        return str((await resp.json())["canaryAnalysisExecutionId"])


@pytest.mark.slow
async def test_three_fixed_intervals_pass_for_a_good_canary_and_fail_for_a_bad_one(
    daemon: DaemonProcess,
) -> None:
    """endTimeIso given: Kayenta does not wait; judgements read growing windows."""
    end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=2)
    begin = end - timedelta(minutes=45)
    times = {"startTimeIso": stamp(begin), "endTimeIso": stamp(end)}
    async with aiohttp.ClientSession() as session:
        config_id = await store_config(session, daemon.base)
        url = f"{daemon.base}/kayenta/standalone_canary_analysis/{config_id}{QUERY}"
        request = {
            "scopes": [scope("canary-fast", **times)],
            "thresholds": {"pass": 90, "marginal": 75},
            "analysisIntervalMins": 15,
        }
        good = await start(session, url, request)
        bad = await start(session, url, {**request, "scopes": [scope("canary", **times)]})
        good_s = await wait_complete(session, daemon.base, good)
        bad_s = await wait_complete(session, daemon.base, bad)

    result = good_s["canaryAnalysisExecutionResult"]
    assert good_s["executionStatus"] == "SUCCEEDED" and result["didPassThresholds"] is True
    assert len(result["canaryScores"]) == 3 and min(result["canaryScores"]) >= 90
    windows = [
        (e["judgementStartTimeIso"], e["judgementEndTimeIso"])
        for e in result["canaryExecutionResults"]
    ]
    assert windows == [(stamp(begin), stamp(begin + timedelta(minutes=15 * i))) for i in (1, 2, 3)]
    assert good_s["canaryConfigId"] == config_id and good_s["user"] == "qa"
    assert good_s["analysisRun"]["namespace"] == NAMESPACE
    bad_result = bad_s["canaryAnalysisExecutionResult"]
    assert bad_s["executionStatus"] == "TERMINAL" and bad_result["didPassThresholds"] is False
    # Kayenta's answer stops at the first judgement below marginal.
    assert len(bad_result["canaryScores"]) == 1 and bad_result["canaryScores"][0] < 75
    assert "failed fast" in bad_result["canaryScoreMessage"]
    judged = bad_result["canaryExecutionResults"][0]["result"]["judgeResult"]
    [errors] = [r for r in judged["results"] if r["name"] == "error-ratio"]
    assert errors["classification"] == "High" and errors["explanation"]["why"]


@pytest.mark.slow
async def test_adhoc_analysis_waits_its_intervals_and_a_bad_canary_fails_fast(
    daemon: DaemonProcess,
) -> None:
    """No endTimeIso: judgement i waits i intervals (fractions of a minute here) and reads
    the last lookbackMins; the bad canary's first judgement ends the analysis."""
    begin = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    execution_request = {
        "scopes": [scope("canary-fast", startTimeIso=stamp(begin))],
        "thresholds": {"pass": 90, "marginal": 75},
        "lifetimeDurationMins": 0.15,
        "analysisIntervalMins": 0.05,  # three judgements, 3 s apart
        "lookbackMins": 10,
    }
    adhoc = f"{daemon.base}/kayenta/standalone_canary_analysis{QUERY}"
    async with aiohttp.ClientSession() as session:
        good = await start(
            session, adhoc, {"canaryConfig": CANARY_CONFIG, "executionRequest": execution_request}
        )
        bad_request = {**execution_request, "scopes": [scope("canary", startTimeIso=stamp(begin))]}
        bad = await start(
            session, adhoc, {"canaryConfig": CANARY_CONFIG, "executionRequest": bad_request}
        )
        good_s, bad_s = await asyncio.gather(
            wait_complete(session, daemon.base, good), wait_complete(session, daemon.base, bad)
        )
        async with session.get(
            f"{daemon.base}/api/v1/namespaces/{NAMESPACE}/analysisruns/"
            + bad_s["analysisRun"]["name"]
        ) as resp:
            bad_run = await resp.json()

    result = good_s["canaryAnalysisExecutionResult"]
    assert result["didPassThresholds"] is True and len(result["canaryScores"]) == 3
    ends = [e["judgementEndTimeIso"] for e in result["canaryExecutionResults"]]
    assert ends == [stamp(begin + timedelta(seconds=3 * i)) for i in (1, 2, 3)]
    starts = [e["judgementStartTimeIso"] for e in result["canaryExecutionResults"]]
    assert starts == [stamp(begin + timedelta(seconds=3 * i, minutes=-10)) for i in (1, 2, 3)]

    bad_result = bad_s["canaryAnalysisExecutionResult"]
    assert bad_result["didPassThresholds"] is False
    assert len(bad_result["canaryScores"]) == 1 and bad_result["canaryScores"][0] < 75
    assert "failed fast" in bad_result["canaryScoreMessage"]
    # The later judgements never measured: the run terminated at the first failure.
    measured = {
        r["name"]: len(r.get("measurements") or []) for r in bad_run["status"]["metricResults"]
    }
    assert measured.get("judgement-1") == 1
    assert measured.get("judgement-2", 0) == 0 and measured.get("judgement-3", 0) == 0
    assert bad_run["status"]["phase"] == "Failed"
    assert [s["status"] for s in bad_s["stageStatus"]] == ["terminal", "not_started", "not_started"]
