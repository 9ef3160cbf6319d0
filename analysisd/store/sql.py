"""`SqlStore`: every statement the two backends run alike, over three primitives each
backend supplies (`_fetch`, `_execute`, `_transaction`); see analysisd/store/base.py for
the placeholder rule and the statements' text."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, ClassVar, Self

from analysisd.store.base import (
    OUTBOX_SELECT,
    RUNS_SELECT,
    Row,
    Tx,
    receiver_patterns,
)
from analysisd.store.errors import Conflict, LimitExceeded
from analysisd.store.migrations import load_migrations
from analysisd.store.records import (
    TTL_MARKER,
    NewRun,
    OutboxRow,
    RunChange,
    RunRecord,
    StoredMeasurement,
    dumps,
    measurement_params,
    now_iso,
    outbox_from_row,
    outbox_params,
    run_from_row,
    splice_manifest,
)


class SqlStore(ABC):
    """The statements both backends run alike, over three primitives each backend supplies."""

    owner: str
    # Taken inside the migration transaction so that one migrator runs at a time.
    MIGRATION_LOCK: ClassVar[str | None] = None

    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def aclose(self) -> None: ...

    @abstractmethod
    async def _fetch(self, sql: str, *params: Any) -> list[Row]:
        """Rows of one read."""

    @abstractmethod
    async def _execute(self, sql: str, *params: Any) -> int:
        """One write statement on its own (atomic without BEGIN/COMMIT); rows affected."""

    @abstractmethod
    def _transaction(self) -> AbstractAsyncContextManager[Tx]:
        """A transaction: committed when the block ends, rolled back when it raises."""

    @abstractmethod
    async def _insert_run(self, run: NewRun, max_active: int | None) -> int | None:
        """Insert the run unless its name is taken or (with `max_active`) its namespace has
        that many unfinished runs: None when inserted, -1 when the name is taken, else the
        namespace's unfinished runs."""

    @abstractmethod
    async def _write_change(self, change: RunChange) -> bool:
        """The change in one transaction; False if the run is gone (see record_change)."""

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _fetchone(self, sql: str, *params: Any) -> Row | None:
        rows = await self._fetch(sql, *params)
        return rows[0] if rows else None

    async def _migrate(self) -> None:
        """Apply the migrations not yet applied, all in one transaction."""
        async with self._transaction() as tx:
            if self.MIGRATION_LOCK:
                await tx.execute(self.MIGRATION_LOCK)
            await tx.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations"
                " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            applied = {row[0] for row in await tx.fetch("SELECT version FROM schema_migrations")}
            for migration in load_migrations():
                if migration.version in applied:
                    continue
                for statement in migration.statements():
                    await tx.execute(statement)
                await tx.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                    migration.version,
                    migration.name,
                    now_iso(),
                )

    async def schema_version(self) -> int:
        row = await self._fetchone("SELECT MAX(version) FROM schema_migrations")
        return int(row[0]) if row and row[0] is not None else 0

    # ---- templates ----

    async def put_template(
        self, kind: str, namespace: str, name: str, body: dict[str, Any], *, create: bool
    ) -> bool:
        """Create (Conflict if it exists) or replace/create; True when newly created."""
        now = now_iso()
        async with self._transaction() as tx:
            inserted = await tx.execute(
                "INSERT INTO templates VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (kind, namespace, name) DO NOTHING",
                kind,
                namespace,
                name,
                dumps(body),
                now,
                now,
            )
            if inserted:
                return True
            if create:
                raise Conflict(f'{kind} "{name}" already exists')
            await tx.execute(
                "UPDATE templates SET body=?, updated_at=? WHERE kind=? AND namespace=? AND name=?",
                dumps(body),
                now,
                kind,
                namespace,
                name,
            )
            return False

    async def get_template(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        row = await self._fetchone(
            "SELECT body FROM templates WHERE kind=? AND namespace=? AND name=?",
            kind,
            namespace,
            name,
        )
        return json.loads(row[0]) if row else None

    async def list_templates(self, kind: str, namespace: str) -> list[dict[str, Any]]:
        rows = await self._fetch(
            "SELECT body FROM templates WHERE kind=? AND namespace=? ORDER BY name",
            kind,
            namespace,
        )
        return [json.loads(row[0]) for row in rows]

    async def delete_template(self, kind: str, namespace: str, name: str) -> bool:
        return (
            await self._execute(
                "DELETE FROM templates WHERE kind=? AND namespace=? AND name=?",
                kind,
                namespace,
                name,
            )
            > 0
        )

    # ---- runs ----

    async def create_run(
        self,
        namespace: str,
        name: str,
        uid: str,
        body: dict[str, Any] | str,
        status: dict[str, Any] | str | None,
        phase: str,
        labels: dict[str, str],
        created_at: str,
        *,
        max_active: int | None = None,
    ) -> None:
        """Insert a run; Conflict on a duplicate name, LimitExceeded past `max_active`.
        `body` may be given as its text (records.dumps), `status` as its JSON text."""
        body_text = body if isinstance(body, str) else dumps(body)
        status_text = status if isinstance(status, str) or status is None else dumps(status)
        run = NewRun(namespace, name, uid, body_text, status_text, phase, dumps(labels), created_at)
        outcome = await self._insert_run(run, max_active)
        if outcome is None:
            return
        if outcome < 0:
            raise Conflict(f'AnalysisRun "{name}" already exists')
        raise LimitExceeded(
            f'namespace "{namespace}" already has {outcome} unfinished runs (limit {max_active})'
        )

    async def count_runs_in(self, namespace: str) -> int:
        row = await self._fetchone(
            "SELECT COUNT(*) FROM runs WHERE namespace=? AND completed=0", namespace
        )
        return int(row[0]) if row else 0

    async def get_run(self, namespace: str, name: str) -> RunRecord | None:
        row = await self._fetchone(f"{RUNS_SELECT} WHERE namespace=? AND name=?", namespace, name)
        return run_from_row(row) if row else None

    async def run_manifest(self, namespace: str, name: str) -> str | None:
        """The run as manifest JSON text (body + status), as stored: nothing parsed."""
        row = await self._fetchone(
            "SELECT body, status FROM runs WHERE namespace=? AND name=?", namespace, name
        )
        return splice_manifest(row[0], row[1]) if row else None

    async def list_runs(self, namespace: str, phase: str | None = None) -> list[RunRecord]:
        if phase:
            rows = await self._fetch(
                f"{RUNS_SELECT} WHERE namespace=? AND phase=? ORDER BY name", namespace, phase
            )
        else:
            rows = await self._fetch(f"{RUNS_SELECT} WHERE namespace=? ORDER BY name", namespace)
        return [run_from_row(row) for row in rows]

    async def list_runs_newest(
        self, namespace: str, phase: str | None = None, *, limit: int, offset: int = 0
    ) -> tuple[int, list[RunRecord]]:
        """One page of a namespace's runs, newest first, and how many match in all (the web
        pages' run list reads one page of a namespace of thousands, not all of it)."""
        params: tuple[str, ...] = (namespace, phase) if phase else (namespace,)
        where = "namespace=? AND phase=?" if phase else "namespace=?"
        total = await self._fetchone(f"SELECT COUNT(*) FROM runs WHERE {where}", *params)
        rows = await self._fetch(
            f"{RUNS_SELECT} WHERE {where} ORDER BY created_at DESC, name DESC LIMIT ? OFFSET ?",
            *params,
            limit,
            offset,
        )
        return (int(total[0]) if total else 0), [run_from_row(row) for row in rows]

    async def completed_runs_with_ttl(self, limit: int = 1000) -> list[RunRecord]:
        """Completed runs whose manifest has a ttlStrategy, oldest first (for TTL deletion)."""
        rows = await self._fetch(
            f"{RUNS_SELECT} WHERE completed=1 AND body LIKE ? ORDER BY created_at, name LIMIT ?",
            TTL_MARKER,
            limit,
        )
        return [run_from_row(row) for row in rows]

    async def unfinished_runs(self) -> list[RunRecord]:
        rows = await self._fetch(f"{RUNS_SELECT} WHERE completed=0 ORDER BY created_at, name")
        return [run_from_row(row) for row in rows]

    async def unfinished_manifests(self) -> list[str]:
        """Unfinished runs as manifest JSON text (body + status), for a fast typed parse."""
        rows = await self._fetch(
            "SELECT body, status FROM runs WHERE completed=0 ORDER BY created_at, name"
        )
        return [splice_manifest(body, status) for body, status in rows]

    async def count_runs(self, *, completed: bool | None = None) -> dict[str, int]:
        """Runs per phase (all, or only unfinished / finished)."""
        if completed is None:
            rows = await self._fetch("SELECT phase, COUNT(*) FROM runs GROUP BY phase")
        else:
            rows = await self._fetch(
                "SELECT phase, COUNT(*) FROM runs WHERE completed=? GROUP BY phase",
                int(completed),
            )
        return {row[0]: row[1] for row in rows}

    async def delete_run(self, namespace: str, name: str) -> bool:
        async with self._transaction() as tx:
            deleted = await tx.execute(
                "DELETE FROM runs WHERE namespace=? AND name=?", namespace, name
            )
            await tx.execute(
                "DELETE FROM measurements WHERE namespace=? AND name=?", namespace, name
            )
        return deleted > 0

    async def record_change(
        self,
        namespace: str,
        name: str,
        *,
        status: dict[str, Any] | str,
        phase: str,
        completed: bool,
        measurements: Iterable[StoredMeasurement],
        outbox: Iterable[OutboxRow],
        uid: str | None = None,
    ) -> bool:
        """Status + new measurements + outbox rows in one transaction; False if the run is gone.

        With `uid`, a run deleted and re-created under the same name is not written to by
        the old run's late changes (the uid fences them off). The texts and parameters are
        made before the transaction: a value that cannot be encoded writes nothing.
        `status` may be given as its JSON text (a JSON object).
        """
        change = RunChange(
            namespace,
            name,
            status if isinstance(status, str) else dumps(status),
            phase,
            completed,
            measurement_params(namespace, name, measurements),
            [outbox_params(row) for row in outbox],
            uid,
        )
        return await self._write_change(change)

    async def measurements(self, namespace: str, name: str) -> list[StoredMeasurement]:
        rows = await self._fetch(
            "SELECT metric, phase, dry_run, body FROM measurements WHERE namespace=? AND name=?"
            " ORDER BY metric, seq",
            namespace,
            name,
        )
        return [StoredMeasurement(r[0], r[1], bool(r[2]), json.loads(r[3])) for r in rows]

    # ---- outbox ----

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
        # Recording the attempt also ends this replica's claim on the row (if any).
        await self._execute(
            "UPDATE outbox SET state=?, attempts=attempts+1, last_attempt_at=?,"
            " next_attempt_at=?, last_status=?, last_error=?,"
            " claimed_by=NULL, claimed_until=NULL WHERE event_id=? AND target=?",
            state,
            at,
            next_attempt_at,
            status,
            error,
            row.event_id,
            row.target,
        )

    async def postpone_deliveries(self, skip: Collection[str], until: float) -> int:
        """The pending rows of the receivers in `skip` (as in due_deliveries) due before
        `until` are due at `until`: one statement, attempts and errors untouched, so a
        receiver in back-off does not leave its due backlog for every fetch to step over.
        A row being sent meanwhile is recorded as usual (that sets its next attempt)."""
        patterns = receiver_patterns(skip)
        if not patterns:
            return 0
        like = " OR ".join(["target LIKE ? ESCAPE '\\'"] * len(patterns))
        return await self._execute(
            f"UPDATE outbox SET next_attempt_at=? WHERE state='pending' AND next_attempt_at<?"
            f" AND ({like})",
            until,
            until,
            *patterns,
        )

    async def deliveries(self, namespace: str, name: str) -> list[OutboxRow]:
        rows = await self._fetch(
            f"{OUTBOX_SELECT} WHERE namespace=? AND name=? ORDER BY created_at, event_id, target",
            namespace,
            name,
        )
        return [outbox_from_row(row) for row in rows]

    async def outbox_counts(self) -> dict[str, int]:
        rows = await self._fetch("SELECT state, COUNT(*) FROM outbox GROUP BY state")
        return {row[0]: row[1] for row in rows}
