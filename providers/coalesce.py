"""Query coalescing: identical requests in flight or due together are sent once.

A key is (kind, pool key, request key). The first caller for a key starts the
request as a task; everyone else with that key awaits the same task (single
flight). A successful result stays reusable for ``window`` seconds from the moment
its request started, so runs whose measurements fall due a few milliseconds apart
share one request — including runs on either side of a whole second, which an
aligned time bucket would split into two requests. Failures are shared only with
callers already waiting, never cached.

The shared task is cancelled only when every caller waiting on it has gone away,
so one cancelled run does not fail the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class _Flight(Generic[T]):
    __slots__ = ("started", "task", "waiters")

    def __init__(self, task: asyncio.Task[T], started: float) -> None:
        self.task = task
        self.waiters = 0
        self.started = started


class Coalescer(Generic[T]):
    """Single-flight plus a result reuse window; one instance per registry."""

    def __init__(self, window: float, clock: Callable[[], float]) -> None:
        self._window = window
        self._clock = clock
        self._flights: dict[Hashable, _Flight[T]] = {}
        self.shared = 0  # calls answered by another caller's request
        self._last_sweep = float("-inf")

    def _reusable(self, flight: _Flight[T], now: float) -> bool:
        if not flight.task.done():
            return True
        return _succeeded(flight.task) and now - flight.started < self._window

    def _evict(self, now: float) -> None:
        # Finished flights past their window are dead weight. Sweep at most once per
        # window (not per call), so thousands of distinct queries stay O(n) per window.
        if now - self._last_sweep < self._window:
            return
        self._last_sweep = now
        stale = [key for key, flight in self._flights.items() if not self._reusable(flight, now)]
        for key in stale:
            del self._flights[key]

    async def run(self, key: Hashable, start: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """Run `start()` once per key and reuse window; return (result, shared?)."""
        now = self._clock()
        flight = self._flights.get(key)
        shared = flight is not None and self._reusable(flight, now)
        if flight is None or not shared:
            self._evict(now)
            flight = _Flight(asyncio.ensure_future(_call(start)), now)
            self._flights[key] = flight
            if self._window <= 0:
                flight.task.add_done_callback(self._forgetter(key, flight))
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
                self._forget(key, flight)

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
