"""Query coalescing: identical requests in flight or due together are sent once.

A key is (kind, pool key, request key). The first caller for a key (the leader)
sends the request itself, in its own task; everyone else with that key meanwhile
awaits the leader's answer (single flight). A successful result stays reusable for
``window`` seconds from the moment its request started, so runs whose measurements
fall due a few milliseconds apart share one request — including runs on either side
of a whole second, which an aligned time bucket would split into two requests.
Failures are shared only with callers already waiting, never cached.

The leader runs the request inline rather than in a task of its own: no task,
no shield and no extra step per measurement when nothing is shared, which is
almost always. If the leader is cancelled (its run was terminated), the request
is cancelled with it, and the callers that were waiting on it do not fail: one
of them sends it again as the new leader.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class _LeaderGone(Exception):
    """The leader was cancelled before its request finished; waiters ask again."""


class _Flight(Generic[T]):
    __slots__ = ("answer", "started")

    def __init__(self, answer: asyncio.Future[T], started: float) -> None:
        self.answer = answer
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
        answer = flight.answer
        if not answer.done():
            return True
        return _succeeded(answer) and now - flight.started < self._window

    def _evict(self, now: float) -> None:
        # Finished flights past their window are dead weight. Sweep at most once per
        # window (not per call), so thousands of distinct queries stay O(n) per window.
        # Without a window there is nothing to sweep: each flight is forgotten as soon
        # as its request ends (and sweeping on every call would be O(n) per call).
        if self._window <= 0 or now - self._last_sweep < self._window:
            return
        self._last_sweep = now
        stale = [key for key, flight in self._flights.items() if not self._reusable(flight, now)]
        for key in stale:
            del self._flights[key]

    async def run(self, key: Hashable, start: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """Run `start()` once per key and reuse window; return (result, shared?)."""
        while True:
            now = self._clock()
            flight = self._flights.get(key)
            if flight is None or not self._reusable(flight, now):
                break
            try:
                # Shielded: a waiter that is cancelled must not cancel the shared answer.
                result = await asyncio.shield(flight.answer)
            except _LeaderGone:
                continue  # the leader's run was cancelled: ask again, maybe as leader
            self.shared += 1
            return result, True
        # The leader (inline here, not a coroutine of its own: this is every measurement).
        self._evict(now)
        answer: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        flight = _Flight(answer, now)
        self._flights[key] = flight
        try:
            result = await start()
        except asyncio.CancelledError:
            self._forget(key, flight)
            _fail(answer, _LeaderGone())
            raise
        except BaseException as exc:
            self._forget(key, flight)  # shared with the waiters, never cached
            _fail(answer, exc)
            raise
        answer.set_result(result)
        if self._window <= 0:
            self._forget(key, flight)
        return result, False

    def _forget(self, key: Hashable, flight: _Flight[T]) -> None:
        found = self._flights.pop(key, None)
        if found is not None and found is not flight:
            self._flights[key] = found  # a newer flight under that key: not ours to drop

    def pending(self) -> int:
        """Entries held (in flight or reusable); for tests and metrics."""
        return len(self._flights)


def _fail(answer: asyncio.Future[T], exc: BaseException) -> None:
    answer.set_exception(exc)
    answer.exception()  # retrieved here: with no waiter, nobody else would


def _succeeded(answer: asyncio.Future[T]) -> bool:
    return not answer.cancelled() and answer.exception() is None
