"""Verdicts out: signed CloudEvents from the outbox to a real receiver, retried until acked."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from analysisd.config import Subscription
from analysisd.outbox import CALLBACK_SECRET, CALLBACK_URL, COMPLETED_EVENT, MEASUREMENT_EVENT
from tests.e2e.rig import (
    Receiver,
    ScriptedSource,
    receiver,
    run_manifest,
    running_daemon,
    scripted_metric,
    settings_for,
    write_secret,
)

KEY = "s3cr3t-hmac-key"


def _hooked(name: str, rec: Receiver, count: int = 2) -> dict[str, object]:
    return run_manifest(
        name,
        [scripted_metric(count=count)],
        annotations={CALLBACK_URL: rec.url, CALLBACK_SECRET: "hooks"},
    )


async def test_completed_run_delivers_signed_cloudevents(tmp_path: Path) -> None:
    write_secret(tmp_path, "hooks", "hmac-key", KEY + "\n")
    async with (
        receiver() as rec,
        running_daemon(settings_for(tmp_path), ScriptedSource()) as (_, base),
        aiohttp.ClientSession() as s,
    ):
        async with s.post(
            f"{base}/api/v1/namespaces/ns/analysisruns", json=_hooked("r", rec)
        ) as resp:
            assert resp.status == 201
        await rec.wait_for(lambda r: r.by_type(COMPLETED_EVENT))
        await rec.wait_for(lambda r: len(r.by_type(MEASUREMENT_EVENT)) == 2)
        completed = rec.by_type(COMPLETED_EVENT)[0]
        assert completed.signed_with(KEY)
        assert not completed.signed_with("wrong-key")
        event = completed.event
        assert event["specversion"] == "1.0"
        assert event["subject"] == "ns/r"
        assert event["datacontenttype"] == "application/json"
        assert event["data"]["phase"] == "Successful"
        assert completed.headers["Content-Type"] == "application/cloudevents+json"
        measurement = rec.by_type(MEASUREMENT_EVENT)[0].event
        assert measurement["metricname"] == "m"
        assert measurement["data"]["phase"] == "Successful"
        assert len(rec.unique_ids()) == 3
        # The receiver has the POST before the deliverer records it: poll for the record.
        async with asyncio.timeout(10):
            while True:
                async with s.get(f"{base}/api/v1/namespaces/ns/analysisruns/r/deliveries") as resp:
                    items = (await resp.json())["items"]
                if {i["state"] for i in items} == {"delivered"}:
                    break
                await asyncio.sleep(0.02)
        assert KEY not in str(items)


async def test_receiver_down_then_up_gets_every_pending_delivery(tmp_path: Path) -> None:
    write_secret(tmp_path, "hooks", "hmac-key", KEY)
    async with (
        receiver() as rec,
        running_daemon(settings_for(tmp_path), ScriptedSource()) as (_, base),
        aiohttp.ClientSession() as s,
    ):
        rec.status = 503
        for i in range(5):
            async with s.post(
                f"{base}/api/v1/namespaces/ns/analysisruns", json=_hooked(f"r{i}", rec)
            ) as resp:
                assert resp.status == 201
        await rec.wait_for(lambda r: r.refused >= 20)  # retried: more refusals than events
        async with s.get(f"{base}/api/v1/namespaces/ns/analysisruns/r0/deliveries") as resp:
            items = (await resp.json())["items"]
        assert any(i["state"] == "pending" and i["lastStatus"] == 503 for i in items)
        rec.status = 200
        await rec.wait_for(lambda r: len(r.unique_ids(COMPLETED_EVENT)) == 5)
        await rec.wait_for(lambda r: len(r.unique_ids()) == 15)
        assert all(d.signed_with(KEY) for d in rec.deliveries)


async def test_daemon_wide_subscription_receives_events_of_unannotated_runs(tmp_path: Path) -> None:
    async with receiver() as rec:
        settings = settings_for(
            tmp_path, subscriptions=(Subscription(rec.url, None, (COMPLETED_EVENT,)),)
        )
        async with (
            running_daemon(settings, ScriptedSource()) as (_, base),
            aiohttp.ClientSession() as s,
        ):
            manifest = run_manifest("plain", [scripted_metric(count=2)])
            async with s.post(f"{base}/api/v1/namespaces/ns/analysisruns", json=manifest) as resp:
                assert resp.status == 201
            await rec.wait_for(lambda r: r.by_type(COMPLETED_EVENT))
        assert rec.by_type(MEASUREMENT_EVENT) == []  # filtered by the subscription's types
        assert "X-Analysisd-Signature" not in rec.deliveries[0].headers


async def test_delivery_older_than_max_age_is_marked_dead(tmp_path: Path) -> None:
    async with receiver() as rec:
        rec.status = 500
        settings = settings_for(tmp_path, webhook_max_age=0.3)
        async with (
            running_daemon(settings, ScriptedSource()) as (_, base),
            aiohttp.ClientSession() as s,
        ):
            manifest = run_manifest("r", [scripted_metric()], annotations={CALLBACK_URL: rec.url})
            async with s.post(f"{base}/api/v1/namespaces/ns/analysisruns", json=manifest) as resp:
                assert resp.status == 201
            async with asyncio.timeout(20):
                while True:
                    async with s.get(
                        f"{base}/api/v1/namespaces/ns/analysisruns/r/deliveries"
                    ) as resp:
                        items = (await resp.json())["items"]
                    if items and all(i["state"] == "dead" for i in items):
                        break
                    await asyncio.sleep(0.05)
        assert all(i["attempts"] >= 1 and "HTTP 500" in i["lastError"] for i in items)
