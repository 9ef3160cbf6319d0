"""What the store holds, as plain typed records, and the row helpers both backends share."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

RunKey = tuple[str, str]  # (namespace, name)


@dataclass(frozen=True, slots=True)
class RunRecord:
    namespace: str
    name: str
    uid: str
    body: dict[str, Any]  # manifest without status
    status: dict[str, Any] | None
    phase: str
    completed: bool
    labels: dict[str, str]
    created_at: str
    epoch: int

    def manifest(self) -> dict[str, Any]:
        """The AnalysisRun as Argo shows it: the manifest with its status."""
        out = dict(self.body)
        if self.status is not None:
            out["status"] = self.status
        return out


@dataclass(frozen=True, slots=True)
class StoredMeasurement:
    metric: str
    phase: str
    dry_run: bool
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ClaimedRun:
    """A run a replica has just leased, with the epoch that fences its writes."""

    namespace: str
    name: str
    epoch: int
    manifest: str  # the AnalysisRun JSON with its stored status


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One event bound for one target; `body` is exactly what is signed and sent."""

    event_id: str
    target: str
    secret_name: str | None
    namespace: str
    name: str
    event_type: str
    body: str
    state: str = "pending"
    attempts: int = 0
    created_at: float = 0.0
    next_attempt_at: float = 0.0
    last_attempt_at: float | None = None
    last_status: int | None = None
    last_error: str | None = None

    def public(self) -> dict[str, Any]:
        """The delivery status as the API shows it (never the secret's value, only its name)."""
        return {
            "id": self.event_id,
            "type": self.event_type,
            "target": self.target,
            "state": self.state,
            "attempts": self.attempts,
            "createdAt": self.created_at,
            "nextAttemptAt": self.next_attempt_at if self.state == "pending" else None,
            "lastAttemptAt": self.last_attempt_at,
            "lastStatus": self.last_status,
            "lastError": self.last_error,
        }


# Row helpers shared by the SQLite and PostgreSQL backends (same columns, same JSON).

# The column orders run_from_row and outbox_from_row / outbox_params read and write.
RUN_COLUMNS = "namespace, name, uid, body, status, phase, completed, labels, created_at, epoch"
OUTBOX_COLUMNS = (
    "event_id, target, secret_name, namespace, name, event_type, body, state, attempts,"
    " created_at, next_attempt_at, last_attempt_at, last_status, last_error"
)

# Bodies are compact JSON: a run with a TTL has this key (a cheap pre-filter; the
# engine's ttl_expired decides).
TTL_MARKER = '%"ttlStrategy":{%'


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def run_from_row(row: Sequence[Any]) -> RunRecord:
    return RunRecord(
        namespace=row[0],
        name=row[1],
        uid=row[2],
        body=json.loads(row[3]),
        status=json.loads(row[4]) if row[4] else None,
        phase=row[5],
        completed=bool(row[6]),
        labels=json.loads(row[7]),
        created_at=row[8],
        epoch=row[9],
    )


def outbox_from_row(row: Sequence[Any]) -> OutboxRow:
    return OutboxRow(*row)


_OUTBOX_FIELDS = tuple(column.strip() for column in OUTBOX_COLUMNS.split(","))


def outbox_params(row: OutboxRow) -> tuple[Any, ...]:
    """The row's values in OUTBOX_COLUMNS order (the columns are named as the fields)."""
    return tuple(getattr(row, field) for field in _OUTBOX_FIELDS)


def measurement_params(
    namespace: str, name: str, measurements: Iterable[StoredMeasurement]
) -> list[tuple[Any, ...]]:
    """INSERT_MEASUREMENT's parameters (store.base) for each new measurement of a run."""
    return [
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
        )
        for m in measurements
    ]


@dataclass(frozen=True, slots=True)
class NewRun:
    """A run to insert, its JSON already text (what SqlStore.create_run hands a backend)."""

    namespace: str
    name: str
    uid: str
    body: str
    status: str | None
    phase: str
    labels: str
    created_at: str


@dataclass(frozen=True, slots=True)
class RunChange:
    """One run's status change, as SqlStore.record_change hands it to a backend: the status
    as text, the new measurements and outbox rows as their statements' parameters."""

    namespace: str
    name: str
    status: str
    phase: str
    completed: bool
    measurements: list[tuple[Any, ...]]  # INSERT_MEASUREMENT's
    outbox: list[tuple[Any, ...]]  # INSERT_OUTBOX's
    uid: str | None


def splice_manifest(body: str, status: str | None) -> str:
    """A stored run as manifest JSON text (body + status) without a parse/serialise round
    trip: bodies are stored compact, always a JSON object."""
    return body if not status else f'{body[:-1]},"status":{status}}}'
