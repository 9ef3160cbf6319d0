"""GET .../analysisruns/{name}/events: the run's changes as server-sent events.

The stream opens with the run as stored (`event: status`), then one event per
measurement (`measurement`) and per phase change (`phase`), and ends with
`completed` (the final status). Subscribing before reading the stored run means
no change can fall between the two.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from analysisd.api.bodies import path_name, path_namespace
from analysisd.api.context import context
from analysisd.api.errors import ApiError

HEARTBEAT_SECONDS = 15.0


def sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def run_events(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    namespace, name = path_namespace(request), path_name(request)
    queue = ctx.hub.subscribe(namespace, name)
    try:
        record = await ctx.store.get_run(namespace, name)
        if record is None:
            raise ApiError(404, f'AnalysisRun "{name}" not found in namespace "{namespace}"')
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        await response.write(sse("status", record.manifest()))
        if record.completed:
            await response.write(sse("completed", record.status or {}))
            return response
        while True:
            try:
                async with asyncio.timeout(HEARTBEAT_SECONDS):  # not wait_for (see outbox)
                    event, data = await queue.get()
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            await response.write(sse(event, data))
            if event == "completed":
                return response
    finally:
        ctx.hub.unsubscribe(namespace, name, queue)
