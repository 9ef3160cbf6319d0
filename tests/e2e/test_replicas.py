"""Several daemons on one PostgreSQL database share the runs through leases.

- two in-process daemons, 20 runs: every run completes once, every measurement is taken
  by exactly one replica, the history holds exactly `count` measurements per run, and one
  verdict per run arrives (after de-duplication by event id);
- a graceful stop hands the stopping replica's runs to the other at once;
- kill -9 one replica mid-run (subprocess, 2 s lease): the other takes its runs over once
  the lease expires and finishes them, nothing lost or doubled in the stored history.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from analysisd.config import Settings
from analysisd.daemon import Daemon
from analysisd.engine.scheduler import SchedulerClosed
from analysisd.outbox import CALLBACK_SECRET, CALLBACK_URL, COMPLETED_EVENT, MEASUREMENT_EVENT
from analysisd.store import PostgresStore
from providers.base import Reading
from tests.e2e.process import start_daemon, wait_all_completed
from tests.e2e.rig import Receiver, receiver, settings_for, write_secret
from tests.rigs.postgres import scratch_schema

RUNS = 20
COUNT = 4
KEY = "replica-hook-key"
_CLIENT_TIMEOUT = aiohttp.ClientTimeout(total=30)


@pytest.fixture
async def pg_store_url() -> AsyncIterator[str]:
    async with scratch_schema("r") as schema:
        yield schema.url


class CountingSource:
    """A MeasurementSource that records which replica measured which run."""

    def __init__(self, replica: str, calls: Counter[tuple[str, str]]) -> None:
        self.replica = replica
        self.calls = calls

    async def measure(self, kind: str, config: Mapping[str, Any]) -> Reading:
        self.calls[(self.replica, str(config["run"]))] += 1
        await asyncio.sleep(0.01)  # in flight for a moment, like a real query
        return Reading(result=1, value="1")


def _manifest(name: str, hook_url: str, provider: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {
            "name": name,
            "annotations": {CALLBACK_URL: hook_url, CALLBACK_SECRET: "hooks"},
        },
        "spec": {
            "metrics": [
                {
                    "name": "error-rate",
                    "count": COUNT,
                    "interval": "200ms",
                    "successCondition": "result < 5",
                    "provider": provider,
                }
            ]
        },
    }


def _settings(tmp_path: Path, store: str) -> Settings:
    return replace(settings_for(tmp_path), store=store, lease_duration=2.0, shutdown_grace=5.0)


async def _history_counts(
    session: aiohttp.ClientSession, base: str, names: list[str]
) -> dict[str, int]:
    counts = {}
    for name in names:
        async with session.get(
            f"{base}/api/v1/namespaces/lab/analysisruns/{name}/measurements"
        ) as resp:
            items = (await resp.json())["items"]
        counts[name] = len(items)
    return counts


def _one_verdict_per_run(rec: Receiver, names: list[str]) -> None:
    ids_by_run: dict[str, set[str]] = defaultdict(set)
    for delivery in rec.by_type(COMPLETED_EVENT):
        assert delivery.signed_with(KEY)
        ids_by_run[delivery.event["subject"]].add(delivery.event["id"])
    assert sorted(ids_by_run) == [f"lab/{name}" for name in sorted(names)]
    assert all(len(ids) == 1 for ids in ids_by_run.values())


async def test_two_replicas_share_twenty_runs_each_measured_once(
    tmp_path: Path, pg_store_url: str
) -> None:
    write_secret(tmp_path, "hooks", "hmac-key", KEY, namespace="lab")
    calls: Counter[tuple[str, str]] = Counter()
    names = [f"run-{i:02d}" for i in range(RUNS)]
    settings = _settings(tmp_path, pg_store_url)
    async with receiver() as rec, aiohttp.ClientSession(timeout=_CLIENT_TIMEOUT) as session:
        a = Daemon(replace(settings, replica_id="replica-a"), source=CountingSource("a", calls))
        b = Daemon(replace(settings, replica_id="replica-b"), source=CountingSource("b", calls))
        async with a, b:
            bases = [f"http://127.0.0.1:{a.port}", f"http://127.0.0.1:{b.port}"]
            for i, name in enumerate(names):
                body = _manifest(
                    name, rec.url, {"web": {"url": "http://counting.invalid/", "run": name}}
                )
                async with session.post(
                    f"{bases[i % 2]}/api/v1/namespaces/lab/analysisruns", json=body
                ) as resp:
                    assert resp.status == 201, await resp.text()
            items = await wait_all_completed(session, bases[0], "lab", RUNS, limit=40)
            assert {i["status"]["phase"] for i in items} == {"Successful"}
            assert await _history_counts(session, bases[1], names) == dict.fromkeys(names, COUNT)
            await rec.wait_for(lambda r: len(r.unique_ids(COMPLETED_EVENT)) == RUNS, 30)
    # Each run was measured by exactly one replica, exactly `count` times; both worked.
    replicas_by_run: dict[str, set[str]] = defaultdict(set)
    for (replica, run), n in calls.items():
        replicas_by_run[run].add(replica)
        assert n == COUNT, (replica, run)
    assert all(len(r) == 1 for r in replicas_by_run.values())
    assert sorted(replicas_by_run) == names
    assert {replica for replica, _ in calls} == {"a", "b"}
    _one_verdict_per_run(rec, names)
    # Both deliverers scan one outbox; claims keep them from sending the same event twice.
    assert len(rec.deliveries) == len(rec.unique_ids()) == RUNS * (COUNT + 1)


async def test_graceful_stop_hands_runs_to_the_other_replica(
    tmp_path: Path, pg_store_url: str
) -> None:
    write_secret(tmp_path, "hooks", "hmac-key", KEY, namespace="lab")
    calls: Counter[tuple[str, str]] = Counter()
    names = [f"run-{i:02d}" for i in range(6)]
    settings = replace(_settings(tmp_path, pg_store_url), lease_duration=3.0)
    # Seen twice in full runs (never alone): this test outlived pytest's 300 s. The
    # bounds below turn such a hang into a TimeoutError raised where the test waits.
    async with (
        asyncio.timeout(120),
        receiver() as rec,
        aiohttp.ClientSession(timeout=_CLIENT_TIMEOUT) as session,
    ):
        b = Daemon(replace(settings, replica_id="replica-b"), source=CountingSource("b", calls))
        async with b:
            base_b = f"http://127.0.0.1:{b.port}"
            a = Daemon(replace(settings, replica_id="replica-a"), source=CountingSource("a", calls))
            async with a:
                for name in names:
                    body = _manifest(
                        name, rec.url, {"web": {"url": "http://counting.invalid/", "run": name}}
                    )
                    url = f"http://127.0.0.1:{a.port}/api/v1/namespaces/lab/analysisruns"
                    async with session.post(url, json=body) as resp:
                        assert resp.status == 201
                await rec.wait_for(lambda r: len(r.by_type(MEASUREMENT_EVENT)) >= 6)
            # a released its runs (no wait for expiry); b claims them at its next lease tick.
            assert a.scheduler is None
            assert isinstance(b.store, PostgresStore)
            owners = await b.store.pool.fetch("SELECT owner FROM runs WHERE completed=0")
            assert all(row["owner"] in (None, "replica-b") for row in owners)
            items = await wait_all_completed(session, base_b, "lab", len(names), limit=30)
            assert {i["status"]["phase"] for i in items} == {"Successful"}
            assert await _history_counts(session, base_b, names) == dict.fromkeys(names, COUNT)
    per_run = Counter[str]()
    for (_, run), n in calls.items():
        per_run[run] += n
    assert per_run == dict.fromkeys(names, COUNT)  # nothing measured twice across the handover
    assert any(replica == "b" for replica, _ in calls)


async def test_a_run_stopped_by_an_error_is_released_and_resumed(
    tmp_path: Path, pg_store_url: str
) -> None:
    """A run the scheduler dropped (as when its observer failed) while the lease is still
    renewed: the lease loop releases it and the next claim resumes it from the store."""
    write_secret(tmp_path, "hooks", "hmac-key", KEY, namespace="lab")
    calls: Counter[tuple[str, str]] = Counter()
    settings = replace(_settings(tmp_path, pg_store_url), replica_id="replica-a")
    daemon = Daemon(settings, source=CountingSource("a", calls))
    async with receiver() as rec, aiohttp.ClientSession(timeout=_CLIENT_TIMEOUT) as session, daemon:
        base = f"http://127.0.0.1:{daemon.port}"
        body = _manifest(
            "run-00", rec.url, {"web": {"url": "http://counting.invalid/", "run": "run-00"}}
        )
        async with session.post(f"{base}/api/v1/namespaces/lab/analysisruns", json=body) as resp:
            assert resp.status == 201
        await rec.wait_for(lambda r: len(r.by_type(MEASUREMENT_EVENT)) >= 1)
        assert daemon.scheduler is not None
        assert daemon.scheduler.forget("lab", "run-00")
        items = await wait_all_completed(session, base, "lab", 1, limit=20)
        assert items[0]["status"]["phase"] == "Successful"
        assert await _history_counts(session, base, ["run-00"]) == {"run-00": COUNT}


async def test_a_run_deleted_through_another_replica_stops_on_its_holder(
    tmp_path: Path, pg_store_url: str
) -> None:
    write_secret(tmp_path, "hooks", "hmac-key", KEY, namespace="lab")
    calls: Counter[tuple[str, str]] = Counter()
    settings = _settings(tmp_path, pg_store_url)
    a = Daemon(replace(settings, replica_id="replica-a"), source=CountingSource("a", calls))
    b = Daemon(replace(settings, replica_id="replica-b"), source=CountingSource("b", calls))
    async with receiver() as rec, aiohttp.ClientSession(timeout=_CLIENT_TIMEOUT) as session, a, b:
        body = _manifest(
            "run-00", rec.url, {"web": {"url": "http://counting.invalid/", "run": "run-00"}}
        )
        body["spec"]["metrics"][0]["count"] = 1000
        url = f"http://127.0.0.1:{a.port}/api/v1/namespaces/lab/analysisruns"
        async with session.post(url, json=body) as resp:
            assert resp.status == 201
        await rec.wait_for(lambda r: len(r.by_type(MEASUREMENT_EVENT)) >= 1)
        url = f"http://127.0.0.1:{b.port}/api/v1/namespaces/lab/analysisruns/run-00"
        async with session.delete(url) as resp:
            assert resp.status == 200
        assert a.scheduler is not None
        # The holder stops it at its next write (KeyError: it already has).
        with pytest.raises((SchedulerClosed, KeyError)):
            async with asyncio.timeout(10):
                await a.scheduler.wait("lab", "run-00")
        assert not a.scheduler.is_active("lab", "run-00")
    assert calls[("b", "run-00")] == 0


async def _metric_endpoint() -> tuple[web.AppRunner, str, Counter[str]]:
    hits: Counter[str] = Counter()

    async def handle(request: web.Request) -> web.Response:
        hits[request.query.get("run", "")] += 1
        await asyncio.sleep(0.02)
        return web.json_response({"errorRate": 0.01})

    app = web.Application()
    app.router.add_get("/metric", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/metric", hits


@pytest.mark.slow
async def test_kill9_replica_runs_are_taken_over_after_lease_expiry(
    tmp_path: Path, pg_store_url: str
) -> None:
    write_secret(tmp_path, "hooks", "hmac-key", KEY, namespace="lab")
    config = tmp_path / "analysisd.yaml"
    config.write_text("leaseDuration: 2\nwebhookPollInterval: 0.05\nwebhookBackoffBase: 0.05\n")
    runs = 10
    names = [f"run-{i:02d}" for i in range(runs)]
    runner, metric_url, hits = await _metric_endpoint()
    try:
        async with receiver() as rec, aiohttp.ClientSession(timeout=_CLIENT_TIMEOUT) as session:
            secrets = tmp_path / "secrets"
            survivor = await start_daemon(
                pg_store_url,
                secrets,
                tmp_path / "b.log",
                config=config,
                env={"ANALYSISD_REPLICA_ID": "replica-b"},
            )
            victim = await start_daemon(
                pg_store_url,
                secrets,
                tmp_path / "a.log",
                config=config,
                env={"ANALYSISD_REPLICA_ID": "replica-a"},
            )
            try:
                for name in names:
                    provider = {
                        "web": {"url": f"{metric_url}?run={name}", "jsonPath": "{$.errorRate}"}
                    }
                    async with session.post(
                        f"{victim.base}/api/v1/namespaces/lab/analysisruns",
                        json=_manifest(name, rec.url, provider),
                    ) as resp:
                        assert resp.status == 201, await resp.text()
                await rec.wait_for(lambda r: len(r.by_type(MEASUREMENT_EVENT)) >= runs)
                await victim.kill9()
                assert len(rec.unique_ids(COMPLETED_EVENT)) < runs  # really killed mid-run

                items = await wait_all_completed(session, survivor.base, "lab", runs, limit=40)
                assert {i["status"]["phase"] for i in items} == {"Successful"}
                for item in items:
                    assert item["status"]["metricResults"][0]["count"] == COUNT
                counts = await _history_counts(session, survivor.base, names)
                assert counts == dict.fromkeys(names, COUNT)
                await rec.wait_for(lambda r: len(r.unique_ids(COMPLETED_EVENT)) == runs, 30)
            finally:
                if victim.process.returncode is None:
                    await victim.kill9()
                assert await survivor.terminate() == 0
            log_b = (tmp_path / "b.log").read_text()
            assert log_b.count('"claimed"') == runs  # the survivor took over every run
        _one_verdict_per_run(rec, names)
        assert set(hits) == set(names)
    finally:
        await runner.cleanup()
