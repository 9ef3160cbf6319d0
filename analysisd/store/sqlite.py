"""The SQLite store (aiosqlite): one connection, one writer at a time, WAL journal.

Every write that belongs to one state change of a run (its status, its new
measurements and the outbox events announcing them) happens in one transaction,
so a crash leaves either all of it or none of it.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import aiosqlite

from analysisd.store.leases import ClaimedRun
from analysisd.store.migrations import load_migrations
from analysisd.store.records import (
    TTL_MARKER,
    Conflict,
    OutboxRow,
    RunRecord,
    StoredMeasurement,
    StoreError,
    dumps,
    now_iso,
    outbox_from_row,
    run_from_row,
)

_RUN_COLUMNS = "namespace, name, uid, body, status, phase, completed, labels, created_at, epoch"
_OUTBOX_COLUMNS = (
    "event_id, target, secret_name, namespace, name, event_type, body, state, attempts,"
    " created_at, next_attempt_at, last_attempt_at, last_status, last_error"
)


class SqliteStore:
    """Templates, runs, measurement history and the webhook outbox in one SQLite file."""

    leasing = False  # a single replica: resume every unfinished run at start

    def __init__(self, path: str | Path, *, owner: str = "") -> None:
        self.path = str(path)
        self.owner = owner
        self._db: aiosqlite.Connection | None = None
        self._write = asyncio.Lock()

    # ---- lifecycle ----

    async def open(self) -> None:
        try:
            if self.path not in (":memory:", "") and not self.path.startswith("file:"):
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
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
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    async def __aenter__(self) -> SqliteStore:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._write:
            await self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise
            await self.db.execute("COMMIT")

    async def _migrate(self) -> None:
        async with self._tx() as db:
            await db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations"
                " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            async with db.execute("SELECT version FROM schema_migrations") as cur:
                applied = {row[0] for row in await cur.fetchall()}
            for migration in load_migrations():
                if migration.version in applied:
                    continue
                for statement in migration.statements():
                    await db.execute(statement)
                await db.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                    (migration.version, migration.name, now_iso()),
                )

    async def schema_version(self) -> int:
        async with self.db.execute("SELECT MAX(version) FROM schema_migrations") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    # ---- templates ----

    async def put_template(
        self, kind: str, namespace: str, name: str, body: dict[str, Any], *, create: bool
    ) -> bool:
        """Create (Conflict if it exists) or replace/create; True when newly created."""
        now = now_iso()
        async with self._tx() as db:
            async with db.execute(
                "SELECT 1 FROM templates WHERE kind=? AND namespace=? AND name=?",
                (kind, namespace, name),
            ) as cur:
                exists = await cur.fetchone() is not None
            if exists and create:
                raise Conflict(f'{kind} "{name}" already exists')
            if exists:
                await db.execute(
                    "UPDATE templates SET body=?, updated_at=? WHERE kind=? AND namespace=?"
                    " AND name=?",
                    (dumps(body), now, kind, namespace, name),
                )
            else:
                await db.execute(
                    "INSERT INTO templates VALUES (?, ?, ?, ?, ?, ?)",
                    (kind, namespace, name, dumps(body), now, now),
                )
        return not exists

    async def get_template(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        async with self.db.execute(
            "SELECT body FROM templates WHERE kind=? AND namespace=? AND name=?",
            (kind, namespace, name),
        ) as cur:
            row = await cur.fetchone()
        return json.loads(row[0]) if row else None

    async def list_templates(self, kind: str, namespace: str) -> list[dict[str, Any]]:
        async with self.db.execute(
            "SELECT body FROM templates WHERE kind=? AND namespace=? ORDER BY name",
            (kind, namespace),
        ) as cur:
            return [json.loads(row[0]) for row in await cur.fetchall()]

    async def delete_template(self, kind: str, namespace: str, name: str) -> bool:
        async with self._tx() as db:
            cur = await db.execute(
                "DELETE FROM templates WHERE kind=? AND namespace=? AND name=?",
                (kind, namespace, name),
            )
            return cur.rowcount > 0

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
        async with self._write:
            cur = await self.db.execute(
                "INSERT INTO runs (namespace, name, uid, body, status, phase, completed, labels,"
                " created_at, updated_at, owner, epoch) SELECT ?,?,?,?,?,?,0,?,?,?,?,0"
                " WHERE ? < 0 OR (SELECT COUNT(*) FROM runs WHERE namespace=? AND completed=0) < ?"
                " ON CONFLICT (namespace, name) DO NOTHING",
                (
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
                ),
            )
            if cur.rowcount == 1:
                return
        if await self.get_run(namespace, name) is not None:
            raise Conflict(f'AnalysisRun "{name}" already exists')
        active = await self.count_runs_in(namespace)
        raise LimitExceeded(
            f'namespace "{namespace}" already has {active} unfinished runs (limit {max_active})'
        )

    async def count_runs_in(self, namespace: str) -> int:
        async with self.db.execute(
            "SELECT COUNT(*) FROM runs WHERE namespace=? AND completed=0", (namespace,)
        ) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def get_run(self, namespace: str, name: str) -> RunRecord | None:
        async with self.db.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE namespace=? AND name=?", (namespace, name)
        ) as cur:
            row = await cur.fetchone()
        return run_from_row(row) if row else None

    async def list_runs(self, namespace: str, phase: str | None = None) -> list[RunRecord]:
        sql = f"SELECT {_RUN_COLUMNS} FROM runs WHERE namespace=?"
        params: tuple[Any, ...] = (namespace,)
        if phase:
            sql += " AND phase=?"
            params += (phase,)
        async with self.db.execute(sql + " ORDER BY name", params) as cur:
            return [run_from_row(row) for row in await cur.fetchall()]

    async def completed_runs_with_ttl(self, limit: int = 1000) -> list[RunRecord]:
        """Completed runs whose manifest has a ttlStrategy, oldest first (for TTL deletion)."""
        async with self.db.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE completed=1 AND body LIKE ?"
            " ORDER BY created_at, name LIMIT ?",
            (TTL_MARKER, limit),
        ) as cur:
            return [run_from_row(row) for row in await cur.fetchall()]

    async def unfinished_runs(self) -> list[RunRecord]:
        async with self.db.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE completed=0 ORDER BY created_at, name"
        ) as cur:
            return [run_from_row(row) for row in await cur.fetchall()]

    async def unfinished_manifests(self) -> list[str]:
        """Unfinished runs as manifest JSON text (body + status), for a fast typed parse."""
        async with self.db.execute(
            "SELECT body, status FROM runs WHERE completed=0 ORDER BY created_at, name"
        ) as cur:
            rows = await cur.fetchall()
        # Bodies are stored compact and sorted, always a JSON object: splice the status in
        # as text rather than decode and re-encode ten thousand documents.
        return [body if not status else f'{body[:-1]},"status":{status}}}' for body, status in rows]

    async def count_runs(self, *, completed: bool | None = None) -> dict[str, int]:
        """Runs per phase (all, or only unfinished / finished)."""
        sql = "SELECT phase, COUNT(*) FROM runs"
        params: tuple[Any, ...] = ()
        if completed is not None:
            sql += " WHERE completed=?"
            params = (int(completed),)
        async with self.db.execute(sql + " GROUP BY phase", params) as cur:
            return {row[0]: row[1] for row in await cur.fetchall()}

    async def mark_terminate(self, namespace: str, name: str, body: dict[str, Any]) -> None:
        """Store spec.terminate so a restart keeps the request."""
        async with self._tx() as db:
            await db.execute(
                "UPDATE runs SET body=?, updated_at=?, epoch=epoch+1 WHERE namespace=? AND name=?",
                (dumps(body), now_iso(), namespace, name),
            )

    # ---- leases: one replica per SQLite file, so it holds every run; nothing to lease ----

    async def claim_runs(self, limit: int = 100) -> list[ClaimedRun]:
        return []

    async def renew_leases(self) -> list[tuple[str, str]]:
        return []

    async def release_leases(self) -> int:
        return 0

    async def release_deliveries(self) -> None:
        return None

    def forget_lease(self, namespace: str, name: str) -> None:
        return None

    def held_leases(self) -> list[tuple[str, str]]:
        return []

    async def release_runs(self, keys: list[tuple[str, str]]) -> int:
        return 0

    async def delete_run(self, namespace: str, name: str) -> bool:
        async with self._tx() as db:
            cur = await db.execute(
                "DELETE FROM runs WHERE namespace=? AND name=?", (namespace, name)
            )
            await db.execute(
                "DELETE FROM measurements WHERE namespace=? AND name=?", (namespace, name)
            )
            return cur.rowcount > 0

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
        now = now_iso()
        sql = (
            "UPDATE runs SET status=?, phase=?, completed=?, updated_at=?, epoch=epoch+1"
            " WHERE namespace=? AND name=?"
        )
        params: tuple[Any, ...] = (dumps(status), phase, int(completed), now, namespace, name)
        if uid is not None:
            sql += " AND uid=?"
            params += (uid,)
        outbox = list(outbox)
        measurements = list(measurements)
        if not outbox and not measurements:
            # A status-only change is one statement: atomic without BEGIN/COMMIT round trips.
            async with self._write:
                cur = await self.db.execute(sql, params)
            return cur.rowcount > 0
        async with self._tx() as db:
            cur = await db.execute(sql, params)
            if cur.rowcount == 0:
                return False
            for m in measurements:
                # The next sequence number is computed inside the insert: one round trip.
                await db.execute(
                    "INSERT INTO measurements SELECT ?, ?, ?, COALESCE(MAX(seq), 0) + 1, ?, ?, ?"
                    " FROM measurements WHERE namespace=? AND name=? AND metric=?",
                    (
                        namespace,
                        name,
                        m.metric,
                        m.phase,
                        int(m.dry_run),
                        dumps(m.body),
                        namespace,
                        name,
                        m.metric,
                    ),
                )
            if not outbox:
                return True
            await db.executemany(
                f"INSERT INTO outbox ({_OUTBOX_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT (event_id, target) DO NOTHING",
                [
                    (
                        r.event_id,
                        r.target,
                        r.secret_name,
                        r.namespace,
                        r.name,
                        r.event_type,
                        r.body,
                        r.state,
                        r.attempts,
                        r.created_at,
                        r.next_attempt_at,
                        r.last_attempt_at,
                        r.last_status,
                        r.last_error,
                    )
                    for r in outbox
                ],
            )
        return True

    async def measurements(self, namespace: str, name: str) -> list[StoredMeasurement]:
        async with self.db.execute(
            "SELECT metric, phase, dry_run, body FROM measurements WHERE namespace=? AND name=?"
            " ORDER BY metric, seq",
            (namespace, name),
        ) as cur:
            return [
                StoredMeasurement(r[0], r[1], bool(r[2]), json.loads(r[3]))
                for r in await cur.fetchall()
            ]

    # ---- outbox ----

    async def due_deliveries(self, now: float, limit: int = 100) -> list[OutboxRow]:
        async with self.db.execute(
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE state='pending' AND next_attempt_at<=?"
            " ORDER BY next_attempt_at, created_at LIMIT ?",
            (now, limit),
        ) as cur:
            return [outbox_from_row(row) for row in await cur.fetchall()]

    async def next_delivery_at(self) -> float | None:
        async with self.db.execute(
            "SELECT MIN(next_attempt_at) FROM outbox WHERE state='pending'"
        ) as cur:
            row = await cur.fetchone()
        return float(row[0]) if row and row[0] is not None else None

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
        async with self._tx() as db:
            await db.execute(
                "UPDATE outbox SET state=?, attempts=attempts+1, last_attempt_at=?,"
                " next_attempt_at=?, last_status=?, last_error=? WHERE event_id=? AND target=?",
                (state, at, next_attempt_at, status, error, row.event_id, row.target),
            )

    async def deliveries(self, namespace: str, name: str) -> list[OutboxRow]:
        async with self.db.execute(
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE namespace=? AND name=?"
            " ORDER BY created_at, event_id, target",
            (namespace, name),
        ) as cur:
            return [outbox_from_row(row) for row in await cur.fetchall()]

    async def outbox_counts(self) -> dict[str, int]:
        async with self.db.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state") as cur:
            return {row[0]: row[1] for row in await cur.fetchall()}


class LimitExceeded(Conflict):
    """Too many unfinished runs in one namespace."""
