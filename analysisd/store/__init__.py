"""Persistence: templates, runs, measurement history and the webhook outbox."""

from __future__ import annotations

from analysisd.store.base import (
    Conflict,
    Leasing,
    LimitExceeded,
    NotFound,
    Store,
    StoreError,
    UnsupportedStore,
    leasing_of,
)
from analysisd.store.leases import LeaseLost
from analysisd.store.postgres import DEFAULT_LEASE_SECONDS, PostgresStore
from analysisd.store.records import ClaimedRun, OutboxRow, RunRecord, StoredMeasurement
from analysisd.store.sqlite import SqliteStore

__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "ClaimedRun",
    "Conflict",
    "LeaseLost",
    "Leasing",
    "LimitExceeded",
    "NotFound",
    "OutboxRow",
    "PostgresStore",
    "RunRecord",
    "SqliteStore",
    "Store",
    "StoreError",
    "StoredMeasurement",
    "UnsupportedStore",
    "leasing_of",
    "open_store",
]


def open_store(url: str, *, owner: str = "", lease_seconds: float = DEFAULT_LEASE_SECONDS) -> Store:
    """A store for a URL (not yet opened): sqlite:///relative.db, sqlite:////abs.db,
    :memory:, postgresql://user@host:5432/db. `owner` is the replica id that leases
    runs; `lease_seconds` how long a lease lasts unrenewed (PostgreSQL only)."""
    if url == ":memory:" or url == "sqlite://":
        return SqliteStore(":memory:", owner=owner)
    if url.startswith("sqlite:///"):
        return SqliteStore(url[len("sqlite:///") :], owner=owner)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresStore(url, owner=owner, lease_seconds=lease_seconds)
    raise UnsupportedStore(f"store: unsupported URL scheme in {url.split('://')[0]!r}")
