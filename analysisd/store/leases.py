"""Run leases for several replicas on one PostgreSQL database.

A replica owns a run while `runs.owner` is its id and `runs.lease_expires_at` (database
clock, epoch seconds) is in the future. Claiming bumps `runs.epoch`, the fencing token:
every status write names the owner and the epoch it claimed with, so a replica whose
lease was taken over writes nothing (its UPDATE matches no row). Times come from the
database's clock, never the replica's, so clock skew between replicas cannot make two
of them believe they hold the same run.

`Leases` keeps the epochs this replica holds (one entry per run it is running) and
holds the SQL; PostgresStore owns the pool and calls in.
"""

from __future__ import annotations

from typing import Any

from analysisd.store.base import StoreError
from analysisd.store.records import ClaimedRun, RunKey, splice_manifest

# The database's wall clock in epoch seconds; clock_timestamp() moves within a transaction.
DB_NOW = "extract(epoch from clock_timestamp())"


class LeaseLost(StoreError):
    """Another replica claimed the run (or it was released): this replica must not write it."""


class Leases:
    """The fencing epochs this replica holds, and the lease statements."""

    def __init__(self, owner: str, lease_seconds: float) -> None:
        if lease_seconds <= 0:
            raise ValueError(f"lease duration must be > 0 seconds, got {lease_seconds}")
        self.owner = owner
        self.seconds = lease_seconds
        self._epochs: dict[RunKey, int] = {}

    # ---- bookkeeping ----

    def hold(self, key: RunKey, epoch: int) -> None:
        self._epochs[key] = epoch

    def drop(self, key: RunKey) -> None:
        self._epochs.pop(key, None)

    def epoch(self, key: RunKey) -> int | None:
        return self._epochs.get(key)

    def held(self) -> dict[RunKey, int]:
        return dict(self._epochs)

    # ---- statements (conn is an asyncpg connection or pool) ----

    async def disown_previous(self, conn: Any) -> int:
        """At start: a previous process with our id (a restart with a fixed replica id)
        may have left leases behind; this process holds nothing yet, so free them."""
        status: str = await conn.execute(
            f"UPDATE runs SET owner=NULL, lease_expires_at={DB_NOW}, epoch=epoch+1"
            " WHERE owner=$1 AND completed=0",
            self.owner,
        )
        return int(status.rsplit(" ", 1)[-1])

    async def claim(self, conn: Any, limit: int) -> list[ClaimedRun]:
        """Take up to `limit` unfinished runs nobody holds (unowned or lease expired).

        SKIP LOCKED lets concurrent claimers split the work instead of queueing on the
        same rows; the epoch bump fences off whoever held a run before.
        """
        rows = await conn.fetch(
            "WITH free AS ("
            "  SELECT namespace, name FROM runs"
            "  WHERE completed=0 AND owner IS DISTINCT FROM $1"
            f"   AND (owner IS NULL OR lease_expires_at IS NULL OR lease_expires_at < {DB_NOW})"
            "  ORDER BY created_at, name LIMIT $2 FOR UPDATE SKIP LOCKED)"
            f" UPDATE runs r SET owner=$1, lease_expires_at={DB_NOW} + $3, epoch=r.epoch+1"
            " FROM free WHERE r.namespace=free.namespace AND r.name=free.name"
            " RETURNING r.namespace, r.name, r.epoch, r.body, r.status, r.created_at",
            self.owner,
            limit,
            self.seconds,
        )
        # RETURNING has no order of its own: keep creation order so older runs start first.
        rows = sorted(rows, key=lambda r: (r[5], r[1]))
        claimed = [ClaimedRun(r[0], r[1], r[2], splice_manifest(r[3], r[4])) for r in rows]
        for run in claimed:
            self.hold((run.namespace, run.name), run.epoch)
        return claimed

    async def renew(self, conn: Any) -> list[RunKey]:
        """Extend every lease we hold in one statement; return the runs we no longer hold.

        A held run the renewal did not reach was claimed by another replica, released by
        a terminate on another replica, or deleted. A run that completed meanwhile is not
        lost, merely finished.
        """
        before = self.held()  # snapshot first: runs created during the renewal are not "lost"
        rows = await conn.fetch(
            f"UPDATE runs SET lease_expires_at={DB_NOW} + $2"
            " WHERE owner=$1 AND completed=0 RETURNING namespace, name, epoch",
            self.owner,
            self.seconds,
        )
        renewed = {(r[0], r[1]): r[2] for r in rows}
        missing = [k for k, e in before.items() if renewed.get(k) != e]
        if not missing:
            return []
        lost: list[RunKey] = []
        for key in missing:
            if self._epochs.get(key) != before[key]:
                continue  # completed or re-claimed while we renewed
            row = await conn.fetchrow(
                "SELECT owner, epoch, completed FROM runs WHERE namespace=$1 AND name=$2", *key
            )
            if row is not None and row[2]:
                self.drop(key)  # finished: nothing to hand over
                continue
            if row is not None and row[0] == self.owner and row[1] == before[key]:
                continue  # ours after all (raced with our own write)
            self.drop(key)
            lost.append(key)
        return lost

    async def release_some(self, conn: Any, keys: list[RunKey]) -> int:
        """Hand back runs we hold but no longer run (stopped here by an error)."""
        released = 0
        for key in keys:
            epoch = self._epochs.pop(key, None)
            if epoch is None:
                continue
            status: str = await conn.execute(
                f"UPDATE runs SET owner=NULL, lease_expires_at={DB_NOW}, epoch=epoch+1"
                " WHERE namespace=$1 AND name=$2 AND owner=$3 AND epoch=$4 AND completed=0",
                key[0],
                key[1],
                self.owner,
                epoch,
            )
            released += int(status.rsplit(" ", 1)[-1])
        return released

    async def release(self, conn: Any) -> int:
        """Graceful shutdown: hand every unfinished run back at once (expiry = now)."""
        status: str = await conn.execute(
            f"UPDATE runs SET owner=NULL, lease_expires_at={DB_NOW}, epoch=epoch+1"
            " WHERE owner=$1 AND completed=0",
            self.owner,
        )
        self._epochs.clear()
        return int(status.rsplit(" ", 1)[-1])
