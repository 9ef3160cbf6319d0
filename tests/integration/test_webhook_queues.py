"""Per-receiver webhook queues: a hanging receiver holds its own slots only.

A receiver that accepts the POST and never answers has dozens of events queued
for it; another receiver's events all arrive while every request to the hanging
one is still open (so nothing waited for its timeouts), and the hanging one never
has more than its share of requests in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from aiohttp import web

from analysisd.outbox import CALLBACK_URL, DeliveryPolicy
from tests.e2e.rig import (
    ScriptedSource,
    receiver,
    run_manifest,
    running_daemon,
    scripted_metric,
    settings_for,
)

PER_TARGET = DeliveryPolicy().per_target


class Hanging:
    def __init__(self) -> None:
        self.url = ""
        self.open = 0
        self.most_open = 0
        self.answered = 0
        self.release = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            await self.release.wait()
        finally:
            self.open -= 1
        self.answered += 1
        return web.Response(status=200)


@asynccontextmanager
async def hanging() -> AsyncIterator[Hanging]:
    hang = Hanging()
    app = web.Application()
    app.router.add_post("/hook", hang.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    hang.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        yield hang
    finally:
        hang.release.set()
        await runner.cleanup()


async def test_a_hanging_receiver_delays_only_its_own_events(tmp_path: Path) -> None:
    # The hanging receiver's requests outlive the test: nothing may wait for them.
    settings = settings_for(tmp_path, webhook_timeout=600.0)
    async with (
        hanging() as hang,
        receiver() as good,
        running_daemon(settings, ScriptedSource()) as (_, base),
        aiohttp.ClientSession() as s,
    ):
        url = f"{base}/api/v1/namespaces/ns/analysisruns"
        for i in range(30):
            body = run_manifest(f"h{i}", [scripted_metric()], annotations={CALLBACK_URL: hang.url})
            async with s.post(url, json=body) as resp:
                assert resp.status == 201
        async with asyncio.timeout(30):
            while hang.open < PER_TARGET:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        for i in range(10):
            body = run_manifest(f"g{i}", [scripted_metric()], annotations={CALLBACK_URL: good.url})
            async with s.post(url, json=body) as resp:
                assert resp.status == 201
        # Each run: one measurement event and one completion.
        await good.wait_for(lambda r: len(r.unique_ids()) == 20)
        assert hang.answered == 0  # every request to it is still open
        assert hang.most_open == PER_TARGET
