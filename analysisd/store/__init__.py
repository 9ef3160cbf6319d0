"""Persistence: templates, runs, measurement history and the webhook outbox."""

from __future__ import annotations

from analysisd.store.records import (
    Conflict,
    NotFound,
    OutboxRow,
    RunRecord,
    StoredMeasurement,
    StoreError,
    UnsupportedStore,
)
from analysisd.store.sqlite import LimitExceeded, SqliteStore

__all__ = [
    "Conflict",
    "LimitExceeded",
    "NotFound",
    "OutboxRow",
    "RunRecord",
    "SqliteStore",
    "StoreError",
    "StoredMeasurement",
    "UnsupportedStore",
    "open_store",
]


def open_store(url: str, *, owner: str = "") -> SqliteStore:
    """A store for a URL (not yet opened): sqlite:///relative.db, sqlite:////abs.db, :memory:."""
    if url == ":memory:" or url == "sqlite://":
        return SqliteStore(":memory:", owner=owner)
    if url.startswith("sqlite:///"):
        return SqliteStore(url[len("sqlite:///") :], owner=owner)
    if url.startswith(("postgresql://", "postgres://")):
        raise UnsupportedStore(
            "store: the PostgreSQL backend is not in this build yet; use sqlite:///PATH"
        )
    raise UnsupportedStore(f"store: unsupported URL scheme in {url.split('://')[0]!r}")
