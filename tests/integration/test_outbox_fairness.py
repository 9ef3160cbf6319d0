"""The deliverer's fetch is not filled forever by one hanging receiver's backlog.

A receiver that never answers has 30 events due before another receiver's 3;
the store hands out 5 due rows at a time (oldest first). The hanging receiver's
surplus is deferred in the store (recorded as such, never sent), so the other
receiver's events are fetched and delivered while the first request still hangs.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager

from aiohttp import web

from analysisd.engine.measure import NoSecrets
from analysisd.outbox import Deliverer, DeliveryPolicy
from analysisd.store.records import OutboxRow


def _under(target: str, prefixes: Collection[str]) -> bool:
    """The target belongs to one of the skipped receivers (scheme://netloc prefixes)."""
    return any(target == p or target.startswith((p + "/", p + "?", p + "#")) for p in prefixes)


class MemoryOutbox:
    """The three OutboxStore calls the deliverer makes, over a dict (oldest due first)."""

    def __init__(self, rows: list[OutboxRow]) -> None:
        self.rows = {(r.event_id, r.target): r for r in rows}

    async def due_deliveries(
        self, now: float, limit: int = 100, *, skip: Collection[str] = ()
    ) -> list[OutboxRow]:
        due = [
            r
            for r in self.rows.values()
            if r.state == "pending" and r.next_attempt_at <= now and not _under(r.target, skip)
        ]
        return sorted(due, key=lambda r: (r.next_attempt_at, r.created_at))[:limit]

    async def postpone_deliveries(self, skip: Collection[str], until: float) -> int:
        rows = [
            r
            for r in self.rows.values()
            if r.state == "pending" and r.next_attempt_at < until and _under(r.target, skip)
        ]
        for r in rows:
            self.rows[(r.event_id, r.target)] = dataclasses.replace(r, next_attempt_at=until)
        return len(rows)

    async def next_delivery_at(self) -> float | None:
        pending = [r.next_attempt_at for r in self.rows.values() if r.state == "pending"]
        return min(pending, default=None)

    async def record_attempt(
        self,
        row: OutboxRow,
        *,
        state: str,
        at: float,
        next_attempt_at: float,
        status: int | None,
        error: str | None,
    ) -> None:
        key = (row.event_id, row.target)
        self.rows[key] = dataclasses.replace(
            self.rows[key],
            state=state,
            attempts=self.rows[key].attempts + 1,
            last_attempt_at=at,
            next_attempt_at=next_attempt_at,
            last_status=status,
            last_error=error,
        )


@asynccontextmanager
async def server(hang: bool) -> AsyncIterator[tuple[str, list[str]]]:
    seen: list[str] = []
    never = asyncio.Event()

    async def handle(request: web.Request) -> web.Response:
        seen.append(request.headers["Ce-Id"])
        if hang:
            await never.wait()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/", handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/", seen
    finally:
        never.set()
        await runner.cleanup()


def row(event_id: str, target: str, created: float) -> OutboxRow:
    return OutboxRow(
        event_id=event_id,
        target=target,
        secret_name=None,
        namespace="ns",
        name="r",
        event_type="io.analysisd.analysisrun.completed",
        body="{}",
        created_at=created,
        next_attempt_at=created,
    )


async def test_a_hanging_receivers_backlog_does_not_hide_other_receivers_rows() -> None:
    async with server(hang=True) as (hanging, hung), server(hang=False) as (good, got):
        rows = [row(f"a{i}", hanging, 1.0 + i) for i in range(30)]
        rows += [row(f"b{i}", good, 100.0 + i) for i in range(3)]
        store = MemoryOutbox(rows)
        policy = DeliveryPolicy(
            timeout=600.0, poll_interval=0.01, batch=5, per_target=1, queue_per_target=2
        )
        async with Deliverer(store, NoSecrets(), policy=policy):
            async with asyncio.timeout(20):
                while len(got) < 3:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
        assert sorted(got) == ["b0", "b1", "b2"]
        assert hung == ["a0"]  # one request in flight, the rest never sent
        deferred = [r for r in store.rows.values() if r.last_error and "deferred" in r.last_error]
        assert deferred and all(r.target == hanging and r.last_status is None for r in deferred)
        assert all(store.rows[(f"b{i}", good)].state == "delivered" for i in range(3))
