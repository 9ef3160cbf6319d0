"""What a store offers (`Store`), what a store shared by replicas adds (`Leasing`),
the store's errors, and the SQL both backends run (`SqlStore`).

The daemon, the API and the recorder see only the protocols. SQLite (one replica)
implements `Store`; PostgreSQL (several replicas on one database) implements both.
`SqlStore` holds every statement the two backends run alike; a backend supplies three
primitives (`_fetch`, `_execute`, `_transaction`) and the statements that really differ
(run creation, the fenced status write, outbox claims).

Shared SQL is written with `?` placeholders and never has a `?` inside a literal: the
PostgreSQL backend renumbers them to `$1, $2, ...` (see postgres.numbered).
"""

from __future__ import annotations

import asyncio
import json
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar, runtime_checkable

from analysisd import AnalysisdError
from analysisd.store.migrations import load_migrations
from analysisd.store.records import (
    OUTBOX_COLUMNS,
    RUN_COLUMNS,
    TTL_MARKER,
    ClaimedRun,
    OutboxRow,
    RunKey,
    RunRecord,
    StoredMeasurement,
    dumps,
    now_iso,
    outbox_from_row,
    outbox_params,
    run_from_row,
    splice_manifest,
)

Row = Sequence[Any]


# ---- errors ----


class StoreError(AnalysisdError):
    """The store cannot do what was asked."""


class Conflict(StoreError):
    """An object with that name already exists."""


class LimitExceeded(Conflict):
    """Too many unfinished runs in one namespace."""


class NotFound(StoreError):
    """No object with that name."""


class UnsupportedStore(StoreError):
    """The store URL names a backend this build does not offer."""


# ---- protocols ----


class Store(Protocol):
    """Templates, runs, measurement history and the webhook outbox."""

    owner: str

    async def open(self) -> None: ...
    async def aclose(self) -> None: ...
    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    async def schema_version(self) -> int: ...

    async def put_template(
        self, kind: str, namespace: str, name: str, body: dict[str, Any], *, create: bool
    ) -> bool: ...
    async def get_template(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None: ...
    async def list_templates(self, kind: str, namespace: str) -> list[dict[str, Any]]: ...
    async def delete_template(self, kind: str, namespace: str, name: str) -> bool: ...

    async def create_run(
        self,
        namespace: str,
        name: str,
        uid: str,
        body: dict[str, Any] | str,
        status: dict[str, Any] | None,
        phase: str,
        labels: dict[str, str],
        created_at: str,
        *,
        max_active: int | None = None,
    ) -> None: ...
    async def count_runs_in(self, namespace: str) -> int: ...
    async def get_run(self, namespace: str, name: str) -> RunRecord | None: ...
    async def run_manifest(self, namespace: str, name: str) -> str | None: ...
    async def list_runs(self, namespace: str, phase: str | None = None) -> list[RunRecord]: ...
    async def list_runs_newest(
        self, namespace: str, phase: str | None = None, *, limit: int, offset: int = 0
    ) -> tuple[int, list[RunRecord]]: ...
    async def completed_runs_with_ttl(self, limit: int = 1000) -> list[RunRecord]: ...
    async def unfinished_runs(self) -> list[RunRecord]: ...
    async def unfinished_manifests(self) -> list[str]: ...
    async def count_runs(self, *, completed: bool | None = None) -> dict[str, int]: ...
    async def mark_terminate(self, namespace: str, name: str, body: dict[str, Any]) -> None: ...
    async def delete_run(self, namespace: str, name: str) -> bool: ...
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
    ) -> bool: ...
    async def measurements(self, namespace: str, name: str) -> list[StoredMeasurement]: ...

    async def due_deliveries(self, now: float, limit: int = 100) -> list[OutboxRow]: ...
    async def next_delivery_at(self) -> float | None: ...
    async def record_attempt(
        self,
        row: OutboxRow,
        *,
        state: str,
        at: float,
        next_attempt_at: float,
        status: int | None,
        error: str | None,
    ) -> None: ...
    async def deliveries(self, namespace: str, name: str) -> list[OutboxRow]: ...
    async def outbox_counts(self) -> dict[str, int]: ...


