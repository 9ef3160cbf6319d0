"""Group commit in both store backends (SQLite; PostgreSQL when reachable), and the
SQLite store's live runs served from memory.

- writes queued together share one transaction, and each caller hears its own outcome
  (created, Conflict, LimitExceeded, fenced off) only once its write is committed: a
  second connection to the database sees it at that moment;
- one failing write in a batch fails only its own caller; the others are committed;
- a caller cancelled while waiting does not undo its write, and what the store serves
  from memory still follows it;
- the manifest served (from memory while the run is live) is the committed one, after
  every kind of write; PostgreSQL replicas read the database, so a run terminated or
  deleted through another replica is never served stale.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from analysisd.store import (
    Conflict,
    LeaseLost,
    LimitExceeded,
    OutboxRow,
    PostgresStore,
    SqliteStore,
    StoredMeasurement,
)
from analysisd.store.base import GroupCommit
from tests.rigs.postgres import scratch_schema

Store = SqliteStore | PostgresStore
Opener = Callable[[], Awaitable[Store]]
# Counts rows through a connection of its own: what any other reader sees right now.
Counter = Callable[[str], Awaitable[int]]


@pytest.fixture(params=["sqlite", "postgres"])
async def backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Opener, Counter]]:
    if request.param == "sqlite":
        path = tmp_path / "s.db"

        async def open_sqlite() -> Store:
            store = SqliteStore(path)
            await store.open()
            return store

        async def count_sqlite(sql: str) -> int:
            with sqlite3.connect(path) as conn:
                return int(conn.execute(sql).fetchone()[0])

        yield open_sqlite, count_sqlite
        return
    async with scratch_schema("g") as schema:

        async def open_pg() -> Store:
            store = PostgresStore(schema.url, owner="replica-a")
            await store.open()
            return store

        one_at_a_time = asyncio.Lock()  # one admin connection

        async def count_pg(sql: str) -> int:
            async with one_at_a_time:
                query = sql.replace("FROM ", f"FROM {schema.name}.")
                return int(await schema.admin.fetchval(query))

        yield open_pg, count_pg


async def _create(store: Store, name: str, *, max_active: int | None = None) -> None:
    await store.create_run(
        "ns",
        name,
        f"uid-{name}",
        {"metadata": {"name": name, "namespace": "ns"}, "spec": {}},
        None,
        "Pending",
        {},
        "2026-01-01T00:00:00Z",
        max_active=max_active,
    )


def _measurement(value: str) -> StoredMeasurement:
    return StoredMeasurement("m", "Successful", False, {"phase": "Successful", "value": value})


def _event(event_id: str, name: str) -> OutboxRow:
    return OutboxRow(event_id, "http://127.0.0.1:1/hook", None, "ns", name, "t", "{}")


async def _change(store: Store, name: str, value: str, *, completed: bool = False) -> bool:
    phase = "Successful" if completed else "Running"
    return await store.record_change(
        "ns",
        name,
        status={"phase": phase, "value": value},
        phase=phase,
        completed=completed,
        measurements=[_measurement(value)],
        outbox=[_event(f"{name}-{value}", name)],
        uid=f"uid-{name}",
    )


async def test_writes_queued_together_share_a_transaction_and_hear_their_own_outcome(
    backend: tuple[Opener, Counter],
) -> None:
    opener, count = backend
    store = await opener()
    try:
        await _create(store, "taken")
        before = store.group.batches
        names = [f"r{i}" for i in range(40)]
        outcomes = await asyncio.gather(
            *(_create(store, name, max_active=30) for name in names),
            _create(store, "taken"),
            return_exceptions=True,
        )
        created = [n for n, o in zip(names, outcomes, strict=False) if o is None]
        refused = [o for o in outcomes[:40] if isinstance(o, LimitExceeded)]
        # 30 unfinished at most: "taken" and 29 of the batch; the rest hear the limit.
        assert len(created) == 29 and len(refused) == 11
        assert isinstance(outcomes[-1], Conflict)
        assert store.group.batches - before < 41 // 2  # batched, not one transaction each
        assert await count("SELECT COUNT(*) FROM runs") == 30

        before = store.group.batches
        written = await asyncio.gather(*(_change(store, name, "1") for name in created))
        assert all(written)
        assert store.group.batches - before < len(created) // 2
        assert await count("SELECT COUNT(*) FROM measurements") == len(created)
        assert await count("SELECT COUNT(*) FROM outbox") == len(created)
    finally:
        await store.aclose()


async def test_a_caller_hears_of_its_write_only_once_it_is_committed(
    backend: tuple[Opener, Counter],
) -> None:
    opener, count = backend
    store = await opener()
    try:
        seen: list[int] = []

        async def create_then_look(name: str) -> None:
            await _create(store, name)
            seen.append(await count(f"SELECT COUNT(*) FROM runs WHERE name='{name}'"))

        await asyncio.gather(*(create_then_look(f"r{i}") for i in range(10)))
        assert seen == [1] * 10
    finally:
        await store.aclose()


async def test_one_failing_write_fails_only_its_caller(backend: tuple[Opener, Counter]) -> None:
    opener, count = backend
    store = await opener()
    try:
        await asyncio.gather(*(_create(store, f"r{i}") for i in range(6)))
        bad = StoredMeasurement("m", "Successful", False, {"x": object()})  # not JSON

        async def failing() -> bool:
            return await store.record_change(
                "ns",
                "r3",
                status={"phase": "Running"},
                phase="Running",
                completed=False,
                measurements=[_measurement("1"), bad],
                outbox=[],
            )

        outcomes = await asyncio.gather(
            *(_change(store, f"r{i}", "1") for i in range(6) if i != 3),
            failing(),
            return_exceptions=True,
        )
        assert outcomes[:5] == [True] * 5
        assert isinstance(outcomes[5], TypeError)
        assert await count("SELECT COUNT(*) FROM measurements") == 5
        assert await count("SELECT COUNT(*) FROM runs WHERE phase='Running'") == 5
    finally:
        await store.aclose()


async def test_a_write_failing_inside_a_batch_rolls_back_only_itself() -> None:
    """The engine of both backends: a batch whose commit raises RolledBack is retried one
    write at a time; an error at COMMIT itself is every write's and nothing is retried."""
    committed: list[list[str]] = []

    async def commit(ops: list[str]) -> list[str]:
        from analysisd.store.base import RolledBack

        if "bad" in ops:
            raise RolledBack("boom") from ValueError(f"bad write among {len(ops)}")
        if "lost-commit" in ops:
            raise ConnectionError("connection lost during COMMIT")
        committed.append(ops)
        return [op.upper() for op in ops]

    group: GroupCommit[str] = GroupCommit(commit)
    outcomes = await asyncio.gather(
        group.run("a"), group.run("bad"), group.run("b"), return_exceptions=True
    )
    assert outcomes[0] == "A" and outcomes[2] == "B"
    assert isinstance(outcomes[1], ValueError)
    assert committed == [["a"], ["b"]]  # retried one by one after the rollback
    committed.clear()
    outcomes = await asyncio.gather(
        group.run("c"), group.run("lost-commit"), return_exceptions=True
    )
    assert all(isinstance(o, ConnectionError) for o in outcomes)
    assert committed == []  # not retried: the commit may have taken effect


