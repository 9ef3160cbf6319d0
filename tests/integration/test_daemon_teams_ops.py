"""Running it for many teams: quotas at the door, /metrics without run names and behind
a token, the audit log, /readyz while draining, and --allow-anonymous."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from analysisd.api.auth import token_name
from analysisd.config import ConfigError, NamespaceSettings, Quota
from analysisd.daemon import Daemon, check_exposure
from providers.base import Reading
from tests.e2e.rig import (
    ScriptedSource,
    run_manifest,
    running_daemon,
    scripted_metric,
    settings_for,
)

ADMIN, TEAM = "admin-secret-token", "team-secret-token"
TOKENS = {ADMIN: ("*",), TEAM: ("shop",)}


def quota_settings(tmp_path: Path, **quota: Any) -> Any:
    return settings_for(tmp_path, namespaces={"shop": NamespaceSettings(quota=Quota(**quota))})


async def post_run(
    s: aiohttp.ClientSession, base: str, name: str, metrics: list[dict[str, Any]], **kw: Any
) -> tuple[int, dict[str, Any]]:
    url = f"{base}/api/v1/namespaces/shop/analysisruns"
    async with s.post(url, json=run_manifest(name, metrics), **kw) as resp:
        return resp.status, await resp.json()


async def test_metrics_per_run_and_min_interval_quotas_refuse_with_403_naming_them(
    tmp_path: Path,
) -> None:
    settings = quota_settings(tmp_path, metrics_per_run=2, min_interval=1.0)
    async with (
        running_daemon(settings, ScriptedSource()) as (_, base),
        aiohttp.ClientSession() as s,
    ):
        three = [scripted_metric(f"m{i}") for i in range(3)]
        status, body = await post_run(s, base, "many", three)
        assert status == 403
        assert "metricsPerRun (2)" in body["message"]
        assert body["details"]["field"] == "spec.metrics"
        fast = [scripted_metric("m", count=3, interval="100ms")]
        status, body = await post_run(s, base, "fast", fast)
        assert status == 403
        assert "minInterval" in body["message"]
        assert body["details"]["field"] == "spec.metrics[0].interval"
        ok = [scripted_metric("m", count=2, interval="1s")]
        status, _ = await post_run(s, base, "ok", ok)
        assert status == 201
        # Another namespace has no quota.
        url = f"{base}/api/v1/namespaces/other/analysisruns"
        async with s.post(url, json=run_manifest("many", three)) as resp:
            assert resp.status == 201


async def test_active_runs_quota_answers_429_naming_it(tmp_path: Path) -> None:
    settings = quota_settings(tmp_path, active_runs=2)
    endless = [{**scripted_metric("m"), "interval": "1h", "count": 5}]
    async with (
        running_daemon(settings, ScriptedSource()) as (_, base),
        aiohttp.ClientSession() as s,
    ):
        for i in range(2):
            status, _ = await post_run(s, base, f"r{i}", endless)
            assert status == 201
        status, body = await post_run(s, base, "r2", endless)
        assert status == 429
        assert "activeRuns" in body["message"]
        assert body["details"]["field"] == "activeRuns"


class Gate:
    """A source whose measurements wait for a gate (a slow provider)."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.called = asyncio.Event()
        self.calls = 0

    async def measure(self, kind: str, config: Mapping[str, Any]) -> Reading:
        self.calls += 1
        self.called.set()
        await self.open.wait()
        return Reading(result=1, value="1")


async def test_rate_quota_backlog_answers_429_naming_measurements_per_second(
    tmp_path: Path,
) -> None:
    # 0.01/s: one token, then 100 s per measurement; a backlog over a minute's worth (0.6).
    settings = quota_settings(tmp_path, measurements_per_second=0.01)
    source = Gate()
    async with running_daemon(settings, source) as (_, base), aiohttp.ClientSession() as s:
        status, _ = await post_run(s, base, "r0", [scripted_metric("m")])
        assert status == 201
        # r0's measurement takes the one token; until it has, it is itself a backlog of
        # one and r1 could already be refused (the create answers before the dispatch).
        async with asyncio.timeout(10):
            await source.called.wait()
        status, _ = await post_run(s, base, "r1", [scripted_metric("m")])
        assert status == 201
        async with asyncio.timeout(10):
            while True:
                status, body = await post_run(s, base, "late", [scripted_metric("m")])
                if status == 429:
                    break
                assert status == 201
                await s.delete(f"{base}/api/v1/namespaces/shop/analysisruns/late")
                await asyncio.sleep(0.05)
        assert "measurementsPerSecond" in body["message"]
        assert source.calls == 1  # the rest wait for tokens: delayed, not dropped
        source.open.set()


async def test_metrics_have_no_run_names_only_namespace_aggregates(tmp_path: Path) -> None:
    endless = {**scripted_metric("latency"), "interval": "50ms", "count": 1000}
    async with (
        running_daemon(settings_for(tmp_path), ScriptedSource()) as (_, base),
        aiohttp.ClientSession() as s,
    ):
        for name in ("live", "gone"):
            url = f"{base}/api/v1/namespaces/ns/analysisruns"
            async with s.post(url, json=run_manifest(name, [endless])) as resp:
                assert resp.status == 201
        async with asyncio.timeout(10):
            while True:
                async with s.get(f"{base}/metrics") as resp:
                    text = await resp.text()
                if 'analysisd_namespace_active_runs{namespace="ns"} 2.0' in text:
                    break
                await asyncio.sleep(0.05)
        assert 'analysisd_namespace_measurements_total{namespace="ns",phase="Successful"}' in text
        assert "run=" not in text and '"live"' not in text
        await s.delete(f"{base}/api/v1/namespaces/ns/analysisruns/gone")
        await s.delete(f"{base}/api/v1/namespaces/ns/analysisruns/live")
        async with asyncio.timeout(10):
            while True:
                async with s.get(f"{base}/metrics") as resp:
                    text = await resp.text()
                if "analysisd_namespace_active_runs{" not in text:
                    break  # a namespace with no active run leaves no series behind
                await asyncio.sleep(0.05)
        assert 'analysisd_runs{phase="Running"} 0.0' in text


