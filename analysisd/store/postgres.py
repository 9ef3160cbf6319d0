"""The PostgreSQL store (asyncpg): the same interface and schema as the SQLite store.

The migrations are portable SQL, so both backends share them. Each state change
is one transaction, as in SQLite. Several replicas share one database by leasing
runs (analysisd/store/leases.py): a replica runs only the runs it claimed, and every
status write is fenced by owner and epoch, so a replica whose lease was taken over
writes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from analysisd.store.leases import DB_NOW, ClaimedRun, LeaseLost, Leases, RunKey
from analysisd.store.migrations import load_migrations
from analysisd.store.records import (
    TTL_MARKER,
    Conflict,
    OutboxRow,
    RunRecord,
    StoredMeasurement,
    StoreError,
    UnsupportedStore,
    dumps,
    now_iso,
    outbox_from_row,
    run_from_row,
)
from analysisd.store.sqlite import LimitExceeded

_RUN_COLUMNS = "namespace, name, uid, body, status, phase, completed, labels, created_at, epoch"
_OUTBOX_COLUMNS = (
    "event_id, target, secret_name, namespace, name, event_type, body, state, attempts,"
    " created_at, next_attempt_at, last_attempt_at, last_status, last_error"
)
_TIMEOUT = 30.0  # seconds for any one statement
DEFAULT_LEASE_SECONDS = 30.0
# How long a replica's claim on due outbox rows keeps other replicas off them: longer
# than any one delivery attempt, short enough that a crashed claimer delays little.
DELIVERY_CLAIM_SECONDS = 60.0


def _affected(status: str) -> int:
    """asyncpg's command tag ("UPDATE 1", "INSERT 0 1") -> rows affected."""
    return int(status.rsplit(" ", 1)[-1])