@runtime_checkable
class Leasing(Protocol):
    """Runs leased to replicas (see store/leases.py). A store without it holds every run."""

    async def claim_runs(self, limit: int = 100) -> list[ClaimedRun]: ...
    async def renew_leases(self) -> list[RunKey]: ...
    async def release_leases(self) -> int: ...
    async def release_runs(self, keys: list[RunKey]) -> int: ...
    async def release_deliveries(self) -> None: ...
    def forget_lease(self, namespace: str, name: str) -> None: ...
    def held_leases(self) -> list[RunKey]: ...


def leasing_of(store: Store) -> Leasing | None:
    """The store's leasing side, or None when one replica holds every run."""
    return store if isinstance(store, Leasing) else None


# ---- the shared SQL ----


class Tx(Protocol):
    """One open transaction (SQL with `?` placeholders)."""

    async def fetch(self, sql: str, *params: Any) -> list[Row]: ...
    async def execute(self, sql: str, *params: Any) -> int: ...  # rows affected
    async def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None: ...


_RUNS = f"SELECT {RUN_COLUMNS} FROM runs"
_OUTBOX = f"SELECT {OUTBOX_COLUMNS} FROM outbox"
INSERT_OUTBOX = (
    f"INSERT INTO outbox ({OUTBOX_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT (event_id, target) DO NOTHING"
)
# The next sequence number is computed inside the insert: one round trip a measurement.
# The casts give PostgreSQL the parameter types a SELECT list cannot.
INSERT_MEASUREMENT = (
    "INSERT INTO measurements SELECT CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT),"
    " COALESCE(MAX(seq), 0) + 1, CAST(? AS TEXT), CAST(? AS INTEGER), CAST(? AS TEXT)"
    " FROM measurements WHERE namespace=? AND name=? AND metric=?"
)


W = TypeVar("W")


class RolledBack(StoreError):
    """A write of a group-commit batch failed and the whole batch was rolled back (the
    failure is the __cause__)."""


class GroupCommit(Generic[W]):
    """Group commit: the writes queued while the previous batch was being committed (or
    during one pass of the event loop) are committed together, in one transaction.

    `run(op)` queues a write and waits for its result. `commit(ops)` (the backend's) runs
    a batch in one transaction and returns each op's result in order. If an op fails, the
    backend rolls the batch back and raises RolledBack: then each op of the batch is
    committed on its own, so an error is only heard by the caller whose write caused it.
    Any other error (COMMIT itself failed: whether it took effect is unknown) is every
    op's, and none is retried (a retry could write a measurement twice). A result is handed
    back after COMMIT: a caller hears of its write once it is durable. An op runs even if
    its caller stops waiting (as a statement already sent would); it must not raise for an
    expected outcome (a duplicate, a fenced-off update): it returns it, and writes nothing.
    """

    def __init__(
        self, commit: Callable[[list[W]], Awaitable[list[Any]]], *, in_flight: int = 1
    ) -> None:
        self._commit = commit
        self._in_flight = in_flight  # batches being committed at once, at most
        self._pending: list[tuple[W, asyncio.Future[Any]]] = []
        self._flushers: set[asyncio.Task[None]] = set()
        self._starting = 0  # flushers created that have not taken their batch yet
        self.batches = 0  # transactions committed (for tests and benchmarks)
        self.ops = 0  # writes committed in them

    async def run(self, op: W) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((op, future))
        if not self._starting and len(self._flushers) < self._in_flight:
            # Starts on the next pass of the loop: whatever else this pass queues joins it.
            # While every flusher is busy, writes gather for the next batch.
            self._starting += 1
            self._flushers.add(loop.create_task(self._flush()))
        return await future

    async def drain(self) -> None:
        """Wait until every queued write is committed (or failed)."""
        while self._flushers:
            await asyncio.wait([asyncio.shield(task) for task in self._flushers])

    async def _flush(self) -> None:
        self._starting -= 1
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                await self._commit_batch(batch)
        finally:
            # Here, not in a done callback: a write queued after this cannot find a
            # finished flusher still counted and be left waiting.
            task = asyncio.current_task()
            assert task is not None
            self._flushers.discard(task)

    async def _commit_batch(self, batch: list[tuple[W, asyncio.Future[Any]]]) -> None:
        try:
            results = await self._commit([op for op, _ in batch])
        except RolledBack as rolled_back:
            if len(batch) > 1:  # nothing was written: find whose write failed, one by one
                for item in batch:
                    await self._commit_batch([item])
                return
            _settle(batch[0][1], exception=rolled_back.__cause__ or rolled_back)
            return
        except Exception as exc:
            for _, future in batch:
                _settle(future, exception=exc)
            return
        except BaseException as exc:  # cancelled (the loop is going away): nobody waits on
            for _, future in batch:
                _settle(future, exception=exc)
            raise
        self.batches += 1
        self.ops += len(batch)
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result=result)


