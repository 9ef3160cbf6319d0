"""Query coalescing: identical requests in flight or due together are sent once.

A key is (kind, pool key, request key, time bucket) where the bucket is
``floor(now / window)``. The first caller for a key starts the request as a task;
everyone else with that key awaits the same task (single flight). A successful
result stays reusable until its bucket ends, so runs whose measurements fall due
a few milliseconds apart within the same window share one request too. Failures
are shared only with callers already waiting, never cached.

The shared task is cancelled only when every caller waiting on it has gone away,
so one cancelled run does not fail the others.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class _Flight(Generic[T]):
    __slots__ = ("bucket", "task", "waiters")

    def __init__(self, task: asyncio.Task[T], bucket: int) -> None:
        self.task = task
        self.waiters = 0
        self.bucket = bucket


class Coalescer(Generic[T]):
    """Single-flight plus a result reuse window; one instance per registry."""

    def __init__(self, window: float, clock: Callable[[], float]) -> None:
        self._window = window
        self._clock = clock
        self._flights: dict[Hashable, _Flight[T]] = {}
        self.shared = 0  # calls answered by another caller's request
        self._swept_bucket: int | None = None

    def bucket(self, now: float) -> int:
        if self._window <= 0:
            return 0
        return math.floor(now / self._window)

    def _evict(self, bucket: int) -> None:
        # Finished flights from earlier buckets are dead weight. Sweep once per bucket
        # change (not per call), so thousands of distinct queries stay O(n) per window.
        if self._swept_bucket == bucket:
            return
        self._swept_bucket = bucket
        stale = [
            key
            for key, flight in self._flights.items()
            if flight.task.done() and flight.bucket != bucket
        ]
        for key in stale:
            del self._flights[key]

    async def run(self, key: Hashable, start: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """Run `start()` once per (key, bucket); return (result, shared?)."""
        bucket = self.bucket(self._clock())
        full_key = (key, bucket)
        flight = self._flights.get(full_key)
        shared = True
        if flight is not None and flight.task.done() and not _succeeded(flight.task):
            flight = None  # a failure is never reused once it has been delivered
        if flight is None or (self._window <= 0 and flight.task.done()):
            shared = False
            self._evict(bucket)
            flight = _Flight(asyncio.ensure_future(_call(start)), bucket)
            self._flights[full_key] = flight
            if self._window <= 0:
                flight.task.add_done_callback(self._forgetter(full_key, flight))
        if shared:
            self.shared += 1
        flight.waiters += 1
        try:
            return await asyncio.shield(flight.task), shared
        except asyncio.CancelledError:
            if not flight.task.done() and flight.waiters == 1:
                flight.task.cancel()
            raise
        finally:
            flight.waiters -= 1
            if flight.task.done() and not _succeeded(flight.task) and flight.waiters == 0:
                self._forget(full_key, flight)

    def _forgetter(self, key: Hashable, flight: _Flight[T]) -> Callable[[asyncio.Task[T]], None]:
        def forget(_task: asyncio.Task[T]) -> None:
            self._forget(key, flight)

        return forget

    def _forget(self, key: Hashable, flight: _Flight[T]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]

    def pending(self) -> int:
        """Entries held (in flight or reusable); for tests and metrics."""
        return len(self._flights)


async def _call(start: Callable[[], Awaitable[T]]) -> T:
    return await start()


def _succeeded(task: asyncio.Task[T]) -> bool:
    return not task.cancelled() and task.exception() is None