async def test_metrics_need_an_all_namespaces_token_when_tokens_are_configured(
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path, tokens=TOKENS)
    async with (
        running_daemon(settings, ScriptedSource()) as (_, base),
        aiohttp.ClientSession() as s,
    ):
        async with s.get(f"{base}/metrics") as resp:
            assert resp.status == 401
        headers = {"Authorization": f"Bearer {TEAM}"}
        async with s.get(f"{base}/metrics", headers=headers) as resp:
            assert resp.status == 403
        headers = {"Authorization": f"Bearer {ADMIN}"}
        async with s.get(f"{base}/metrics", headers=headers) as resp:
            assert resp.status == 200
            assert "analysisd_runs" in await resp.text()
        async with s.get(f"{base}/readyz") as resp:
            assert resp.status == 200  # probes stay open


async def test_create_terminate_delete_are_audited_by_token_name_never_the_token(
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path, tokens=TOKENS)
    headers = {"Authorization": f"Bearer {TEAM}"}
    endless = [{**scripted_metric("m"), "interval": "1h", "count": 5}]
    async with (
        running_daemon(settings, ScriptedSource()) as (_, base),
        aiohttp.ClientSession() as s,
    ):
        url = f"{base}/api/v1/namespaces/shop/analysisruns"
        with capture_logs() as logs:
            status, _ = await post_run(s, base, "r", endless, headers=headers)
            assert status == 201
            async with s.post(f"{url}/r/terminate", headers=headers) as resp:
                assert resp.status == 202
            async with s.delete(f"{url}/r", headers=headers) as resp:
                assert resp.status == 200
            templates = f"{base}/api/v1/namespaces/shop/analysistemplates"
            template = {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "AnalysisTemplate",
                "metadata": {"name": "t"},
                "spec": {"metrics": [scripted_metric("m")]},
            }
            async with s.post(templates, json=template, headers=headers) as resp:
                assert resp.status == 201
            async with s.delete(f"{templates}/t", headers=headers) as resp:
                assert resp.status == 200
            # A refused request changes nothing and is not an audit line.
            async with s.delete(f"{url}/missing", headers=headers) as resp:
                assert resp.status == 404
    audits = [e for e in logs if e["event"] == "audit"]
    assert [(e["action"], e["kind"], e["namespace"], e["name"]) for e in audits] == [
        ("create", "AnalysisRun", "shop", "r"),
        ("terminate", "AnalysisRun", "shop", "r"),
        ("delete", "AnalysisRun", "shop", "r"),
        ("create", "AnalysisTemplate", "shop", "t"),
        ("delete", "AnalysisTemplate", "shop", "t"),
    ]
    assert all(e["who"] == token_name(TEAM) for e in audits)
    assert all(e["at"].endswith("Z") for e in audits)
    assert TEAM not in repr(logs)


async def test_readyz_answers_503_draining_while_measurements_drain(tmp_path: Path) -> None:
    source = Gate()
    settings = settings_for(tmp_path, shutdown_grace=30.0)
    daemon = Daemon(settings, source=source)
    await daemon.start()
    base = f"http://127.0.0.1:{daemon.port}"
    closing: asyncio.Task[None] | None = None
    try:
        async with aiohttp.ClientSession() as s:
            status, _ = await post_run(s, base, "r", [scripted_metric("m")])
            assert status == 201
            async with asyncio.timeout(10):
                while source.calls == 0:  # noqa: ASYNC110 (the daemon's own progress)
                    await asyncio.sleep(0.01)
            closing = asyncio.ensure_future(daemon.aclose())
            await asyncio.sleep(0.1)
            async with s.get(f"{base}/readyz") as resp:
                assert resp.status == 503
                assert (await resp.json())["status"] == "draining"
            source.open.set()  # the measurement lands, then the listener closes
            await closing
            with pytest.raises(aiohttp.ClientConnectionError):
                async with s.get(f"{base}/readyz"):
                    pass
    finally:
        source.open.set()
        if closing is None:
            await daemon.aclose()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "analysisd.example", ""])
def test_non_loopback_without_tokens_needs_allow_anonymous(tmp_path: Path, host: str) -> None:
    settings = settings_for(tmp_path, host=host)
    with pytest.raises(ConfigError, match="--allow-anonymous"):
        check_exposure(settings)
    check_exposure(replace(settings, allow_anonymous=True))
    check_exposure(replace(settings, tokens=TOKENS))


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_stays_open_by_default(tmp_path: Path, host: str) -> None:
    check_exposure(settings_for(tmp_path, host=host))


async def test_serve_refuses_an_open_api_on_every_address(tmp_path: Path) -> None:
    import sys

    args = ("-m", "analysisd.cli", "serve", "--host", "0.0.0.0", "--port", "0")
    store = ("--store", f"sqlite:///{tmp_path / 'a.db'}")
    process = await asyncio.create_subprocess_exec(
        sys.executable, *args, *store, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(60):
        _, err = await process.communicate()
    assert process.returncode == 2
    assert b"--allow-anonymous" in err