def _settle(
    future: asyncio.Future[Any], *, result: Any = None, exception: BaseException | None = None
) -> None:
    if future.done():  # its caller was cancelled: the write happened (or not) all the same
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        future.set_result(result)


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

    async def count_runs_in(self, namespace: str) -> int:
        row = await self._fetchone(
            "SELECT COUNT(*) FROM runs WHERE namespace=? AND completed=0", namespace
        )
        return int(row[0]) if row else 0

    async def get_run(self, namespace: str, name: str) -> RunRecord | None:
        row = await self._fetchone(f"{_RUNS} WHERE namespace=? AND name=?", namespace, name)
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
                f"{_RUNS} WHERE namespace=? AND phase=? ORDER BY name", namespace, phase
            )
        else:
            rows = await self._fetch(f"{_RUNS} WHERE namespace=? ORDER BY name", namespace)
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
            f"{_RUNS} WHERE {where} ORDER BY created_at DESC, name DESC LIMIT ? OFFSET ?",
            *params,
            limit,
            offset,
        )
        return (int(total[0]) if total else 0), [run_from_row(row) for row in rows]

    async def completed_runs_with_ttl(self, limit: int = 1000) -> list[RunRecord]:
        """Completed runs whose manifest has a ttlStrategy, oldest first (for TTL deletion)."""
        rows = await self._fetch(
            f"{_RUNS} WHERE completed=1 AND body LIKE ? ORDER BY created_at, name LIMIT ?",
            TTL_MARKER,
            limit,
        )
        return [run_from_row(row) for row in rows]

    async def unfinished_runs(self) -> list[RunRecord]:
        rows = await self._fetch(f"{_RUNS} WHERE completed=0 ORDER BY created_at, name")
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

    async def _append(
        self,
        tx: Tx,
        namespace: str,
        name: str,
        measurements: Iterable[StoredMeasurement],
        outbox: Iterable[OutboxRow],
    ) -> None:
        """The new measurements and outbox rows of one change, inside its transaction."""
        for m in measurements:
            await tx.execute(
                INSERT_MEASUREMENT,
                *(namespace, name, m.metric, m.phase, int(m.dry_run), dumps(m.body)),
                namespace,
                name,
                m.metric,
            )
        rows = [outbox_params(row) for row in outbox]
        if rows:
            await tx.executemany(INSERT_OUTBOX, rows)

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

    async def deliveries(self, namespace: str, name: str) -> list[OutboxRow]:
        rows = await self._fetch(
            f"{_OUTBOX} WHERE namespace=? AND name=? ORDER BY created_at, event_id, target",
            namespace,
            name,
        )
        return [outbox_from_row(row) for row in rows]

    async def outbox_counts(self) -> dict[str, int]:
        rows = await self._fetch("SELECT state, COUNT(*) FROM outbox GROUP BY state")
        return {row[0]: row[1] for row in rows}
