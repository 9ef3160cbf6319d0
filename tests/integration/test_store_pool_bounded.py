"""Waiting for a pooled PostgreSQL connection is bounded: a store call behind a pool
that every holder keeps busy ends in TimeoutError instead of waiting forever (asyncpg's
own pool.fetch and pool.acquire() wait without a limit)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import pytest

from analysisd.store import PostgresStore
from analysisd.store import postgres as pg
from tests.rigs.postgres import PG_DSN, scratch_schema


async def test_a_store_call_on_an_exhausted_pool_times_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with scratch_schema("b") as schema:
        store = PostgresStore(f"{PG_DSN}?search_path={schema.name}", owner="a")
        await store.open()
        try:
            monkeypatch.setattr(pg, "_TIMEOUT", 0.3)
            async with contextlib.AsyncExitStack() as held:
                # Every connection of the pool (max_size 10) taken and kept.
                for _ in range(10):
                    await held.enter_async_context(store.pool.raw.acquire())
                calls: dict[str, Callable[[], Awaitable[object]]] = {
                    "read (pool statement)": lambda: store.get_run("ns", "r"),
                    "count (pool statement)": store.count_runs,
                    "transaction": store.claim_runs,
                    "lease renewal": store.renew_leases,
                }
                for what, call in calls.items():
                    try:
                        async with asyncio.timeout(10):  # the bound is 0.3 s
                            with pytest.raises(TimeoutError):
                                await call()
                    except TimeoutError:
                        pytest.fail(f"{what}: still waiting for a connection after 10 s")
            # Free again: the same calls answer.
            assert await store.get_run("ns", "r") is None
            assert await store.renew_leases() == []
        finally:
            await store.aclose()
