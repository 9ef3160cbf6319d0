"""`list_runs_newest`, the web pages' run list: one page, newest first, and the total;
on both store backends (SQLite; PostgreSQL when reachable)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from analysisd.store import PostgresStore, SqliteStore, Store
from tests.rigs.postgres import scratch_schema


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        async with SqliteStore(tmp_path / "s.db") as sqlite:
            yield sqlite
        return
    async with scratch_schema("n") as schema, PostgresStore(schema.url) as postgres:
        yield postgres


async def test_pages_newest_first_with_the_total_and_the_phase_filter(store: Store) -> None:
    # created in three seconds, names out of creation order; two namespaces
    for index, (name, second) in enumerate(
        [("c", 1), ("a", 2), ("e", 2), ("b", 3), ("d", 3), ("z", 0)]
    ):
        namespace = "other" if name == "z" else "ns"
        phase = "Running" if index % 2 else "Pending"
        created = f"2026-01-01T00:00:0{second}Z"
        body = {"metadata": {"name": name}}
        await store.create_run(namespace, name, "uid", body, None, phase, {}, created)

    total, rows = await store.list_runs_newest("ns", limit=2)
    assert total == 5 and [r.name for r in rows] == ["d", "b"]
    total, rows = await store.list_runs_newest("ns", limit=2, offset=2)
    assert total == 5 and [r.name for r in rows] == ["e", "a"]
    total, rows = await store.list_runs_newest("ns", limit=2, offset=4)
    assert total == 5 and [r.name for r in rows] == ["c"]
    assert rows[0].body == {"metadata": {"name": "c"}} and rows[0].namespace == "ns"
    total, rows = await store.list_runs_newest("ns", "Running", limit=10)
    assert total == 2 and [r.name for r in rows] == ["b", "a"]
    assert await store.list_runs_newest("none", limit=10) == (0, [])