class PostgresStore:
    """Templates, runs, measurement history and the outbox in PostgreSQL."""

    leasing = True  # several replicas may share the database

    def __init__(
        self, dsn: str, *, owner: str = "", lease_seconds: float = DEFAULT_LEASE_SECONDS
    ) -> None:
        self.dsn = dsn
        self.owner = owner
        self.leases = Leases(owner, lease_seconds)
        self._pool: Any = None  # asyncpg.Pool; asyncpg is the optional [postgres] extra

    async def open(self) -> None:
        try:
            import asyncpg
        except ModuleNotFoundError:
            raise UnsupportedStore(
                "store: postgresql:// needs asyncpg (pip install 'analysisd[postgres]')"
            ) from None
        try:
            self._pool = await asyncpg.create_pool(
                self.dsn, min_size=1, max_size=10, command_timeout=_TIMEOUT, timeout=_TIMEOUT
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
            pool, self._pool = self._pool, None
            await pool.close()

    async def __aenter__(self) -> PostgresStore:
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
    def pool(self) -> Any:
        if self._pool is None:
            raise RuntimeError("store is not open")
        return self._pool

    async def _migrate(self) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            # One migrator at a time across replicas.
            await conn.execute("SELECT pg_advisory_xact_lock(727274)")
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations"
                " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            applied = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for migration in load_migrations():
                if migration.version in applied:
                    continue
                for statement in migration.statements():
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO schema_migrations VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    now_iso(),
                )

    async def schema_version(self) -> int:
        value = await self.pool.fetchval("SELECT MAX(version) FROM schema_migrations")
        return int(value or 0)

    # ---- templates ----

    async def put_template(
        self, kind: str, namespace: str, name: str, body: dict[str, Any], *, create: bool
    ) -> bool:
        now = now_iso()
        async with self.pool.acquire() as conn, conn.transaction():
            inserted = _affected(
                await conn.execute(
                    "INSERT INTO templates VALUES ($1, $2, $3, $4, $5, $5)"
                    " ON CONFLICT (kind, namespace, name) DO NOTHING",
                    kind,
                    namespace,
                    name,
                    dumps(body),
                    now,
                )
            )
            if inserted:
                return True
            if create:
                raise Conflict(f'{kind} "{name}" already exists')
            await conn.execute(
                "UPDATE templates SET body=$1, updated_at=$2"
                " WHERE kind=$3 AND namespace=$4 AND name=$5",
                dumps(body),
                now,
                kind,
                namespace,
                name,
            )
            return False

    async def get_template(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        body = await self.pool.fetchval(
            "SELECT body FROM templates WHERE kind=$1 AND namespace=$2 AND name=$3",
            kind,
            namespace,
            name,
        )
        return json.loads(body) if body else None

    async def list_templates(self, kind: str, namespace: str) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT body FROM templates WHERE kind=$1 AND namespace=$2 ORDER BY name",
            kind,
            namespace,
        )
        return [json.loads(r[0]) for r in rows]

    async def delete_template(self, kind: str, namespace: str, name: str) -> bool:
        status = await self.pool.execute(
            "DELETE FROM templates WHERE kind=$1 AND namespace=$2 AND name=$3",
            kind,
            namespace,
            name,
        )
        return _affected(status) > 0

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
        async with self.pool.acquire() as conn, conn.transaction():
            if max_active is not None:
                # Serialise creates per namespace so two replicas cannot both squeeze in.
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", namespace)
                active = await conn.fetchval(
                    "SELECT COUNT(*) FROM runs WHERE namespace=$1 AND completed=0", namespace
                )
                if active >= max_active:
                    raise LimitExceeded(
                        f'namespace "{namespace}" already has {active} unfinished runs'
                        f" (limit {max_active})"
                    )
            inserted = _affected(
                await conn.execute(
                    # The creating replica holds the run from the start (epoch 1).
                    "INSERT INTO runs (namespace, name, uid, body, status, phase, completed,"
                    " labels, created_at, updated_at, owner, lease_expires_at, epoch)"
                    f" VALUES ($1,$2,$3,$4,$5,$6,0,$7,$8,$8,$9,{DB_NOW} + $10,1)"
                    " ON CONFLICT (namespace, name) DO NOTHING",
                    namespace,
                    name,
                    uid,
                    dumps(body),
                    dumps(status) if status is not None else None,
                    phase,
                    dumps(labels),
                    created_at,
                    self.owner,
                    self.leases.seconds,
                )
            )
            if not inserted:
                raise Conflict(f'AnalysisRun "{name}" already exists')
        self.leases.hold((namespace, name), 1)

    async def get_run(self, namespace: str, name: str) -> RunRecord | None:
        row = await self.pool.fetchrow(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE namespace=$1 AND name=$2", namespace, name
        )
        return run_from_row(row) if row else None

    async def list_runs(self, namespace: str, phase: str | None = None) -> list[RunRecord]:
        if phase:
            rows = await self.pool.fetch(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE namespace=$1 AND phase=$2 ORDER BY name",
                namespace,
                phase,
            )
        else:
            rows = await self.pool.fetch(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE namespace=$1 ORDER BY name", namespace
            )
        return [run_from_row(r) for r in rows]

    async def completed_runs_with_ttl(self, limit: int = 1000) -> list[RunRecord]:
        """Completed runs whose manifest has a ttlStrategy, oldest first (for TTL deletion)."""
        rows = await self.pool.fetch(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE completed=1 AND body LIKE $1"
            " ORDER BY created_at, name LIMIT $2",
            TTL_MARKER,
            limit,
        )
        return [run_from_row(r) for r in rows]

    async def unfinished_runs(self) -> list[RunRecord]:
        rows = await self.pool.fetch(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE completed=0 ORDER BY created_at, name"
        )
        return [run_from_row(r) for r in rows]

    async def unfinished_manifests(self) -> list[str]:
        rows = await self.pool.fetch(
            "SELECT body, status FROM runs WHERE completed=0 ORDER BY created_at, name"
        )
        return [body if not status else f'{body[:-1]},"status":{status}}}' for body, status in rows]

    async def count_runs(self, *, completed: bool | None = None) -> dict[str, int]:
        if completed is None:
            rows = await self.pool.fetch("SELECT phase, COUNT(*) FROM runs GROUP BY phase")
        else:
            rows = await self.pool.fetch(
                "SELECT phase, COUNT(*) FROM runs WHERE completed=$1 GROUP BY phase",
                int(completed),
            )
        return {r[0]: r[1] for r in rows}

    async def mark_terminate(self, namespace: str, name: str, body: dict[str, Any]) -> None:
        """Store spec.terminate. A run another replica holds is also released (epoch bumped):
        that replica stops it at its next renewal or write, and whoever claims it next
        resumes it with terminate set, which ends it."""
        await self.pool.execute(
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
        async with self.pool.acquire() as conn, conn.transaction():
            status = await conn.execute(
                "DELETE FROM runs WHERE namespace=$1 AND name=$2", namespace, name
            )
            await conn.execute(
                "DELETE FROM measurements WHERE namespace=$1 AND name=$2", namespace, name
            )
        self.leases.drop((namespace, name))
        return _affected(status) > 0

    # ---- leases ----

    async def claim_runs(self, limit: int = 100) -> list[ClaimedRun]:
        """Claim up to `limit` unfinished runs that nobody holds (see store/leases.py)."""
        async with self.pool.acquire() as conn, conn.transaction():
            return await self.leases.claim(conn, limit)

    async def renew_leases(self) -> list[RunKey]:
        """Extend our leases; the runs returned are no longer ours: stop them locally."""
        return await self.leases.renew(self.pool)

    async def release_leases(self) -> int:
        """Hand every run we hold back (graceful shutdown)."""
        return await self.leases.release(self.pool)

    def forget_lease(self, namespace: str, name: str) -> None:
        self.leases.drop((namespace, name))

    def held_leases(self) -> list[RunKey]:
        return list(self.leases.held())

    async def release_runs(self, keys: list[RunKey]) -> int:
        """Hand back some held runs (they stopped here) so a claim resumes them."""
        return await self.leases.release_some(self.pool, keys)

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
        """Status + new measurements + outbox rows in one transaction, fenced by our lease.

        False if the run is gone (deleted, or re-created under a new uid); LeaseLost if it
        exists but another replica holds it now (nothing is written either way).
        """
        key = (namespace, name)
        held = self.leases.epoch(key)
        epoch = -1 if held is None else held  # not held: matches nothing, reported below
        # Fenced: only the owner, at the epoch it claimed with. A write also extends the lease.
        sql = (
            "UPDATE runs SET status=$1, phase=$2, completed=$3, updated_at=$4,"
            f" lease_expires_at={DB_NOW} + $9"
            " WHERE namespace=$5 AND name=$6 AND owner=$7 AND epoch=$8"
        )
        params: list[Any] = [
            dumps(status),
            phase,
            int(completed),
            now_iso(),
            namespace,
            name,
            self.owner,
            epoch,
            self.leases.seconds,
        ]
        if uid is not None:
            sql += " AND uid=$10"
            params.append(uid)
        async with self.pool.acquire() as conn, conn.transaction():
            if not _affected(await conn.execute(sql, *params)):
                row = await conn.fetchrow(
                    "SELECT uid FROM runs WHERE namespace=$1 AND name=$2", namespace, name
                )
                self.leases.drop(key)
                if row is None or (uid is not None and row[0] != uid):
                    return False
                raise LeaseLost(f"run {namespace}/{name}: lease lost by {self.owner!r}")
            for m in measurements:
                seq = await conn.fetchval(
                    "SELECT COALESCE(MAX(seq), 0) + 1 FROM measurements"
                    " WHERE namespace=$1 AND name=$2 AND metric=$3",
                    namespace,
                    name,
                    m.metric,
                )
                await conn.execute(
                    "INSERT INTO measurements VALUES ($1,$2,$3,$4,$5,$6,$7)",
                    namespace,
                    name,
                    m.metric,
                    seq,
                    m.phase,
                    int(m.dry_run),
                    dumps(m.body),
                )
            rows = [
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
            ]
            if rows:
                await conn.executemany(
                    f"INSERT INTO outbox ({_OUTBOX_COLUMNS}) VALUES"
                    " ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)"
                    " ON CONFLICT (event_id, target) DO NOTHING",
                    rows,
                )
        if completed:
            self.leases.drop(key)
        return True

    async def measurements(self, namespace: str, name: str) -> list[StoredMeasurement]:
        rows = await self.pool.fetch(
            "SELECT metric, phase, dry_run, body FROM measurements"
            " WHERE namespace=$1 AND name=$2 ORDER BY metric, seq",
            namespace,
            name,
        )
        return [StoredMeasurement(r[0], r[1], bool(r[2]), json.loads(r[3])) for r in rows]

    # ---- outbox ----

    async def due_deliveries(self, now: float, limit: int = 100) -> list[OutboxRow]:
        """Claim and return the due rows, so other replicas do not send them too.

        Rows another replica claimed are skipped until it records the attempt or its
        claim runs out; our own claims never block us (one pass at a time per replica).
        """
        returning = ", ".join(f"o.{c.strip()}" for c in _OUTBOX_COLUMNS.split(","))
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "WITH due AS (SELECT event_id, target FROM outbox"
                "  WHERE state='pending' AND next_attempt_at<=$1"
                "   AND (claimed_until IS NULL OR claimed_until<=$1 OR claimed_by=$3)"
                "  ORDER BY next_attempt_at, created_at LIMIT $2 FOR UPDATE SKIP LOCKED)"
                " UPDATE outbox o SET claimed_by=$3, claimed_until=$1 + $4"
                " FROM due WHERE o.event_id=due.event_id AND o.target=due.target"
                f" RETURNING {returning}",
                now,
                limit,
                self.owner,
                DELIVERY_CLAIM_SECONDS,
            )
        out = [outbox_from_row(r) for r in rows]
        out.sort(key=lambda r: (r.next_attempt_at, r.created_at))  # RETURNING is unordered
        return out

    async def next_delivery_at(self) -> float | None:
        # A row another replica is sending is not due for us before its claim runs out;
        # counting it as due would spin our deliverer until that replica records it.
        value = await self.pool.fetchval(
            "SELECT MIN(CASE WHEN claimed_until IS NOT NULL AND claimed_by IS DISTINCT FROM $1"
            " THEN GREATEST(next_attempt_at, claimed_until) ELSE next_attempt_at END)"
            " FROM outbox WHERE state='pending'",
            self.owner,
        )
        return float(value) if value is not None else None

    async def release_deliveries(self) -> None:
        """Graceful shutdown: drop our claims on rows we did not get to record."""
        await self.pool.execute(
            "UPDATE outbox SET claimed_by=NULL, claimed_until=NULL"
            " WHERE claimed_by=$1 AND state='pending'",
            self.owner,
        )

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
        await self.pool.execute(
            "UPDATE outbox SET state=$1, attempts=attempts+1, last_attempt_at=$2,"
            " next_attempt_at=$3, last_status=$4, last_error=$5,"
            " claimed_by=NULL, claimed_until=NULL WHERE event_id=$6 AND target=$7",
            state,
            at,
            next_attempt_at,
            status,
            error,
            row.event_id,
            row.target,
        )

    async def deliveries(self, namespace: str, name: str) -> list[OutboxRow]:
        rows = await self.pool.fetch(
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE namespace=$1 AND name=$2"
            " ORDER BY created_at, event_id, target",
            namespace,
            name,
        )
        return [outbox_from_row(r) for r in rows]

    async def outbox_counts(self) -> dict[str, int]:
        rows = await self.pool.fetch("SELECT state, COUNT(*) FROM outbox GROUP BY state")
        return {r[0]: r[1] for r in rows}
