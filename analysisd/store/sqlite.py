"""The SQLite store (aiosqlite): one connection, one writer at a time, WAL journal.

Every write that belongs to one state change of a run (its status, its new
measurements and the outbox events announcing them) happens in one transaction,
so a crash leaves either all of it or none of it. One replica uses a file, so it
holds every run: this store does not implement Leasing.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from analysisd.store.base import Conflict, LimitExceeded, Row, SqlStore, StoreError, Tx
from analysisd.store.filelock import FileLock
from analysisd.store.records import (
    OUTBOX_COLUMNS,
    OutboxRow,
    StoredMeasurement,
    dumps,
    now_iso,
    outbox_from_row,
)


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
                db, self._db = self._db, None
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
            cur = await self.db.execute(sql, params)
        return cur.rowcount

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Tx]:
        async with self._tx() as db:
            yield _SqliteTx(db)

    # ---- runs ----

    async def create_run(
        self,
        namespace: str,
        name: str,
        uid: str,
        body: dict[str, Any],
        status: dict[str, Any] | None,
        phase: str,
        labels: dict[str, str],
        created_at: str,
        *,
        max_active: int | None = None,
    ) -> None:
        """Insert a run; Conflict on a duplicate name, LimitExceeded past `max_active`."""
        limit = max_active if max_active is not None else -1
        # One statement, so one round trip: SQLite runs it atomically without BEGIN/COMMIT.
        # It inserts nothing when the name is taken or the namespace is full; which of the
        # two is asked only in that (rare) case.
        inserted = await self._execute(
            "INSERT INTO runs (namespace, name, uid, body, status, phase, completed, labels,"
            " created_at, updated_at, owner, epoch) SELECT ?,?,?,?,?,?,0,?,?,?,?,0"
            " WHERE ? < 0 OR (SELECT COUNT(*) FROM runs WHERE namespace=? AND completed=0) < ?"
            " ON CONFLICT (namespace, name) DO NOTHING",
            namespace,
            name,
            uid,
            dumps(body),
            dumps(status) if status is not None else None,
            phase,
            dumps(labels),
            created_at,
            created_at,
            self.owner,
            limit,
            namespace,
            limit,
        )
        if inserted == 1:
            return
        if await self.get_run(namespace, name) is not None:
            raise Conflict(f'AnalysisRun "{name}" already exists')
        active = await self.count_runs_in(namespace)
        raise LimitExceeded(
            f'namespace "{namespace}" already has {active} unfinished runs (limit {max_active})'
        )

    async def mark_terminate(self, namespace: str, name: str, body: dict[str, Any]) -> None:
        """Store spec.terminate so a restart keeps the request."""
        await self._execute(
            "UPDATE runs SET body=?, updated_at=?, epoch=epoch+1 WHERE namespace=? AND name=?",
            dumps(body),
            now_iso(),
            namespace,
            name,
        )

    async def record_change(
        self,
        namespace: str,
        name: str,
        *,
        status: dict[str, Any],
        phase: str,
        completed: bool,
        measurements: Iterable[StoredMeasurement],
        outbox: Iterable[OutboxRow],
        uid: str | None = None,
    ) -> bool:
        """Status + new measurements + outbox rows in one transaction; False if the run is gone.

        With `uid`, a run deleted and re-created under the same name is not written to by
        the old run's late changes (the uid fences them off).
        """
        sql = (
            "UPDATE runs SET status=?, phase=?, completed=?, updated_at=?, epoch=epoch+1"
            " WHERE namespace=? AND name=?"
        )
        params: tuple[Any, ...] = (dumps(status), phase, int(completed), now_iso(), namespace, name)
        if uid is not None:
            sql += " AND uid=?"
            params += (uid,)
        outbox = list(outbox)
        measurements = list(measurements)
        if not outbox and not measurements:
            # A status-only change is one statement: atomic without BEGIN/COMMIT round trips.
            return await self._execute(sql, *params) > 0
        async with self._transaction() as tx:
            if not await tx.execute(sql, *params):
                return False
            await self._append(tx, namespace, name, measurements, outbox)
        return True

    # ---- outbox ----

    async def due_deliveries(self, now: float, limit: int = 100) -> list[OutboxRow]:
        rows = await self._fetch(
            f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE state='pending' AND next_attempt_at<=?"
            " ORDER BY next_attempt_at, created_at LIMIT ?",
            now,
            limit,
        )
        return [outbox_from_row(row) for row in rows]

    async def next_delivery_at(self) -> float | None:
        row = await self._fetchone("SELECT MIN(next_attempt_at) FROM outbox WHERE state='pending'")
        return float(row[0]) if row and row[0] is not None else None
