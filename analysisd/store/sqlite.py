"""The SQLite store (aiosqlite): one connection, one writer at a time, WAL journal.

Every write that belongs to one state change of a run (its status, its new
measurements and the outbox events announcing them) happens in one transaction,
so a crash leaves either all of it or none of it. One replica uses a file, so it
holds every run: this store does not implement Leasing.

Writes to runs go through group commit (base.GroupCommit): the creates, status
changes, terminations and deletions queued while the previous batch was being
written are written together, in one transaction run in one hop to the
connection's thread (a hop costs more than the statements). Each caller hears of
its write after COMMIT.

Live runs are served from memory: the file lock keeps every other process off the
file, so every write to a run passes through this object, which keeps the manifest
text (body + status, as committed) of each unfinished run it has written or read.
A read of a live run is then a dictionary lookup; a finished run is read from the
file.

For the same reason the number of unfinished runs of a namespace (the limit on active
runs) is counted once, by the first insert into that namespace, and then kept in step by
this object's own writes (inserts, completions, deletions): counting them at every insert
read the whole namespace's index (about 35 us a create at 1,000 unfinished runs, 175 us at
5,000, on the connection's thread).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from analysisd.store.base import (
    INSERT_MEASUREMENT,
    INSERT_OUTBOX,
    GroupCommit,
    RolledBack,
    Row,
    StoreError,
    Tx,
    receiver_patterns,
)
from analysisd.store.filelock import FileLock
from analysisd.store.records import (
    OUTBOX_COLUMNS,
    NewRun,
    OutboxRow,
    RunChange,
    RunKey,
    dumps,
    now_iso,
    outbox_from_row,
    splice_manifest,
)
from analysisd.store.sql import SqlStore

# Unfinished runs whose manifest text is kept in memory (beyond it, reads go to the file).
LIVE_MAX = 100_000

_INSERT_RUN = (
    "INSERT INTO runs (namespace, name, uid, body, status, phase, completed, labels,"
    " created_at, updated_at, owner, epoch) VALUES (?,?,?,?,?,?,0,?,?,?,?,0)"
    " ON CONFLICT (namespace, name) DO NOTHING"
)
_COUNT_UNFINISHED = "SELECT COUNT(*) FROM runs WHERE namespace=? AND completed=0"
_RUN_COMPLETED = "SELECT completed FROM runs WHERE namespace=? AND name=?"


class _Unfinished:
    """The unfinished runs per namespace as one batch's transaction sees them: a namespace
    is counted the first time a write needs it, and the batch's inserts, completions and
    deletions move its count; the counts are the store's once the batch is committed."""

    __slots__ = ("_committed", "_conn", "changed")

    def __init__(self, conn: sqlite3.Connection, committed: dict[str, int]) -> None:
        self._conn = conn
        self._committed = committed
        self.changed: dict[str, int] = {}

    def known(self, namespace: str) -> bool:
        return namespace in self.changed or namespace in self._committed

    def count(self, namespace: str) -> int:
        found = self.changed.get(namespace)
        if found is None:
            found = self._committed.get(namespace)
            if found is None:
                row = self._conn.execute(_COUNT_UNFINISHED, (namespace,)).fetchone()
                found = int(row[0])
            self.changed[namespace] = found
        return found

    def add(self, namespace: str, delta: int) -> None:
        """A run of `namespace` began (+1) or stopped (-1) being unfinished; nothing to
        keep for a namespace not counted yet (its first count will see the row)."""
        if self.known(namespace):
            self.changed[namespace] = self.count(namespace) + delta


@dataclass(frozen=True, slots=True)
class _Write:
    """One write of a batch: `run` on the connection's thread inside the batch's
    transaction (returns the outcome, raises only on a fault; keeps the batch's count of
    unfinished runs in step); `after` on the loop once the batch is committed, with that
    outcome (keeps the live runs in step)."""

    run: Callable[[sqlite3.Connection, _Unfinished], Any]
    after: Callable[[Any], None]


