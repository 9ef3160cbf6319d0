"""Server-sent events for the pages, fed by the daemon's event hub (the API's SSE source).

The run page's stream sends the page's whole <main> content again after each
change (`page`), drawn by the same function as the page, then `done` once the
run completed. The list page's stream watches the unfinished runs of the page
shown and sends a changed run's row (`row`, empty html: no longer matching the
filter); on the first page new runs are found by counting the namespace's
unfinished runs and reading its newest page (never the whole namespace).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from analysisd.api.bodies import path_name, path_namespace
from analysisd.api.context import ApiContext, context
from analysisd.api.errors import ApiError
from analysisd.api.selectors import Requirement, matches
from analysisd.store import RunRecord, StoredMeasurement
from analysisd.ui import listing
from analysisd.ui.runlist import row_html
from analysisd.ui.runpage import run_main

HEARTBEAT_SECONDS = 15.0
COALESCE_SECONDS = 0.1  # changes that land together are drawn once
LIST_POLL_SECONDS = 0.5
RELIST_EVERY = 20  # polls between full listings (a run shorter than a poll is found here)


def sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def version(record: RunRecord, history: list[StoredMeasurement]) -> str:
    """What the page shows, in a few characters: the stream skips a redraw the page has."""
    text = json.dumps(record.status, sort_keys=True) + f"|{len(history)}|{record.phase}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


async def _open(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    return response


async def run_stream(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    namespace, name = path_namespace(request), path_name(request)
    # Subscribe before reading: no change can fall between the page and the stream.
    queue = ctx.hub.subscribe(namespace, name)
    try:
        record = await ctx.store.get_run(namespace, name)
        if record is None:
            raise ApiError(404, f'AnalysisRun "{name}" not found in namespace "{namespace}"')
        response = await _open(request)
        since = request.query.get("since", "")
        while True:
            history = await ctx.store.measurements(namespace, name)
            current = version(record, history)
            if current != since:
                html = run_main(record, history, datetime.now(UTC))
                await response.write(sse("page", {"html": html, "version": current}))
                since = current
            if record.completed:
                await response.write(sse("done", {"phase": record.phase}))
                return response
            if not await _next_event(request, response, queue):
                return response
            await asyncio.sleep(COALESCE_SECONDS)
            while not queue.empty():
                queue.get_nowait()
            fresh = await ctx.store.get_run(namespace, name)
            if fresh is None:
                await response.write(sse("gone", {}))
                return response
            record = fresh
    finally:
        ctx.hub.unsubscribe(namespace, name, queue)


def _gone(request: web.Request) -> bool:
    # aiohttp does not cancel a handler whose client left: a stream must notice itself,
    # or every page a browser navigated away from would keep polling the store.
    return request.transport is None or request.transport.is_closing()


async def _next_event(
    request: web.Request, response: web.StreamResponse, queue: asyncio.Queue[tuple[str, Any]]
) -> bool:
    """Wait for the run's next event (True), or for the client to leave (False)."""
    waited = 0.0
    while True:
        try:
            async with asyncio.timeout(1.0):  # not wait_for: it can swallow a cancel (3.11)
                await queue.get()
            return True
        except TimeoutError:
            if _gone(request):
                return False
            waited += 1.0
            if waited >= HEARTBEAT_SECONDS:
                await response.write(b": keep-alive\n\n")
                waited = 0.0


class _Watch:
    """The hub subscriptions of one list stream, one per unfinished run."""

    def __init__(self, ctx: ApiContext, namespace: str) -> None:
        self.ctx, self.namespace = ctx, namespace
        self.queues: dict[str, asyncio.Queue[tuple[str, Any]]] = {}

    def add(self, name: str) -> None:
        if name not in self.queues:
            self.queues[name] = self.ctx.hub.subscribe(self.namespace, name)

    def drop(self, name: str) -> None:
        queue = self.queues.pop(name, None)
        if queue is not None:
            self.ctx.hub.unsubscribe(self.namespace, name, queue)

    def changed(self) -> list[str]:
        names = []
        for name, queue in self.queues.items():
            if not queue.empty():
                while not queue.empty():
                    queue.get_nowait()
                names.append(name)
        return names

    def close(self) -> None:
        for name in list(self.queues):
            self.drop(name)


async def list_stream(
    request: web.Request,
    keep: Callable[[RunRecord], bool],
    selector: list[Requirement],
    phase: str,
    number: int,
) -> web.StreamResponse:
    """Rows of the page shown (`number`) as they change; on page 1 also new runs."""
    ctx = context(request)
    namespace = path_namespace(request)
    watch = _Watch(ctx, namespace)
    try:
        shown = await listing.run_page(ctx, namespace, phase, selector, number)
        seen = {record.name for record in shown.rows}
        for record in shown.rows:
            if not record.completed:
                watch.add(record.name)
        response = await _open(request)
        known = await ctx.store.count_runs_in(namespace)
        idle, polls = 0.0, 0
        while True:
            await asyncio.sleep(LIST_POLL_SECONDS)
            if _gone(request):
                return response
            polls += 1
            names = watch.changed()
            # New runs are the newest: on a change in the count of unfinished runs (cheap),
            # or every RELIST_EVERY polls (a run shorter than a poll), read the newest page.
            unfinished = await ctx.store.count_runs_in(namespace)
            if number == 1 and (unfinished != known or polls % RELIST_EVERY == 0):
                known = unfinished
                _, newest = await ctx.store.list_runs_newest(
                    namespace, phase or None, limit=listing.PAGE_SIZE
                )
                for record in reversed(newest):  # oldest first: the page inserts on top
                    if record.name not in seen:
                        seen.add(record.name)
                        names.append(record.name)
                        if not record.completed:
                            watch.add(record.name)
            for name in names:
                await _send_row(ctx, response, namespace, name, watch, keep, selector)
            idle = 0.0 if names else idle + LIST_POLL_SECONDS
            if idle >= HEARTBEAT_SECONDS:
                await response.write(b": keep-alive\n\n")
                idle = 0.0
    finally:
        watch.close()


async def _send_row(
    ctx: ApiContext,
    response: web.StreamResponse,
    namespace: str,
    name: str,
    watch: _Watch,
    keep: Callable[[RunRecord], bool],
    selector: list[Requirement],
) -> None:
    record = await ctx.store.get_run(namespace, name)
    if record is None or record.completed:
        watch.drop(name)
    html = ""
    if record is not None and keep(record) and matches(selector, record.labels):
        html = row_html(record, datetime.now(UTC))
    await response.write(sse("row", {"name": name, "html": html}))
