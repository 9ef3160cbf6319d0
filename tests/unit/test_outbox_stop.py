"""Stopping the deliverer always ends its loop, whatever its wake-up was doing.

On Python 3.11 `asyncio.wait_for` returns the inner result instead of raising when a
cancellation arrives after the inner wait finished but before `wait_for` resumed; a
loop waiting that way keeps running after `aclose()` cancelled it, and the stop waits
for it forever. This happened in a daemon stop: the last commit of the stop (the lease
release) woke the deliverer in the same turn as its cancellation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection

from analysisd.engine.measure import NoSecrets
from analysisd.outbox import Deliverer, DeliveryPolicy
from analysisd.store.records import OutboxRow


class EmptyOutbox:
    """An outbox with nothing due: the deliverer's loop only waits for wake-ups."""

    def __init__(self) -> None:
        self.passes = 0

    async def due_deliveries(
        self, now: float, limit: int = 100, *, skip: Collection[str] = ()
    ) -> list[OutboxRow]:
        self.passes += 1
        return []

    async def postpone_deliveries(self, skip: Collection[str], until: float) -> int:
        return 0

    async def next_delivery_at(self) -> float | None:
        return None

    async def record_attempt(self, row: OutboxRow, **_: object) -> None:
        raise AssertionError("nothing is due, nothing is sent")


async def waiting_deliverer() -> tuple[Deliverer, asyncio.Task[None]]:
    """A started deliverer whose loop has made its first pass and waits for a wake-up."""
    store = EmptyOutbox()
    deliverer = Deliverer(store, NoSecrets(), policy=DeliveryPolicy(poll_interval=60.0))
    await deliverer.start()
    for _ in range(100):
        if store.passes:
            break
        await asyncio.sleep(0)
    for _ in range(5):
        await asyncio.sleep(0)
    task = deliverer._task
    assert task is not None and not task.done()
    return deliverer, task


async def test_a_wake_up_in_the_turn_of_the_stop_does_not_keep_the_loop_alive() -> None:
    # Every interleaving of "notify, n loop turns, stop" around the wake-up's hand-off.
    for turns in range(6):
        deliverer, task = await waiting_deliverer()
        deliverer.notify()
        for _ in range(turns):
            await asyncio.sleep(0)
        async with asyncio.timeout(5):
            await deliverer.aclose()
        assert task.done(), f"the loop outlived the stop (notify, {turns} turns, stop)"


async def test_the_stop_ends_a_loop_that_is_waiting() -> None:
    deliverer, task = await waiting_deliverer()
    async with asyncio.timeout(5):
        await deliverer.aclose()
    assert task.cancelled()