_FINISHED = frozenset({"Successful", "Failed", "Error", "Inconclusive"})


def _is_file(path: str) -> bool:
    return path not in (":memory:", "") and not path.startswith("file:")


async def _settled(statement: Awaitable[Any]) -> None:
    """Await a statement to its end even if the caller is cancelled meanwhile; the
    cancel is raised afterwards (see SqliteStore._tx)."""
    task = asyncio.ensure_future(statement)
    cancelled = False
    while not task.done():
        try:
            await asyncio.wait((task,))  # cancelling the wait leaves the task running
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        if not task.cancelled():
            task.exception()  # retrieved: the cancel is what the caller hears about
        raise asyncio.CancelledError
    task.result()


class _SqliteTx:
    """A transaction on the store's one connection."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db

    async def fetch(self, sql: str, *params: Any) -> list[Row]:
        async with self.db.execute(sql, params) as cur:
            return list(await cur.fetchall())

    async def execute(self, sql: str, *params: Any) -> int:
        cur = await self.db.execute(sql, params)
        return cur.rowcount

    async def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        await self.db.executemany(sql, rows)


class SqliteStore(SqlStore):
    """Templates, runs, measurement history and the webhook outbox in one SQLite file."""

    def __init__(self, path: str | Path, *, owner: str = "") -> None:
        self.path = str(path)
        self.owner = owner
        self._db: aiosqlite.Connection | None = None
        self._write = asyncio.Lock()
        # One daemon per file (see store/filelock.py); none for in-memory databases.
        self._lock = FileLock(self.path + ".lock") if _is_file(self.path) else None
        self.group: GroupCommit[_Write] = GroupCommit(self._commit)
        # Unfinished runs -> (body JSON, status JSON or None) as committed; `_generation`
        # counts committed run writes, so a read that raced one is not remembered.
        self._live: dict[RunKey, tuple[str, str | None]] = {}
        self._generation = 0
        # Namespace -> its unfinished runs, as committed (see _Unfinished); only touched
        # under the writer lock (on the connection's thread, or while no batch runs).
        self._unfinished: dict[str, int] = {}

    # ---- lifecycle ----

    async def open(self) -> None:
        try:
            if _is_file(self.path):
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            if self._lock is not None and not self._lock.held:
                self._lock.acquire(f"store sqlite:///{self.path}")
            db = await aiosqlite.connect(self.path, isolation_level=None)
            self._db = db
            # WAL + NORMAL survives a killed process (not a power cut), and keeps readers
            # off the writer's back; a busy timeout covers a second process on the file.
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute("PRAGMA busy_timeout=5000")
            await self._migrate()
        except (OSError, sqlite3.Error) as exc:
            await self.aclose()
            raise StoreError(f"store sqlite:///{self.path}: {exc}") from exc

    async def aclose(self) -> None:
        try:
            if self._db is not None:
                await self.group.drain()
                db, self._db = self._db, None
                self._live.clear()
                self._unfinished.clear()
                await db.close()
        finally:
            if self._lock is not None:
                self._lock.release()

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction; whatever interrupts it (a cancel included), none is
        left open behind the writer lock.

        aiosqlite runs each statement in its thread to the end whether or not the
        awaiting task is still there: a cancel landing while BEGIN was on its way
        returned before BEGIN ran, and the transaction BEGIN then opened was never
        closed (every later write failed to open its own). So BEGIN, COMMIT and
        ROLLBACK are each waited for to the end (_settled), and whether to roll back
        is asked of the connection itself.
        """
        db = self.db
        async with self._write:
            # Whatever the transaction writes (migrations, templates) is not counted.
            self._unfinished.clear()
            try:
                await _settled(db.execute("BEGIN IMMEDIATE"))
                yield db
                await _settled(db.execute("COMMIT"))
            except BaseException:
                if db.in_transaction:
                    await _settled(db.execute("ROLLBACK"))
                raise

    # ---- the primitives SqlStore runs on ----

    async def _fetch(self, sql: str, *params: Any) -> list[Row]:
        return await _SqliteTx(self.db).fetch(sql, *params)

    async def _execute(self, sql: str, *params: Any) -> int:
        # Under the writer lock: on the one connection, a statement run while another
        # task's transaction is open would become part of that transaction.
        async with self._write:
            if "runs" in sql:
                self._unfinished.clear()  # a write the counts do not follow
            cur = await self.db.execute(sql, params)
        return cur.rowcount

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Tx]:
        async with self._tx() as db:
            yield _SqliteTx(db)

    async def _commit(self, writes: list[_Write]) -> list[Any]:
        """A batch of writes in one transaction, in one hop to the connection's thread."""
        db = self.db
        # aiosqlite runs connection calls one at a time on its thread; _execute (its own
        # queueing method) runs a function there, with the sqlite3 connection (_conn).
        conn: sqlite3.Connection = db._conn

        committed = self._unfinished

        def batch() -> list[Any]:
            unfinished = _Unfinished(conn, committed)
            conn.execute("BEGIN IMMEDIATE")
            try:
                outcomes = [write.run(conn, unfinished) for write in writes]
                conn.execute("COMMIT")
                committed.update(unfinished.changed)
            except BaseException as exc:
                # Rolled back, or COMMIT failed (it may have taken effect): count again.
                committed.clear()
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, Exception):
                    raise RolledBack(str(exc)) from exc  # nothing of the batch was written
                raise
            return outcomes

        # Under the writer lock: no other transaction is open on the connection meanwhile.
        # The batch is one call on the thread, so it runs whole (commit or rollback) even
        # if this task is cancelled while waiting for it.
        async with self._write:
            outcomes: list[Any] = await db._execute(batch)  # type: ignore[no-untyped-call]
        self._generation += 1
        for write, outcome in zip(writes, outcomes, strict=True):
            write.after(outcome)
        return outcomes

    def _remember(self, key: RunKey, body: str, status: str | None) -> None:
        if key in self._live or len(self._live) < LIVE_MAX:
            self._live[key] = (body, status)

    # ---- runs ----

    async def run_manifest(self, namespace: str, name: str) -> str | None:
        """The run's manifest text: from memory while it is unfinished, else from the file."""
        key = (namespace, name)
        live = self._live.get(key)
        if live is not None:
            return splice_manifest(*live)
        generation = self._generation
        row = await self._fetchone(
            "SELECT body, status, completed FROM runs WHERE namespace=? AND name=?",
            namespace,
            name,
        )
        if row is None:
            return None
        if not row[2] and generation == self._generation:
            self._remember(key, row[0], row[1])  # no run write landed while we read
        return splice_manifest(row[0], row[1])

    async def _insert_run(self, run: NewRun, max_active: int | None) -> int | None:
        limit = max_active if max_active is not None else -1
        namespace, name = run.namespace, run.name
        key = (namespace, name)
        params = (
            *(namespace, name, run.uid, run.body, run.status, run.phase, run.labels),
            *(run.created_at, run.created_at, self.owner),
        )

        def insert(conn: sqlite3.Connection, unfinished: _Unfinished) -> int | None:
            # Nothing is inserted when the name is taken (-1) or the namespace is full (its
            # unfinished runs); None: inserted.
            if limit >= 0:
                count = unfinished.count(namespace)
                if count >= limit:
                    taken = conn.execute(_RUN_COMPLETED, key).fetchone()
                    return -1 if taken is not None else count
            if conn.execute(_INSERT_RUN, params).rowcount != 1:
                return -1
            unfinished.add(namespace, +1)
            return None

        def after(outcome: int | None) -> None:
            if outcome is None and run.phase not in _FINISHED:
                self._remember(key, run.body, run.status)

        outcome: int | None = await self.group.run(_Write(insert, after))
        return outcome

    async def mark_terminate(self, namespace: str, name: str, body: dict[str, Any]) -> None:
        """Store spec.terminate so a restart keeps the request."""
        key = (namespace, name)
        body_text = dumps(body)
        params = (body_text, now_iso(), namespace, name)

        def run(conn: sqlite3.Connection, unfinished: _Unfinished) -> int:
            return conn.execute(
                "UPDATE runs SET body=?, updated_at=?, epoch=epoch+1 WHERE namespace=? AND name=?",
                params,
            ).rowcount

        def after(updated: int) -> None:
            live = self._live.get(key)
            if live is not None:
                self._live[key] = (body_text, live[1])

        await self.group.run(_Write(run, after))

    async def delete_run(self, namespace: str, name: str) -> bool:
        key = (namespace, name)

        def run(conn: sqlite3.Connection, unfinished: _Unfinished) -> bool:
            row = conn.execute(_RUN_COMPLETED, key).fetchone()
            deleted = conn.execute(
                "DELETE FROM runs WHERE namespace=? AND name=?", (namespace, name)
            ).rowcount
            conn.execute("DELETE FROM measurements WHERE namespace=? AND name=?", (namespace, name))
            if deleted and row is not None and not row[0]:
                unfinished.add(namespace, -1)
            return deleted > 0

        def after(deleted: bool) -> None:
            self._live.pop(key, None)

        return bool(await self.group.run(_Write(run, after)))

    async def _write_change(self, change: RunChange) -> bool:
        key = (change.namespace, change.name)
        status_text = change.status
        sql = (
            "UPDATE runs SET status=?, phase=?, completed=?, updated_at=?, epoch=epoch+1"
            " WHERE namespace=? AND name=?"
        )
        params: tuple[Any, ...] = (status_text, change.phase, int(change.completed), now_iso())
        params += key
        which: tuple[Any, ...] = key
        was_completed = _RUN_COMPLETED
        if change.uid is not None:
            sql += " AND uid=?"
            params += (change.uid,)
            was_completed += " AND uid=?"
            which += (change.uid,)
        rows = change.outbox
        added = change.measurements
        completed = change.completed

        def run(conn: sqlite3.Connection, unfinished: _Unfinished) -> bool:
            namespace = key[0]
            if unfinished.known(namespace):
                # Whether the run stops (or, never expected, starts again) being unfinished.
                before = conn.execute(was_completed, which).fetchone()
                if before is None:
                    return False  # gone, or fenced off by its uid: the UPDATE would miss
                if bool(before[0]) != completed:
                    unfinished.add(namespace, -1 if completed else +1)
            if not conn.execute(sql, params).rowcount:
                return False
            for values in added:
                conn.execute(INSERT_MEASUREMENT, values)
            if rows:
                conn.executemany(INSERT_OUTBOX, rows)
            return True

        def after(written: bool) -> None:
            if not written or change.completed:
                self._live.pop(key, None)
                return
            live = self._live.get(key)
            if live is not None:
                self._live[key] = (live[0], status_text)

        return bool(await self.group.run(_Write(run, after)))

    # ---- outbox ----

    async def due_deliveries(
        self, now: float, limit: int = 100, *, skip: Collection[str] = ()
    ) -> list[OutboxRow]:
        patterns = receiver_patterns(skip)
        skipped = ""
        if patterns:
            like = " OR ".join(["target LIKE ? ESCAPE '\\'"] * len(patterns))
            skipped = f" AND NOT ({like})"
        rows = await self._fetch(
            f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE state='pending' AND next_attempt_at<=?"
            f"{skipped} ORDER BY next_attempt_at, created_at LIMIT ?",
            now,
            *patterns,
            limit,
        )
        return [outbox_from_row(row) for row in rows]

    async def next_delivery_at(self) -> float | None:
        row = await self._fetchone("SELECT MIN(next_attempt_at) FROM outbox WHERE state='pending'")
        return float(row[0]) if row and row[0] is not None else None
