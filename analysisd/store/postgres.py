"""The PostgreSQL store (asyncpg): the same interface and schema as the SQLite store.

The migrations are portable SQL, so both backends share them. Each state change
is one transaction, as in SQLite. Several replicas share one database by leasing
runs (analysisd/store/leases.py): a replica runs only the runs it claimed, and every
status write is fenced by owner and epoch, so a replica whose lease was taken over
writes nothing.

Run creations and status changes go through group commit (base.GroupCommit): those
queued while the previous batch was being written share one transaction (one
BEGIN/COMMIT and one WAL flush instead of one each). Reads always go to the
database: another replica may have terminated or deleted a run this one holds, and
this one hears of it only at its next renewal or write, so a copy in memory could be
stale.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from analysisd.store.base import (
    INSERT_MEASUREMENT,
    INSERT_OUTBOX,
    GroupCommit,
    RolledBack,
    Row,
    StoreError,
    Tx,
    UnsupportedStore,
    receiver_patterns,
)
from analysisd.store.leases import DB_NOW, LeaseLost, Leases
from analysisd.store.records import (
    OUTBOX_COLUMNS,
    ClaimedRun,
    NewRun,
    OutboxRow,
    RunChange,
    RunKey,
    dumps,
    now_iso,
    outbox_from_row,
)
from analysisd.store.sql import SqlStore

_TIMEOUT = 30.0  # seconds for any one statement
DEFAULT_LEASE_SECONDS = 30.0
# How long a replica's claim on due outbox rows keeps other replicas off them: longer
# than any one delivery attempt, short enough that a crashed claimer delays little.
DELIVERY_CLAIM_SECONDS = 60.0

# Group-commit batches committed at once (of the pool's 10 connections).
BATCHES_IN_FLIGHT = 4

# One write of a batch: its statements in the batch's transaction, returning the outcome.
_Write = Callable[[Tx], Awaitable[Any]]

# Several runs' fenced status changes in one statement: only the owner, at the epoch it
# claimed with (and, given a uid, the same run, not a re-created namesake); each write
# also extends the lease.
_CHANGES = (
    "UPDATE runs AS r SET status=v.status, phase=v.phase, completed=v.completed,"
    f" updated_at=v.updated_at, lease_expires_at={DB_NOW} + $9"
    " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::integer[],"
    " $6::text[], $7::bigint[], $8::text[])"
    " AS v(namespace, name, status, phase, completed, updated_at, epoch, uid)"
    " WHERE r.namespace=v.namespace AND r.name=v.name AND r.owner=$10"
    " AND r.epoch=v.epoch AND (v.uid IS NULL OR r.uid=v.uid)"
    " RETURNING r.namespace, r.name"
)


@dataclass(frozen=True, slots=True)
class _Change:
    """One run's status change with its new measurements and outbox rows. Alone, it is
    written by calling it; several in one batch are written together (_changes)."""

    key: RunKey
    # namespace, name, status, phase, completed, updated_at, epoch, uid (or None)
    params: tuple[str, str, str, str, int, str, int, str | None]
    measurements: list[tuple[Any, ...]]  # INSERT_MEASUREMENT's parameters
    outbox: list[tuple[Any, ...]]  # INSERT_OUTBOX's parameters
    owner: str  # the fence: this replica ...
    lease_seconds: float  # ... and how far each write extends its lease

    def missed(self, stored_uid: str | None) -> str:
        """Why the fenced update wrote nothing: "gone" (deleted, or re-created under a
        new uid) or "lost" (another replica holds it now)."""
        uid = self.params[7]
        return "gone" if stored_uid is None or (uid is not None and stored_uid != uid) else "lost"

    async def __call__(self, tx: Tx) -> str | None:
        namespace, name, status, phase, completed, updated_at, epoch, uid = self.params
        sql = (
            "UPDATE runs SET status=$1, phase=$2, completed=$3, updated_at=$4,"
            f" lease_expires_at={DB_NOW} + $9"
            " WHERE namespace=$5 AND name=$6 AND owner=$7 AND epoch=$8"
        )
        args: list[Any] = [status, phase, completed, updated_at, namespace, name, self.owner]
        args += [epoch, self.lease_seconds]
        if uid is not None:
            sql += " AND uid=$10"
            args.append(uid)
        if not await tx.execute(sql, *args):
            rows = await tx.fetch(
                "SELECT uid FROM runs WHERE namespace=$1 AND name=$2", namespace, name
            )
            return self.missed(rows[0][0] if rows else None)
        for values in self.measurements:
            await tx.execute(INSERT_MEASUREMENT, *values)
        if self.outbox:
            await tx.executemany(INSERT_OUTBOX, self.outbox)
        return None


def _affected(status: str) -> int:
    """asyncpg's command tag ("UPDATE 1", "INSERT 0 1") -> rows affected (0 for DDL)."""
    count = status.rsplit(" ", 1)[-1]
    return int(count) if count.isdigit() else 0


