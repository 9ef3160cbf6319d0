"""What a store offers (`Store`), what a store shared by replicas adds (`Leasing`),
the store's errors, and the text of the SQL both backends run.

The daemon, the API and the recorder see only the protocols. SQLite (one replica)
implements `Store`; PostgreSQL (several replicas on one database) implements both.
`SqlStore` (store/sql.py) holds every statement the two backends run alike; a backend
supplies three primitives (`_fetch`, `_execute`, `_transaction`) and the statements that
really differ (run creation, the fenced status write, outbox claims). Group commit is in
store/group_commit.py, the errors in store/errors.py.

Shared SQL is written with `?` placeholders and never has a `?` inside a literal: the
PostgreSQL backend renumbers them to `$1, $2, ...` (see postgres.numbered).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

from analysisd.store.errors import (
    Conflict,
    LimitExceeded,
    NotFound,
    RolledBack,
    StoreError,
    UnsupportedStore,
)
from analysisd.store.group_commit import GroupCommit
from analysisd.store.records import (
    OUTBOX_COLUMNS,
    RUN_COLUMNS,
    ClaimedRun,
    OutboxRow,
    RunKey,
    RunRecord,
    StoredMeasurement,
)

# The errors and group commit live in their own modules; importable from here too.
__all__ = [
    "INSERT_MEASUREMENT",
    "INSERT_OUTBOX",
    "OUTBOX_SELECT",
    "RUNS_SELECT",
    "SKIP_RECEIVERS_MAX",
    "Conflict",
    "GroupCommit",
    "Leasing",
    "LimitExceeded",
    "NotFound",
    "RolledBack",
    "Row",
    "Store",
    "StoreError",
    "Tx",
    "UnsupportedStore",
    "leasing_of",
    "receiver_patterns",
]

Row = Sequence[Any]


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
        status: dict[str, Any] | str | None,
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
        status: dict[str, Any] | str,
        phase: str,
        completed: bool,
        measurements: Iterable[StoredMeasurement],
        outbox: Iterable[OutboxRow],
        uid: str | None = None,
    ) -> bool: ...
    async def measurements(self, namespace: str, name: str) -> list[StoredMeasurement]: ...

    async def due_deliveries(
        self, now: float, limit: int = 100, *, skip: Collection[str] = ()
    ) -> list[OutboxRow]: ...
    async def next_delivery_at(self) -> float | None: ...
    async def postpone_deliveries(self, skip: Collection[str], until: float) -> int: ...
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


RUNS_SELECT = f"SELECT {RUN_COLUMNS} FROM runs"
OUTBOX_SELECT = f"SELECT {OUTBOX_COLUMNS} FROM outbox"
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

# due_deliveries(skip=...): the receivers (URL prefixes, scheme://netloc as written in
# the targets) whose rows the deliverer does not want now (in back-off, or a full queue).
# Their rows stay pending, untouched, and are fetched again once no longer skipped.
SKIP_RECEIVERS_MAX = 100  # prefixes; more are ignored (their rows are fetched as before)


def receiver_patterns(prefixes: Collection[str]) -> list[str]:
    """LIKE patterns (escape character backslash) for every target under the prefixes:
    the prefix itself, or followed by a path, a query or a fragment. A prefix ends its
    netloc, so no other receiver's target matches."""
    patterns: list[str] = []
    for prefix in sorted(prefixes)[:SKIP_RECEIVERS_MAX]:
        text = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        patterns += [text, text + "/%", text + "?%", text + "#%"]
    return patterns
