"""Run leases in the PostgreSQL store: claims split work, writes are fenced by owner and
epoch, renewal notices lost runs, release hands runs over at once.

Leases are expired with SQL (lease_expires_at = 0) rather than by waiting, so nothing
here depends on timing. Each test gets its own schema in the shared database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from analysisd.store import LeaseLost, OutboxRow, PostgresStore, StoredMeasurement
from tests.rigs.postgres import PG_DSN, scratch_schema

OpenStore = Callable[[str], Awaitable[PostgresStore]]


class Schema:
    def __init__(self, admin: Any, name: str) -> None:
        self.admin = admin
        self.name = name

    async def expire_all(self) -> None:
        """Every lease runs out now (as if its holder stopped renewing long ago)."""
        await self.admin.execute(f"UPDATE {self.name}.runs SET lease_expires_at = 0")

    async def row(self, name: str) -> Any:
        return await self.admin.fetchrow(
            f"SELECT owner, epoch, status, phase FROM {self.name}.runs WHERE name=$1", name
        )


@pytest.fixture
async def schema() -> AsyncIterator[Schema]:
    async with scratch_schema("l") as scratch:
        yield Schema(scratch.admin, scratch.name)


@pytest.fixture
async def open_store(schema: Schema) -> AsyncIterator[OpenStore]:
    opened: list[PostgresStore] = []

    async def make(owner: str) -> PostgresStore:
        store = PostgresStore(f"{PG_DSN}?search_path={schema.name}", owner=owner)
        await store.open()
        opened.append(store)
        return store

    try:
        yield make
    finally:
        for store in opened:
            await store.aclose()


async def _create(store: PostgresStore, name: str) -> None:
    body = {"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun"}
    body["metadata"] = {"name": name, "namespace": "ns", "uid": f"uid-{name}"}  # type: ignore[assignment]
    await store.create_run(
        "ns", name, f"uid-{name}", body, None, "Pending", {}, f"2026-01-01T00:00:{name[-2:]}Z"
    )


def _change(store: PostgresStore, name: str, value: str) -> Awaitable[bool]:
    measurement = StoredMeasurement("m", "Successful", False, {"value": value})
    event = OutboxRow(
        f"ev-{value}", "http://127.0.0.1:1/hook", None, "ns", name, "measurement", "{}"
    )
    return store.record_change(
        "ns",
        name,
        status={"phase": "Running", "value": value},
        phase="Running",
        completed=False,
        measurements=[measurement],
        outbox=[event],
        uid=f"uid-{name}",
    )


async def test_taken_over_replica_cannot_write(schema: Schema, open_store: OpenStore) -> None:
    a = await open_store("replica-a")
    b = await open_store("replica-b")
    await _create(a, "run-01")
    assert await _change(a, "run-01", "from-a")
    before = await schema.row("run-01")
    assert before["owner"] == "replica-a" and before["epoch"] == 1

    await schema.expire_all()
    claimed = await b.claim_runs()
    assert [(c.name, c.epoch) for c in claimed] == [("run-01", 2)]
    assert '"value":"from-a"' in claimed[0].manifest  # resumes from the stored status

    with pytest.raises(LeaseLost):
        await _change(a, "run-01", "late-from-a")
    after = await schema.row("run-01")
    assert (after["owner"], after["epoch"], after["status"]) == ("replica-b", 2, before["status"])
    assert [m.body["value"] for m in await a.measurements("ns", "run-01")] == ["from-a"]
    assert [r.event_id for r in await a.deliveries("ns", "run-01")] == ["ev-from-a"]
    # The new holder writes normally.
    assert await _change(b, "run-01", "from-b")
    assert [m.body["value"] for m in await b.measurements("ns", "run-01")] == ["from-a", "from-b"]


async def test_live_leases_are_not_claimed(schema: Schema, open_store: OpenStore) -> None:
    a = await open_store("replica-a")
    b = await open_store("replica-b")
    await _create(a, "run-01")
    assert await b.claim_runs() == []
    assert (await schema.row("run-01"))["owner"] == "replica-a"


async def test_concurrent_claims_split_runs_without_overlap(
    schema: Schema, open_store: OpenStore
) -> None:
    creator = await open_store("creator")
    for i in range(40):
        await _create(creator, f"run-{i:02d}")
    await schema.expire_all()
    claimers = [await open_store(f"replica-{i}") for i in range(4)]
    batches = await asyncio.gather(*(c.claim_runs(limit=15) for c in claimers))
    names = [run.name for batch in batches for run in batch]
    assert len(names) == len(set(names))  # nobody claimed a run twice
    more = await asyncio.gather(*(c.claim_runs(limit=15) for c in claimers))
    names += [run.name for batch in more for run in batch]
    assert sorted(names) == [f"run-{i:02d}" for i in range(40)]
    assert len(names) == 40


async def test_renewal_reports_runs_another_replica_took(
    schema: Schema, open_store: OpenStore
) -> None:
    a = await open_store("replica-a")
    b = await open_store("replica-b")
    await _create(a, "run-01")
    await _create(a, "run-02")
    await schema.expire_all()
    await a.renew_leases()  # renewal extends both again: nothing lost, nothing claimable
    assert await b.claim_runs() == []
    await schema.expire_all()
    # b claims both; a renews only what it still holds and learns what it lost.
    assert {c.name for c in await b.claim_runs()} == {"run-01", "run-02"}
    assert sorted(await a.renew_leases()) == [("ns", "run-01"), ("ns", "run-02")]
    assert await a.renew_leases() == []  # reported once, then forgotten


async def test_completed_run_is_not_reported_lost(schema: Schema, open_store: OpenStore) -> None:
    a = await open_store("replica-a")
    await _create(a, "run-01")
    assert await a.record_change(
        "ns",
        "run-01",
        status={"phase": "Successful"},
        phase="Successful",
        completed=True,
        measurements=[],
        outbox=[],
    )
    assert await a.renew_leases() == []


async def test_release_hands_runs_over_at_once(schema: Schema, open_store: OpenStore) -> None:
    a = await open_store("replica-a")
    b = await open_store("replica-b")
    await _create(a, "run-01")
    assert await a.release_leases() == 1
    assert [c.name for c in await b.claim_runs()] == ["run-01"]  # no wait for expiry


async def test_restart_with_the_same_replica_id_frees_old_leases(
    schema: Schema, open_store: OpenStore
) -> None:
    old = await open_store("replica-a")
    await _create(old, "run-01")
    await old.aclose()  # as if killed: never released
    new = await open_store("replica-a")
    assert [c.name for c in await new.claim_runs()] == ["run-01"]
    assert await _change(new, "run-01", "after-restart")


async def test_terminate_on_another_replica_releases_the_run(
    schema: Schema, open_store: OpenStore
) -> None:
    a = await open_store("replica-a")
    b = await open_store("replica-b")
    await _create(a, "run-01")
    record = await b.get_run("ns", "run-01")
    assert record is not None
    body = {**record.body, "spec": {"terminate": True}}
    await b.mark_terminate("ns", "run-01", body)
    assert await a.renew_leases() == [("ns", "run-01")]
    claimed = await b.claim_runs()
    assert [c.name for c in claimed] == ["run-01"] and '"terminate":true' in claimed[0].manifest


async def test_deleted_run_write_is_refused_without_lease_error(
    schema: Schema, open_store: OpenStore
) -> None:
    a = await open_store("replica-a")
    await _create(a, "run-01")
    assert await a.delete_run("ns", "run-01")
    assert not await _change(a, "run-01", "late")


async def test_due_outbox_rows_go_to_one_replica_at_a_time(
    schema: Schema, open_store: OpenStore
) -> None:
    a = await open_store("replica-a")
    b = await open_store("replica-b")
    await _create(a, "run-01")
    assert await _change(a, "run-01", "one")
    assert await _change(a, "run-01", "two")
    now = 1000.0
    claimed = await a.due_deliveries(now)
    assert sorted(r.event_id for r in claimed) == ["ev-one", "ev-two"]
    assert await b.due_deliveries(now) == []  # a is sending them
    next_at = await b.next_delivery_at()
    assert next_at is not None and next_at > now  # b sleeps instead of spinning
    assert sorted(r.event_id for r in await a.due_deliveries(now)) == ["ev-one", "ev-two"]
    # a records one attempt (clearing its claim) and stops before sending the other.
    first = next(r for r in claimed if r.event_id == "ev-one")
    await a.record_attempt(
        first, state="pending", at=now, next_attempt_at=now, status=503, error="down"
    )
    assert [r.event_id for r in await b.due_deliveries(now)] == ["ev-one"]
    await a.release_deliveries()
    assert sorted(r.event_id for r in await b.due_deliveries(now)) == ["ev-one", "ev-two"]
