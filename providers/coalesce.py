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
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class _LeaderGone(Exception):
    """The leader was cancelled before its request finished; waiters ask again."""


_IN_FLIGHT, _SUCCEEDED, _FAILED = 0, 1, 2


class _Flight(Generic[T]):
    """One request: in flight, then its result (reusable) or its failure (never reused).

    The future that waiters await is made only when a first waiter comes: almost every
    request has none, and then a flight is three fields and no future.
    """

    __slots__ = ("answer", "result", "started", "state")

    def __init__(self, started: float) -> None:
        self.started = started
        self.state = _IN_FLIGHT
        self.result: Any = None
        self.answer: asyncio.Future[T] | None = None

    def waiter(self) -> asyncio.Future[T]:
        if self.answer is None:
            self.answer = asyncio.get_running_loop().create_future()
        return self.answer


class Coalescer(Generic[T]):
    """Single-flight plus a result reuse window; one instance per registry.

    `run` is the whole protocol. A caller on a hot path may do the leader's part itself,
    without a coroutine of run's in between: when `idle(key)` holds, call `lead`,
    send the request, then `land` its result or `crash` with its exception.
    """

    def __init__(self, window: float, clock: Callable[[], float]) -> None:
        self._window = window
        self._clock = clock
        self._flights: dict[Hashable, _Flight[T]] = {}
        self.shared = 0  # calls answered by another caller's request
        self._last_sweep = float("-inf")

    def _reusable(self, flight: _Flight[T], now: float) -> bool:
        state = flight.state
        if state == _IN_FLIGHT:
            return True
        return state == _SUCCEEDED and now - flight.started < self._window

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

    def idle(self, key: Hashable) -> bool:
        """Nothing is held under `key`: the caller is the leader (see `lead`)."""
        return key not in self._flights

    def lead(self, key: Hashable) -> _Flight[T]:
        """Start a flight under `key` (the caller sends the request); see `idle`."""
        now = self._clock()
        self._evict(now)
        flight: _Flight[T] = _Flight(now)
        self._flights[key] = flight
        return flight

    def land(self, key: Hashable, flight: _Flight[T], result: T) -> None:
        """The leader's request answered: hand the result to waiters, keep it for reuse."""
        flight.result = result
        flight.state = _SUCCEEDED
        if flight.answer is not None:
            flight.answer.set_result(result)
        if self._window <= 0:
            self._forget(key, flight)

    def crash(self, key: Hashable, flight: _Flight[T], exc: BaseException) -> None:
        """The leader's request failed (or the leader was cancelled): never cached.

        Waiters get the failure; if the leader was cancelled, they ask again instead.
        """
        self._forget(key, flight)
        flight.state = _FAILED
        if flight.answer is not None:
            gone = isinstance(exc, asyncio.CancelledError)
            _fail(flight.answer, _LeaderGone() if gone else exc)

    async def run(self, key: Hashable, start: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """Run `start()` once per key and reuse window; return (result, shared?)."""
        while True:
            now = self._clock()
            flight = self._flights.get(key)
            if flight is None or not self._reusable(flight, now):
                break
            if flight.state == _SUCCEEDED:
                result: T = flight.result
            else:
                try:
                    # Shielded: a waiter that is cancelled must not cancel the shared answer.
                    result = await asyncio.shield(flight.waiter())
                except _LeaderGone:
                    continue  # the leader's run was cancelled: ask again, maybe as leader
            self.shared += 1
            return result, True
        # The leader (inline here, not a coroutine of its own: this is every measurement).
        flight = self.lead(key)
        try:
            result = await start()
        except BaseException as exc:
            self.crash(key, flight, exc)  # shared with the waiters, never cached
            raise
        self.land(key, flight, result)
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
