"""Health of the daemon's long-lived tasks: each loop reports every pass, /readyz reads it.

A loop (the outbox deliverer, the TTL collector, the lease loop) catches every
error of a pass, logs it with its traceback and pauses before the next try;
`failed()` says how long (exponential with jitter, capped), so a store that stays
away is not hammered and the log is not flooded. The loop's task is watched: if
it ever ends other than by cancellation (a bug, an error that escaped), the loop
is dead and says so. `problem` is what /readyz shows: a dead loop, or one whose
last `failing_after` passes all failed. It never carries the error text, because
/readyz is public and a store's error may name hosts or users; the log has it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

import structlog

log = structlog.get_logger(__name__)

FAILING_AFTER = 3  # consecutive failed passes before /readyz reports the loop


class LoopHealth:
    """What one long-lived loop last reported; owned by whoever owns the loop's task."""

    def __init__(
        self,
        name: str,
        *,
        failing_after: int = FAILING_AFTER,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.name = name
        self.failures = 0  # consecutive failed passes
        self.dead = False
        self._failing_after = max(1, failing_after)
        self._backoff_base = backoff_base
        self._backoff_max = max(backoff_base, backoff_max)
        self._rand = rand

    def succeeded(self) -> None:
        if self.failures:
            log.info("loop recovered", loop=self.name, after_failures=self.failures)
        self.failures = 0

    def failed(self, exc: BaseException) -> float:
        """Log the failed pass with its traceback; the seconds to wait before the next."""
        self.failures += 1
        log.error("loop pass failed", loop=self.name, failures=self.failures, exc_info=exc)
        ceiling = min(self._backoff_max, self._backoff_base * 2.0 ** min(self.failures - 1, 32))
        # Half fixed, half random: replicas that failed together do not retry together.
        return ceiling * (0.5 + 0.5 * self._rand())

    def watch(self, task: asyncio.Task[None]) -> asyncio.Task[None]:
        """Mark the loop dead if its task ends any way but by being cancelled."""
        task.add_done_callback(self._ended)
        return task

    def _ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return  # stopped by its owner: the normal end
        self.dead = True
        exc = task.exception()
        log.error("loop died", loop=self.name, exc_info=exc if exc is not None else False)

    @property
    def problem(self) -> str | None:
        """Why this loop makes the process unready, or None while it is fine."""
        if self.dead:
            return "dead: the task ended; restart the process"
        if self.failures >= self._failing_after:
            return f"failing: {self.failures} consecutive passes failed (see the log)"
        return None


class LoopTask:
    """A long-lived loop's task, watched by its LoopHealth: start() it, stop() it."""

    def __init__(self, health: LoopHealth, body: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self.health = health
        self._body = body
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = self.health.watch(asyncio.get_running_loop().create_task(self._body()))

    async def stop(self) -> None:
        """Cancel the loop and wait until it has ended."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


def problems(loops: Iterable[LoopHealth]) -> dict[str, str]:
    """Loop name -> problem, for every loop that has one."""
    return {loop.name: p for loop in loops if (p := loop.problem) is not None}