@functools.cache
def numbered(sql: str) -> str:
    """The shared SQL's `?` placeholders as PostgreSQL's `$1, $2, ...`."""
    first, *rest = sql.split("?")
    return first + "".join(f"${i}{part}" for i, part in enumerate(rest, 1))


class _PostgresTx:
    """One transaction on one pooled connection (or statements on the pool itself)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn  # asyncpg.Connection or asyncpg.Pool

    async def fetch(self, sql: str, *params: Any) -> list[Row]:
        rows: list[Row] = await self.conn.fetch(numbered(sql), *params)
        return rows

    async def execute(self, sql: str, *params: Any) -> int:
        return _affected(await self.conn.execute(numbered(sql), *params))

    async def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        await self.conn.executemany(numbered(sql), rows)


class _BoundedPool:
    """The asyncpg pool with every wait for a connection bounded by _TIMEOUT.

    asyncpg's own `pool.fetch`/`execute` and a bare `pool.acquire()` wait for a free
    connection forever: one holder stuck (a loop that outlived its stop, a network
    partition inside a transaction) would hang every store call behind it. Here such a
    wait ends in TimeoutError, which the API answers and the long-lived loops retry.
    """

    __slots__ = ("raw",)

    def __init__(self, raw: Any) -> None:
        self.raw = raw  # asyncpg.Pool

    def acquire(self) -> Any:
        return self.raw.acquire(timeout=_TIMEOUT)

    async def fetch(self, sql: str, *params: Any) -> list[Row]:
        async with self.acquire() as conn:
            rows: list[Row] = await conn.fetch(sql, *params)
            return rows

    async def fetchrow(self, sql: str, *params: Any) -> Row | None:
        async with self.acquire() as conn:
            row: Row | None = await conn.fetchrow(sql, *params)
            return row

    async def execute(self, sql: str, *params: Any) -> str:
        async with self.acquire() as conn:
            status: str = await conn.execute(sql, *params)
            return status

    async def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        async with self.acquire() as conn:
            await conn.executemany(sql, rows)

    async def close(self) -> None:
        await self.raw.close()


class PostgresStore(SqlStore):
    """Templates, runs, measurement history and the outbox in PostgreSQL, leased to replicas."""

    MIGRATION_LOCK = "SELECT pg_advisory_xact_lock(727274)"  # one migrator across replicas

    def __init__(
        self, dsn: str, *, owner: str = "", lease_seconds: float = DEFAULT_LEASE_SECONDS
    ) -> None:
        self.dsn = dsn
        self.owner = owner
        self.leases = Leases(owner, lease_seconds)
        self._pool: _BoundedPool | None = None  # asyncpg is the optional [postgres] extra
        # Several batches at once (each on its own pooled connection): a batch waits on
        # round trips to the server, not on this process's CPU.
        self.group: GroupCommit[_Write | _Change] = GroupCommit(
            self._commit, in_flight=BATCHES_IN_FLIGHT
        )

    async def open(self) -> None:
        try:
            import asyncpg
        except ModuleNotFoundError:
            raise UnsupportedStore(
                "store: postgresql:// needs asyncpg (pip install 'analysisd[postgres]')"
            ) from None
        try:
            self._pool = _BoundedPool(
                await asyncpg.create_pool(
                    self.dsn, min_size=1, max_size=10, command_timeout=_TIMEOUT, timeout=_TIMEOUT
                )
            )
            await self._migrate()
            await self.leases.disown_previous(self._pool)
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            await self.aclose()
            # The DSN may hold a password: name only the host part.
            where = self.dsn.rsplit("@", 1)[-1].split("?", 1)[0]
            raise StoreError(f"store postgresql://...@{where}: {exc}") from exc

    async def aclose(self) -> None:
        if self._pool is not None:
            await self.group.drain()
            pool, self._pool = self._pool, None
            await pool.close()

    @property
    def pool(self) -> _BoundedPool:
        if self._pool is None:
            raise RuntimeError("store is not open")
        return self._pool

    # ---- the primitives SqlStore runs on ----

    async def _fetch(self, sql: str, *params: Any) -> list[Row]:
        return await _PostgresTx(self.pool).fetch(sql, *params)

    async def _execute(self, sql: str, *params: Any) -> int:
        return await _PostgresTx(self.pool).execute(sql, *params)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Tx]:
        async with self.pool.acquire() as conn, conn.transaction():
            yield _PostgresTx(conn)

    async def _commit(self, writes: list[_Write | _Change]) -> list[Any]:
        """A batch of writes in one transaction (RolledBack if one of them failed).

        Status changes are written together: one UPDATE for all of them (fenced per run,
        RETURNING the runs it wrote), one round trip for the new measurements and one for
        the outbox rows of those runs, instead of two or three round trips each."""
        async with self.pool.acquire() as conn:
            transaction = conn.transaction()
            await transaction.start()
            try:
                tx = _PostgresTx(conn)
                outcomes: list[Any] = [None] * len(writes)
                changes = [(i, w) for i, w in enumerate(writes) if isinstance(w, _Change)]
                batched = len(changes) > 1 and len({w.key for _, w in changes}) == len(changes)
                for i, write in enumerate(writes):
                    if not (batched and isinstance(write, _Change)):
                        outcomes[i] = await write(tx)
                if batched:
                    done = await self._changes(conn, [w for _, w in changes])
                    for (i, _), outcome in zip(changes, done, strict=True):
                        outcomes[i] = outcome
            except BaseException as exc:
                await transaction.rollback()
                if isinstance(exc, Exception):
                    raise RolledBack(str(exc)) from exc  # nothing of the batch was written
                raise
            await transaction.commit()  # if this fails, whether it took effect is unknown
            return outcomes

    async def _changes(self, conn: Any, changes: list[_Change]) -> list[str | None]:
        """Several runs' status changes (distinct runs) in three round trips."""
        columns = [list(column) for column in zip(*(c.params for c in changes), strict=True)]
        rows = await conn.fetch(_CHANGES, *columns, self.leases.seconds, self.owner)
        written = {(row[0], row[1]) for row in rows}
        missed = [c for c in changes if c.key not in written]
        uids: dict[RunKey, str] = {}
        if missed:
            found = await conn.fetch(
                "SELECT namespace, name, uid FROM runs WHERE (namespace, name) IN"
                " (SELECT * FROM unnest($1::text[], $2::text[]))",
                [c.key[0] for c in missed],
                [c.key[1] for c in missed],
            )
            uids = {(row[0], row[1]): row[2] for row in found}
        added = [m for c in changes if c.key in written for m in c.measurements]
        if added:
            await conn.executemany(numbered(INSERT_MEASUREMENT), added)
        events = [e for c in changes if c.key in written for e in c.outbox]
        if events:
            await conn.executemany(numbered(INSERT_OUTBOX), events)
        return [None if c.key in written else c.missed(uids.get(c.key)) for c in changes]

    # ---- runs ----

    async def _insert_run(self, run: NewRun, max_active: int | None) -> int | None:
        """Insert a run, held by this replica (see SqlStore.create_run)."""
        namespace = run.namespace
        params = (
            *(namespace, run.name, run.uid, run.body, run.status, run.phase, run.labels),
            *(run.created_at, self.owner, self.leases.seconds),
        )

        async def write(tx: Tx) -> int | None:
            # None: inserted; -1: the name is taken; else the namespace's unfinished runs.
            if max_active is not None:
                # Serialise creates per namespace so two replicas cannot both squeeze in.
                await tx.fetch("SELECT pg_advisory_xact_lock(hashtext($1))", namespace)
                rows = await tx.fetch(
                    "SELECT COUNT(*) FROM runs WHERE namespace=$1 AND completed=0", namespace
                )
                active = int(rows[0][0])
                if active >= max_active:
                    return active
            inserted = await tx.execute(
                # The creating replica holds the run from the start (epoch 1).
                "INSERT INTO runs (namespace, name, uid, body, status, phase, completed,"
                " labels, created_at, updated_at, owner, lease_expires_at, epoch)"
                f" VALUES ($1,$2,$3,$4,$5,$6,0,$7,$8,$8,$9,{DB_NOW} + $10,1)"
                " ON CONFLICT (namespace, name) DO NOTHING",
                *params,
            )
            return None if inserted else -1

        outcome: int | None = await self.group.run(write)
        if outcome is None:
            self.leases.hold((namespace, run.name), 1)
        return outcome

    async def mark_terminate(self, namespace: str, name: str, body: dict[str, Any]) -> None:
        """Store spec.terminate. A run another replica holds is also released (epoch bumped):
        that replica stops it at its next renewal or write, and whoever claims it next
        resumes it with terminate set, which ends it."""
        await self._execute(
            "UPDATE runs SET body=$1, updated_at=$2,"
            " epoch=CASE WHEN owner=$5 THEN epoch ELSE epoch+1 END,"
            f" lease_expires_at=CASE WHEN owner=$5 THEN lease_expires_at ELSE {DB_NOW} END,"
            " owner=CASE WHEN owner=$5 THEN owner ELSE NULL END"
            " WHERE namespace=$3 AND name=$4",
            dumps(body),
            now_iso(),
            namespace,
            name,
            self.owner,
        )

    async def delete_run(self, namespace: str, name: str) -> bool:
        deleted = await super().delete_run(namespace, name)
        self.leases.drop((namespace, name))
        return deleted

    async def _write_change(self, change: RunChange) -> bool:
        """The change fenced by our lease (see SqlStore.record_change): False if the run is
        gone (deleted, or re-created under a new uid); LeaseLost if it exists but another
        replica holds it now (nothing is written either way)."""
        namespace, name = change.namespace, change.name
        key = (namespace, name)
        held = self.leases.epoch(key)
        epoch = -1 if held is None else held  # not held: matches nothing, reported below
        completed = int(change.completed)
        write = _Change(
            key,
            (namespace, name, change.status, change.phase, completed, now_iso(), epoch, change.uid),
            change.measurements,
            change.outbox,
            self.owner,
            self.leases.seconds,
        )
        outcome = await self.group.run(write)
        if outcome is not None:
            self.leases.drop(key)
            if outcome == "gone":
                return False
            raise LeaseLost(f"run {namespace}/{name}: lease lost by {self.owner!r}")
        if change.completed:
            self.leases.drop(key)
        return True

    # ---- leases (see store/leases.py) ----

    async def claim_runs(self, limit: int = 100) -> list[ClaimedRun]:
        """Claim up to `limit` unfinished runs that nobody holds."""
        async with self.pool.acquire() as conn, conn.transaction():
            return await self.leases.claim(conn, limit)

    async def renew_leases(self) -> list[RunKey]:
        """Extend our leases; the runs returned are no longer ours: stop them locally."""
        return await self.leases.renew(self.pool)

    async def release_leases(self) -> int:
        """Hand every run we hold back (graceful shutdown)."""
        return await self.leases.release(self.pool)

    async def release_runs(self, keys: list[RunKey]) -> int:
        """Hand back some held runs (they stopped here) so a claim resumes them."""
        return await self.leases.release_some(self.pool, keys)

    def forget_lease(self, namespace: str, name: str) -> None:
        self.leases.drop((namespace, name))

    def held_leases(self) -> list[RunKey]:
        return list(self.leases.held())

    # ---- outbox ----

    async def due_deliveries(
        self, now: float, limit: int = 100, *, skip: Collection[str] = ()
    ) -> list[OutboxRow]:
        """Claim and return the due rows, so other replicas do not send them too.

        Rows another replica claimed are skipped until it records the attempt or its
        claim runs out; our own claims never block us (one pass at a time per replica).
        Rows of the receivers in `skip` are left out unless we claim them already: the
        rows we hold (queued or in flight) are claimed again as before, so their claims
        do not run out while we still mean to send them.
        """
        returning = ", ".join(f"o.{c.strip()}" for c in OUTBOX_COLUMNS.split(","))
        async with self._transaction() as tx:
            rows = await tx.fetch(
                "WITH due AS (SELECT event_id, target FROM outbox"
                "  WHERE state='pending' AND next_attempt_at<=$1"
                "   AND (claimed_until IS NULL OR claimed_until<=$1 OR claimed_by=$3)"
                "   AND (claimed_by=$3 OR NOT target LIKE ANY($5::text[]))"
                "  ORDER BY next_attempt_at, created_at LIMIT $2 FOR UPDATE SKIP LOCKED)"
                " UPDATE outbox o SET claimed_by=$3, claimed_until=$1 + $4"
                " FROM due WHERE o.event_id=due.event_id AND o.target=due.target"
                f" RETURNING {returning}",
                now,
                limit,
                self.owner,
                DELIVERY_CLAIM_SECONDS,
                receiver_patterns(skip),
            )
        out = [outbox_from_row(r) for r in rows]
        out.sort(key=lambda r: (r.next_attempt_at, r.created_at))  # RETURNING is unordered
        return out

    async def next_delivery_at(self) -> float | None:
        # A row another replica is sending is not due for us before its claim runs out;
        # counting it as due would spin our deliverer until that replica records it.
        row = await self._fetchone(
            "SELECT MIN(CASE WHEN claimed_until IS NOT NULL AND claimed_by IS DISTINCT FROM $1"
            " THEN GREATEST(next_attempt_at, claimed_until) ELSE next_attempt_at END)"
            " FROM outbox WHERE state='pending'",
            self.owner,
        )
        return float(row[0]) if row and row[0] is not None else None

    async def release_deliveries(self) -> None:
        """Graceful shutdown: drop our claims on rows we did not get to record."""
        await self._execute(
            "UPDATE outbox SET claimed_by=NULL, claimed_until=NULL"
            " WHERE claimed_by=$1 AND state='pending'",
            self.owner,
        )
