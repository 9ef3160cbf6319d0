"""A receiver in back-off (or with a full queue) has its due rows left out of the fetch.

Store level, on both backends: `due_deliveries(skip=...)` leaves out every row under a
skipped receiver's scheme://netloc (and only those: another port, a host that a LIKE
wildcard would match, stay in), the rows left out are untouched and come back once no
longer skipped; on PostgreSQL a row this replica claimed already still comes back (its
claim is renewed while the replica holds it).

Deliverer level, on the real SQLite store: a refusing receiver's older rows are due
ahead of a good receiver's; once it has failed, no fetch returns its rows, the good
receiver's rows are fetched and delivered, and the dead receiver's rows the deliverer
never looked at are still pending and untouched (nothing written, nothing lost).
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from pathlib import Path

import pytest

from analysisd.engine.measure import NoSecrets
from analysisd.outbox import Deliverer, DeliveryPolicy
from analysisd.store import OutboxRow, PostgresStore, SqliteStore, Store
from tests.e2e.rig import Receiver, receiver
from tests.rigs.postgres import scratch_schema

DEAD = "http://127.0.0.1:80"
Opener = Callable[[str], Awaitable[Store]]


@pytest.fixture(params=["sqlite", "postgres"])
async def opener(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Opener]:
    """Opens stores of one backend on one database (PostgreSQL: one owner per store)."""
    opened: list[Store] = []
    if request.param == "sqlite":

        async def open_sqlite(owner: str) -> Store:
            store = SqliteStore(tmp_path / "s.db")
            await store.open()
            opened.append(store)
            return store

        try:
            yield open_sqlite
        finally:
            for store in opened:
                await store.aclose()
        return
    async with scratch_schema("skip") as schema:

        async def open_pg(owner: str) -> Store:
            store = PostgresStore(schema.url, owner=owner)
            await store.open()
            opened.append(store)
            return store

        try:
            yield open_pg
        finally:
            for store in opened:
                await store.aclose()


def _row(event_id: str, target: str, at: float) -> OutboxRow:
    return OutboxRow(
        event_id, target, None, "ns", "r", "t", "{}", created_at=at, next_attempt_at=at
    )


async def _add(store: Store, rows: list[OutboxRow], name: str = "r") -> None:
    manifest = {"metadata": {"name": name}}
    await store.create_run("ns", name, "uid-" + name, manifest, None, "Pending", {}, "x")
    outbox = [dataclasses.replace(row, name=name) for row in rows]
    await store.record_change(
        "ns", name, status={}, phase="Running", completed=False, measurements=[], outbox=outbox
    )


async def test_rows_of_a_skipped_receiver_are_left_out_of_the_fetch(opener: Opener) -> None:
    store = await opener("replica-a")
    dead = [
        _row("d-path", f"{DEAD}/hook", 1.0),
        _row("d-bare", DEAD, 2.0),
        _row("d-query", f"{DEAD}?token=x", 3.0),
        _row("d-fragment", f"{DEAD}#x", 4.0),
        _row("d-odd", "http://a_b:1/hook", 5.0),
    ]
    alive = [
        _row("other-port", "http://127.0.0.1:8080/hook", 10.0),
        _row("wildcard-host", "http://axb:1/hook", 11.0),
        _row("longer-host", "http://127.0.0.1:80.example/hook", 12.0),
    ]
    await _add(store, dead + alive)
    # Oldest first: without skipping, the dead receiver's rows fill a fetch of 5.
    assert [r.event_id for r in await store.due_deliveries(100.0, 5)] == [r.event_id for r in dead]
    if isinstance(store, PostgresStore):
        await store.release_deliveries()  # not held any more (see the next test)
    skip = {DEAD, "http://a_b:1"}
    fetched = await store.due_deliveries(100.0, 5, skip=skip)
    assert [r.event_id for r in fetched] == [r.event_id for r in alive]
    for row in fetched:
        await store.record_attempt(
            row, state="delivered", at=100.0, next_attempt_at=100.0, status=200, error=None
        )
    assert await store.due_deliveries(100.0, 5, skip=skip) == []
    # Left out, not touched: once the receiver is no longer skipped, all come back as new.
    back = await store.due_deliveries(100.0, 10)
    assert [r.event_id for r in back] == [r.event_id for r in dead]
    assert all(r.attempts == 0 and r.last_error is None for r in back)


async def test_a_skipped_receivers_rows_are_postponed_in_one_statement(opener: Opener) -> None:
    store = await opener("replica-a")
    await _add(
        store,
        [
            _row("d-due", f"{DEAD}/hook", 1.0),
            _row("d-soon", f"{DEAD}?x=1", 150.0),
            _row("d-later", f"{DEAD}/hook", 900.0),
            _row("other", "http://127.0.0.1:8080/hook", 2.0),
        ],
    )
    assert await store.postpone_deliveries({DEAD}, 500.0) == 2
    assert [r.event_id for r in await store.due_deliveries(100.0, 10)] == ["other"]
    rows = {r.event_id: r for r in await store.deliveries("ns", "r")}
    assert rows["d-due"].next_attempt_at == rows["d-soon"].next_attempt_at == 500.0
    assert rows["d-later"].next_attempt_at == 900.0  # never brought forward
    assert all(r.attempts == 0 and r.last_error is None for r in rows.values())
    if isinstance(store, PostgresStore):
        await store.release_deliveries()
    # Due again at the time given, still new: nothing lost, nothing marked.
    again = await store.due_deliveries(500.0, 10)
    assert [r.event_id for r in again] == ["other", "d-due", "d-soon"]


async def test_postgres_keeps_claiming_the_rows_this_replica_holds(tmp_path: Path) -> None:
    async with scratch_schema("skip") as schema:
        a = PostgresStore(schema.url, owner="replica-a")
        b = PostgresStore(schema.url, owner="replica-b")
        await a.open()
        await b.open()
        try:
            await _add(a, [_row("held", f"{DEAD}/hook", 1.0), _row("new", f"{DEAD}/hook", 2.0)])
            assert [r.event_id for r in await a.due_deliveries(100.0, 1)] == ["held"]
            # a holds "held" (queued, say) and skips its receiver: the claim is renewed,
            # the receiver's other row is left for later, and b may not take either.
            renewed = await a.due_deliveries(100.0 + 30.0, 10, skip={DEAD})
            assert [r.event_id for r in renewed] == ["held"]
            assert await b.due_deliveries(100.0 + 61.0, 10, skip={DEAD}) == []
            assert [r.event_id for r in await b.due_deliveries(100.0 + 61.0, 10)] == ["new"]
        finally:
            await a.aclose()
            await b.aclose()


class Recording(SqliteStore):
    """The real SQLite store; every fetch is kept: what was skipped, what came back."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.fetches: list[tuple[frozenset[str], list[str]]] = []

    async def due_deliveries(
        self, now: float, limit: int = 100, *, skip: Collection[str] = ()
    ) -> list[OutboxRow]:
        rows = await super().due_deliveries(now, limit, skip=skip)
        self.fetches.append((frozenset(skip), [r.event_id for r in rows]))
        return rows