async def test_a_cancelled_caller_does_not_undo_its_write(backend: tuple[Opener, Counter]) -> None:
    opener, count = backend
    store = await opener()
    try:
        await _create(store, "r")
        change = asyncio.ensure_future(_change(store, "r", "7"))
        await asyncio.sleep(0)  # queued
        change.cancel()
        with pytest.raises(asyncio.CancelledError):
            await change
        await store.group.drain()
        assert await count("SELECT COUNT(*) FROM measurements") == 1
        text = await store.run_manifest("ns", "r")
        assert text is not None and json.loads(text)["status"]["value"] == "7"
    finally:
        await store.aclose()


async def _served(store: Store, name: str) -> dict[str, Any] | None:
    text = await store.run_manifest("ns", name)
    return None if text is None else json.loads(text)


async def _stored(store: Store, name: str) -> dict[str, Any] | None:
    record = await store.get_run("ns", name)
    return None if record is None else record.manifest()


async def test_the_manifest_served_is_the_committed_one_after_every_write(
    backend: tuple[Opener, Counter],
) -> None:
    opener, _ = backend
    store = await opener()
    try:
        await _create(store, "r")
        assert await _served(store, "r") == await _stored(store, "r")
        assert await _change(store, "r", "1")
        served = await _served(store, "r")
        assert served == await _stored(store, "r")
        assert served is not None and served["status"]["value"] == "1"
        record = await store.get_run("ns", "r")
        assert record is not None
        await store.mark_terminate("ns", "r", {**record.body, "spec": {"terminate": True}})
        served = await _served(store, "r")
        assert served == await _stored(store, "r")
        assert served is not None and served["spec"] == {"terminate": True}
        assert await _change(store, "r", "2", completed=True)
        assert await _served(store, "r") == await _stored(store, "r")
        assert await store.delete_run("ns", "r")
        assert await _served(store, "r") is None
    finally:
        await store.aclose()


