"""Both store backends (SQLite; PostgreSQL when reachable): migrations, one-transaction
changes, outbox bookkeeping."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from analysisd.store import (
    Conflict,
    LeaseLost,
    LimitExceeded,
    OutboxRow,
    PostgresStore,
    SqliteStore,
    Store,
    StoredMeasurement,
)
from analysisd.store.migrations import load_migrations
from tests.rigs.postgres import scratch_schema


def _row(event_id: str, at: float = 0.0) -> OutboxRow:
    return OutboxRow(
        event_id,
        "http://127.0.0.1:1/hook",
        None,
        "ns",
        "r",
        "t",
        "{}",
        created_at=at,
        next_attempt_at=at,
    )


Opener = Callable[[], Awaitable[Store]]


@pytest.fixture(params=["sqlite", "postgres"])
async def opener(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Opener]:
    """Opens a fresh store of one backend (again and again: same database each time)."""
    if request.param == "sqlite":

        async def open_sqlite() -> Store:
            store = SqliteStore(tmp_path / "s.db")
            await store.open()
            return store

        yield open_sqlite
        return
    async with scratch_schema("t") as schema:

        async def open_pg() -> Store:
            store = PostgresStore(schema.url)
            await store.open()
            return store

        yield open_pg


async def _add_run(
    store: Store, name: str = "r", namespace: str = "ns", max_active: int | None = None
) -> None:
    await store.create_run(
        namespace,
        name,
        "uid",
        {"metadata": {"name": name}},
        None,
        "Pending",
        {"a": "b"},
        "2026-01-01T00:00:00Z",
        max_active=max_active,
    )


async def test_migrations_apply_once_and_reopen_keeps_data(opener: Opener) -> None:
    store = await opener()
    await _add_run(store)
    assert await store.schema_version() == len(load_migrations())
    await store.aclose()
    again = await opener()
    try:
        assert (await again.get_run("ns", "r")) is not None
        assert await again.schema_version() == len(load_migrations())
    finally:
        await again.aclose()


async def test_duplicate_run_conflicts_and_namespace_limit_counts_only_unfinished(
    opener: Opener,
) -> None:
    store = await opener()
    try:
        await _add_run(store, "a", max_active=1)
        with pytest.raises(Conflict):
            await _add_run(store, "a")
        with pytest.raises(LimitExceeded):
            await _add_run(store, "b", max_active=1)
        await store.record_change(
            "ns",
            "a",
            status={"phase": "Successful"},
            phase="Successful",
            completed=True,
            measurements=[],
            outbox=[],
        )
        await _add_run(store, "b", max_active=1)
        await _add_run(store, "c", namespace="other", max_active=1)
    finally:
        await store.aclose()


async def _finish(
    store: Store, name: str, *, completed: bool = True, uid: str | None = None
) -> bool:
    phase = "Successful" if completed else "Running"
    return await store.record_change(
        "ns",
        name,
        status={"phase": phase},
        phase=phase,
        completed=completed,
        measurements=[],
        outbox=[],
        uid=uid,
    )


async def test_namespace_limit_follows_completions_deletions_and_a_reopen(
    opener: Opener,
) -> None:
    """The active-runs limit after the namespace was counted once (SQLite keeps the count
    from there on): every write that changes what is unfinished moves it, none other."""
    store = await opener()
    try:
        await _add_run(store, "a", max_active=2)
        await _add_run(store, "b", max_active=2)
        with pytest.raises(LimitExceeded):
            await _add_run(store, "c", max_active=2)
        with pytest.raises(Conflict):  # taken wins over full, as before
            await _add_run(store, "a", max_active=2)
        assert await _finish(store, "a", completed=False)  # not completing: no room
        with pytest.raises(LimitExceeded):
            await _add_run(store, "c", max_active=2)
        assert await _finish(store, "a")  # completed: one place free
        # Completed again: still one place, not two (PostgreSQL: no longer held).
        with contextlib.suppress(LeaseLost):
            await _finish(store, "a")
        await _add_run(store, "c", max_active=2)
        with pytest.raises(LimitExceeded):
            await _add_run(store, "d", max_active=2)
        assert await store.delete_run("ns", "a")  # a finished run: frees nothing
        with pytest.raises(LimitExceeded):
            await _add_run(store, "d", max_active=2)
        assert await store.delete_run("ns", "b")  # an unfinished one: frees a place
        await _add_run(store, "d", max_active=2)
        # Runs added without a limit count all the same.
        await _add_run(store, "e")
        with pytest.raises(LimitExceeded):
            await _add_run(store, "f", max_active=3)
        await _add_run(store, "f", max_active=4)
        # A completion fenced off by another uid (a re-created run's) frees nothing.
        try:  # SQLite writes nothing; PostgreSQL also says the run is not this one's
            fenced = await _finish(store, "f", uid="someone-else")
        except LeaseLost:
            fenced = False
        assert not fenced
        with pytest.raises(LimitExceeded):
            await _add_run(store, "g", max_active=4)
    finally:
        await store.aclose()
    again = await opener()
    try:
        with pytest.raises(LimitExceeded):
            await _add_run(again, "g", max_active=4)
        assert await again.delete_run("ns", "c")
        await _add_run(again, "g", max_active=4)
        with pytest.raises(LimitExceeded):
            await _add_run(again, "h", max_active=4)
    finally:
        await again.aclose()


async def test_record_change_writes_status_measurements_and_outbox_together(opener: Opener) -> None:
    store = await opener()
    try:
        await _add_run(store)
        m = StoredMeasurement("metric", "Successful", False, {"phase": "Successful", "value": "1"})
        assert await store.record_change(
            "ns",
            "r",
            status={"phase": "Running"},
            phase="Running",
            completed=False,
            measurements=[m, m],
            outbox=[_row("e1"), _row("e2")],
        )
        history = await store.measurements("ns", "r")
        assert [h.body["value"] for h in history] == ["1", "1"]
        assert len(await store.deliveries("ns", "r")) == 2
        record = await store.get_run("ns", "r")
        assert record is not None and record.phase == "Running" and record.epoch == 1
        assert [r.name for r in await store.unfinished_runs()] == ["r"]
    finally:
        await store.aclose()


async def test_change_for_a_deleted_run_writes_nothing(opener: Opener) -> None:
    store = await opener()
    try:
        await _add_run(store)
        assert await store.delete_run("ns", "r")
        m = StoredMeasurement("metric", "Successful", False, {})
        assert not await store.record_change(
            "ns",
            "r",
            status={},
            phase="Running",
            completed=False,
            measurements=[m],
            outbox=[_row("e1")],
        )
        assert await store.measurements("ns", "r") == []
        assert await store.deliveries("ns", "r") == []
    finally:
        await store.aclose()


async def test_failed_transaction_leaves_nothing_behind(opener: Opener) -> None:
    store = await opener()
    try:
        await _add_run(store)
        bad = StoredMeasurement("metric", "Successful", False, {"x": object()})  # not JSON
        with pytest.raises(TypeError):
            await store.record_change(
                "ns",
                "r",
                status={"phase": "Running"},
                phase="Running",
                completed=False,
                measurements=[bad],
                outbox=[_row("e1")],
            )
        record = await store.get_run("ns", "r")
        assert record is not None and record.phase == "Pending"
        assert await store.deliveries("ns", "r") == []
    finally:
        await store.aclose()


async def test_outbox_due_rows_and_attempt_bookkeeping(opener: Opener) -> None:
    store = await opener()
    try:
        await _add_run(store)
        await store.record_change(
            "ns",
            "r",
            status={},
            phase="Running",
            completed=False,
            measurements=[],
            outbox=[_row("early", 1.0), _row("late", 50.0)],
        )
        assert [r.event_id for r in await store.due_deliveries(10.0)] == ["early"]
        assert await store.next_delivery_at() == 1.0
        early = (await store.due_deliveries(10.0))[0]
        await store.record_attempt(
            early, state="pending", at=10.0, next_attempt_at=20.0, status=503, error="HTTP 503"
        )
        assert await store.due_deliveries(10.0) == []
        retried = (await store.due_deliveries(20.0))[0]
        assert retried.attempts == 1 and retried.last_status == 503
        await store.record_attempt(
            retried, state="delivered", at=21.0, next_attempt_at=21.0, status=200, error=None
        )
        assert await store.outbox_counts() == {"delivered": 1, "pending": 1}
    finally:
        await store.aclose()


async def test_late_change_of_a_deleted_run_does_not_touch_its_recreated_namesake(
    opener: Opener,
) -> None:
    store = await opener()
    try:
        await _add_run(store)  # uid "uid"
        await store.delete_run("ns", "r")
        await store.create_run("ns", "r", "uid-2", {}, None, "Pending", {}, "2026-01-01T00:00:00Z")
        written = await store.record_change(
            "ns",
            "r",
            status={"phase": "Failed"},
            phase="Failed",
            completed=True,
            measurements=[],
            outbox=[],
            uid="uid",
        )
        assert not written
        record = await store.get_run("ns", "r")
        assert record is not None and record.phase == "Pending"
    finally:
        await store.aclose()