def _ids(rec: Receiver) -> set[str]:
    return {d.headers["Ce-Id"] for d in rec.deliveries}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_a_failed_receivers_due_rows_are_not_fetched_ahead_of_others(
    tmp_path: Path,
) -> None:
    refused = f"http://127.0.0.1:{_closed_port()}/hook"
    store = Recording(tmp_path / "s.db")
    await store.open()
    # Back-off far beyond the test: the refusing receiver stays failed throughout.
    policy = DeliveryPolicy(
        poll_interval=0.01,
        batch=5,
        per_target=1,
        queue_per_target=2,
        backoff_base=600.0,
        backoff_max=600.0,
    )
    try:
        # Created a minute ago (well within the max age), a's before b's.
        start = time.time() - 60.0
        await _add(store, [_row(f"a{i:02}", refused, start + i) for i in range(20)], "a")
        async with (
            receiver() as good,
            Deliverer(store, NoSecrets(), policy=policy, rand=lambda: 0.5),
        ):
            async with asyncio.timeout(20):
                while not any(  # noqa: ASYNC110
                    r.attempts and r.last_error and "deferred" not in r.last_error
                    for r in await store.deliveries("ns", "a")
                ):
                    await asyncio.sleep(0.01)
            seen = len(store.fetches)
            # b's rows come due after a's 20, which are all still due (oldest first).
            await _add(store, [_row(f"b{i}", good.url, start + 30.0 + i) for i in range(3)], "b")
            async with asyncio.timeout(20):
                while len(_ids(good)) < 3:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
        after = store.fetches[seen:]
        assert after, "the deliverer fetched after a's receiver failed"
        a_fetched = [ids for skip, ids in after if any(i.startswith("a") for i in ids)]
        assert a_fetched == []  # a's due rows were never read again ahead of b's
        assert all(skip for skip, _ in after)  # a's receiver was skipped in every fetch
        assert sorted(_ids(good)) == ["b0", "b1", "b2"]
        rows = {r.event_id: r for r in await store.deliveries("ns", "a")}
        assert all(r.state == "pending" for r in rows.values())  # none lost, none sent
        # What the first fetch did not return was never attempted nor deferred.
        first_fetch = set(store.fetches[0][1])
        untouched = [r for i, r in rows.items() if i not in first_fetch]
        assert len(untouched) == 15 and all(r.attempts == 0 for r in untouched)
    finally:
        await store.aclose()
