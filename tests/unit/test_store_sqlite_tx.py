"""SQLite write transactions survive cancellation at every point, and the file lock."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

import pytest

from analysisd.store import SqliteStore, StoreError
from analysisd.store.filelock import StoreLocked

BODY = {"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate", "spec": {}}


@pytest.mark.parametrize("passes", range(12))
async def test_write_cancelled_at_any_point_leaves_no_transaction_open(
    tmp_path: Path, passes: int
) -> None:
    async with SqliteStore(tmp_path / "s.db") as store:
        write = asyncio.ensure_future(
            store.put_template("AnalysisTemplate", "ns", "a", BODY, create=True)
        )
        for _ in range(passes):  # lands on BEGIN, the statements, COMMIT, or after
            await asyncio.sleep(0)
        write.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await write
        assert not store.db.in_transaction
        # The next writes open their own transactions (before: "cannot start a
        # transaction within a transaction", for every later write).
        await store.put_template("AnalysisTemplate", "ns", "b", BODY, create=True)
        assert await store.delete_template("AnalysisTemplate", "ns", "b")


async def test_second_store_on_one_file_is_refused_naming_pid(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "s.db"):
        second = SqliteStore(tmp_path / "s.db")
        with pytest.raises(StoreLocked, match=f"pid={os.getpid()} host=") as caught:
            await second.open()
        assert isinstance(caught.value, StoreError)
    async with SqliteStore(tmp_path / "s.db"):  # released on close
        pass


async def test_in_memory_store_takes_no_lock() -> None:
    async with SqliteStore(":memory:"), SqliteStore(":memory:"):
        pass