async def test_sqlite_serves_live_runs_from_memory_and_finished_ones_from_the_file(
    tmp_path: Path,
) -> None:
    async with SqliteStore(tmp_path / "s.db") as store:
        await _create(store, "live")
        await _create(store, "done")
        assert await _change(store, "done", "1", completed=True)
        reads = 0
        fetch = store._fetch

        async def counting(sql: str, *params: Any) -> Any:
            nonlocal reads
            reads += 1
            return await fetch(sql, *params)

        store._fetch = counting  # type: ignore[method-assign]
        assert await _served(store, "live") is not None
        assert reads == 0  # from memory
        served = await _served(store, "done")
        assert served is not None and served["status"]["phase"] == "Successful"
        assert reads == 1  # finished: from the file, and not kept
        await _served(store, "done")
        assert reads == 2
    # A restarted store learns a live run on its first read, then serves it from memory.
    async with SqliteStore(tmp_path / "s.db") as again:
        assert await _served(again, "live") is not None
        assert ("ns", "live") in again._live and ("ns", "done") not in again._live
        assert await _change(again, "live", "5")
        served = await _served(again, "live")
        assert served is not None and served["status"]["value"] == "5"


async def test_a_postgres_replica_never_serves_a_run_changed_through_another_stale() -> None:
    async with (
        scratch_schema("g") as schema,
        PostgresStore(schema.url, owner="replica-a") as a,
        PostgresStore(schema.url, owner="replica-b") as b,
    ):
        await _create(a, "r")  # held by a
        assert await _change(a, "r", "1")
        record = await b.get_run("ns", "r")
        assert record is not None
        await b.mark_terminate("ns", "r", {**record.body, "spec": {"terminate": True}})
        served = await _served(a, "r")
        assert served is not None and served["spec"] == {"terminate": True}
        assert await b.delete_run("ns", "r")
        assert await _served(a, "r") is None


async def test_with_several_batches_in_flight_writes_gather_behind_them() -> None:
    """PostgreSQL's setting: up to `in_flight` batches at once, each on its own connection;
    what arrives while all are busy waits for the next batch, none is left behind."""
    release = asyncio.Event()
    batches: list[list[int]] = []

    async def commit(ops: list[int]) -> list[int]:
        batches.append(ops)
        await release.wait()
        return ops

    group: GroupCommit[int] = GroupCommit(commit, in_flight=2)
    first = asyncio.ensure_future(group.run(0))
    await asyncio.sleep(0)
    await asyncio.sleep(0)  # batch [0] in flight
    second = asyncio.ensure_future(group.run(1))
    await asyncio.sleep(0)
    await asyncio.sleep(0)  # batch [1] in flight: both flushers busy
    rest = [asyncio.ensure_future(group.run(i)) for i in range(2, 7)]
    await asyncio.sleep(0)
    assert batches == [[0], [1]]
    release.set()
    assert await asyncio.gather(first, second, *rest) == list(range(7))
    assert sorted(map(len, batches)) == [1, 1, 5]  # the five rode together
    await group.drain()


async def test_postgres_changes_written_together_are_each_fenced() -> None:
    """One batch, one UPDATE for every run's change: a run another replica took away is
    LeaseLost, a deleted one False, and only the written runs get their measurements."""
    async with (
        scratch_schema("g") as schema,
        PostgresStore(schema.url, owner="replica-a") as a,
        PostgresStore(schema.url, owner="replica-b") as b,
    ):
        names = ["r0", "r1", "r2", "r3"]
        for name in names:
            await _create(a, name)
        record = await b.get_run("ns", "r1")
        assert record is not None
        await b.mark_terminate("ns", "r1", record.body)  # b takes r1 from a
        assert await b.delete_run("ns", "r2")
        before = a.group.batches
        outcomes = await asyncio.gather(
            *(_change(a, name, "1") for name in names), return_exceptions=True
        )
        assert a.group.batches - before == 1
        assert outcomes[0] is True and outcomes[3] is True
        assert isinstance(outcomes[1], LeaseLost)
        assert outcomes[2] is False
        counted = await schema.admin.fetch(
            f"SELECT name, COUNT(*) FROM {schema.name}.measurements GROUP BY name ORDER BY name"
        )
        assert [(r[0], r[1]) for r in counted] == [("r0", 1), ("r3", 1)]
        events = await schema.admin.fetchval(f"SELECT COUNT(*) FROM {schema.name}.outbox")
        assert events == 2
        assert ("ns", "r1") not in a.held_leases() and ("ns", "r0") in a.held_leases()
