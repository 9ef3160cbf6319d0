"""The scheduler's measurement workers: a bounded pool draining a fair queue, with deadlines.

Due measurements wait in a FairQueue (engine/fairshare.py): when every worker is
busy, namespaces are served in turn, so one team's burst is not every team's
wait, and a namespace's measurementsPerSecond quota delays (never drops) its own
measurements. With one namespace and no quota it is a plain FIFO.

Workers, not a task per measurement: at saturation a worker goes from one
measurement to the next, as a bare client loop does, and no task is created, no
done callback scheduled and no context copied per measurement. A measurement is
cancelled (terminate, timeout, hand-over) by cancelling its worker while the worker
is inside that measurement (`Worker.cancel`); the worker absorbs its own
cancellations and goes on. Every measurement gets the same timeout, so deadlines
come in start order and one watchdog timer, for the oldest, serves them all.

Fair share across namespaces (while more than one has runs): the queue keeps a
tenth of the workers free beyond what the others use (FairQueue.share), and a
probe timer watches the event loop, which every namespace shares too: while it
runs late, the namespaces over their fair share may fill fewer workers
(FairQueue.throttle), never fewer than their fair share.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, TypeVar

from analysisd.engine.fairshare import FairQueue

__all__ = ["Worker", "WorkerPool"]

J = TypeVar("J")
# The loop-lag governor (see WorkerPool._on_probe): a timer every _PROBE_S measures how
# late the loop runs it; later than _LAG_TARGET_S, the namespaces over their fair share
# get a quarter fewer workers, else a fiftieth of the limit more.
_PROBE_S = 0.02
_LAG_TARGET_S = 0.005


class Worker:
    """One of at most `max_concurrency` measurement workers, and what it is measuring."""

    __slots__ = ("cancels", "job", "task", "timed_out")

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None
        # What this worker is measuring right now (None between measurements): only
        # then may the measurement be cancelled, by cancelling the worker.
        self.job: object | None = None
        self.cancels = 0  # cancellations asked for by the scheduler, absorbed by the worker
        self.timed_out = False

    def cancel(self) -> None:
        """Cut the current measurement short (the worker itself goes on)."""
        if self.job is not None and self.task is not None:
            self.cancels += 1
            self.task.cancel()


class WorkerPool(Generic[J]):
    """Up to `max_concurrency` workers running `run(worker, job)` for queued jobs.

    `failed(job, exc)` hears of a job that raised (a bug: the worker goes on);
    `spawn` starts the workers' tasks (the scheduler tracks them for its shutdown).
    """

    def __init__(
        self,
        run: Callable[[Worker, J], Awaitable[None]],
        failed: Callable[[J, Exception], None],
        *,
        namespace_of: Callable[[J], str],
        skip: Callable[[J], bool],
        spawn: Callable[[Coroutine[Any, Any, None]], asyncio.Task[Any]],
        loop: Callable[[], asyncio.AbstractEventLoop],
        max_concurrency: int,
        timeout: float,
        long_timeout: float,
        rate_of: Callable[[str], float | None] = lambda namespace: None,
    ) -> None:
        self._run = run
        self._failed = failed
        self._namespace_of = namespace_of
        self._spawn = spawn
        self._loop = loop
        self.max_concurrency = max_concurrency
        self.timeout = timeout
        self.long_timeout = long_timeout
        # Due jobs (a FIFO per namespace, served in turn) and up to max_concurrency
        # workers draining them (instead of a semaphore: tens of thousands of waiters
        # on asyncio.Semaphore cost O(waiters) per release, and a task per queued
        # measurement costs memory).
        self.queue: FairQueue[J] = FairQueue(rate_of, skip=skip)
        self._workers: set[Worker] = set()
        self._unstarted = 0  # workers started but not yet running (they take one each)
        self._unpark_timer: asyncio.TimerHandle | None = None
        self._unpark_at = 0.0
        # Deadlines in start order: a plain dict keeps that order (a key re-inserted
        # goes last) for less than OrderedDict; one watchdog timer for the oldest.
        self._deadlines: dict[Worker, float] = {}
        # The same for measurements that end on their own terms (not `timed`): one
        # long timeout for all of them, so these too fall due in start order.
        self._long_deadlines: dict[Worker, float] = {}
        self._watchdog: asyncio.TimerHandle | None = None
        # Active runs per namespace, for the fair share (count_namespace).
        self._namespaces: dict[str, int] = {}
        self._shares = 0
        self._probe: asyncio.TimerHandle | None = None
        self._probe_at = 0.0
        self._throttle = max_concurrency  # workers over-share namespaces may fill
        self._context = contextvars.copy_context()
        self.closing = False

    # ---- jobs ----

    def push(self, namespace: str, job: J) -> None:
        """Queue a job; call dispatch() once after pushing a batch."""
        self.queue.push(namespace, job)

    def waiting(self, namespace: str) -> int:
        """Jobs of a namespace waiting for a worker or for its rate quota."""
        return self.queue.waiting(namespace)

    def dispatch(self) -> None:
        """Start workers for queued jobs, up to the concurrency limit.

        Workers inside a measurement cannot take more (one may hang until its timeout):
        a job queued while there is room gets a new worker of its own.
        """
        while (
            self.queue.runnable > self._unstarted
            and len(self._workers) < self.max_concurrency
            and not self.closing
        ):
            worker = Worker()
            self._workers.add(worker)
            self._unstarted += 1
            worker.task = self._spawn(self._work(worker))

    async def _work(self, worker: Worker) -> None:
        """Take queued jobs one after another until the queue is empty."""
        self._unstarted -= 1
        queue = self.queue
        loop = self._loop()
        try:
            while not self.closing:
                job = queue.pop(loop.time())
                if job is None:
                    break
                try:
                    await self._run(worker, job)
                except Exception as exc:  # a bug: that job's run stops, the worker goes on
                    self._failed(job, exc)
                finally:
                    queue.finished(self._namespace_of(job))
                # One trip through the loop before the next measurement: the workers
                # that finished in this pass start their next requests together, after
                # the loop has polled for I/O, instead of one at a time in between.
                # Batched, the sends wake the endpoint and its answers wake us less
                # often; at saturation this costs less CPU than it adds (measured in
                # bench/bench_scheduler.py: about 8 % less per measurement).
                await asyncio.sleep(0)
        finally:
            self._workers.discard(worker)
            if self.queue.next_unpark() is not None:
                self._arm_unpark()

    # ---- deadlines ----

    def started(self, worker: Worker, job: object, timed: bool = True) -> None:
        """`worker` is inside a measurement of `job` now: its deadline starts (the long
        one when not `timed`: the measurement ends on its own terms, e.g. a Job)."""
        worker.job = job
        worker.timed_out = False
        now = self._loop().time()
        if timed:
            deadline = self._deadlines[worker] = now + self.timeout
        else:
            deadline = self._long_deadlines[worker] = now + self.long_timeout
        watchdog = self._watchdog
        if watchdog is None:
            self._arm_watchdog()
        elif deadline < watchdog.when():
            # Armed for a long deadline; this one falls due before it.
            watchdog.cancel()
            self._arm_watchdog()

    def ended(self, worker: Worker) -> None:
        """`worker` left its measurement: nothing left to cut short."""
        worker.job = None
        self._deadlines.pop(worker, None)
        self._long_deadlines.pop(worker, None)

    def _arm_watchdog(self) -> None:
        firsts = [next(iter(d.values())) for d in (self._deadlines, self._long_deadlines) if d]
        if firsts and not self.closing:
            self._watchdog = self._loop().call_at(min(firsts), self._on_deadline)
        else:
            self._watchdog = None

    def _on_deadline(self) -> None:
        """Cut off every measurement past its deadline, then wait for the next one."""
        now = self._loop().time()
        for deadlines in (self._deadlines, self._long_deadlines):
            while deadlines:
                worker, deadline = next(iter(deadlines.items()))
                if deadline > now:
                    break
                del deadlines[worker]
                if worker.job is not None:
                    worker.timed_out = True
                    worker.cancel()
        self._arm_watchdog()

    # ---- rate quotas ----

    def _arm_unpark(self) -> None:
        """A namespace is parked on its rate quota: wake up when its next token is due."""
        at = self.queue.next_unpark()
        if at is None or self.closing:
            return
        if self._unpark_timer is not None:
            if self._unpark_at <= at:
                return
            self._unpark_timer.cancel()
        self._unpark_at = at
        self._unpark_timer = self._loop().call_at(at, self._on_unpark)

    def _on_unpark(self) -> None:
        self._unpark_timer = None
        if self.closing:
            return
        if self.queue.unpark(self._loop().time()):
            self.dispatch()
        self._arm_unpark()

    # ---- fair share ----

    def count_namespace(self, namespace: str, delta: int) -> None:
        """A run of `namespace` started (+1) or left (-1)."""
        namespaces = self._namespaces
        count = namespaces.get(namespace, 0) + delta
        if count > 0:
            namespaces[namespace] = count
        else:
            namespaces.pop(namespace, None)
        shares = len(namespaces)
        if shares != self._shares and (shares > 1 or self._shares > 1):
            # Fair share of the workers among namespaces with runs (FairQueue.share).
            self.queue.share(self.max_concurrency if shares > 1 else None, shares)
            if shares > 1 and self._probe is None and not self.closing:
                self._arm_probe()
            elif shares < 2:
                self._stop_probe()
            self.dispatch()
        self._shares = shares

    def _arm_probe(self) -> None:
        loop = self._loop()
        self._probe_at = loop.time() + _PROBE_S
        self._probe = loop.call_at(self._probe_at, self._on_probe, context=self._context)

    def _stop_probe(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            self._probe = None
        self._throttle = self.max_concurrency
        self.queue.throttle(None)

    def _on_probe(self) -> None:
        """The loop is a queue every namespace shares: while it runs late, namespaces
        over their fair share take fewer workers (their bookkeeping is what fills it),
        never fewer than their fair share (FairQueue.throttle); on time, more again."""
        self._probe = None
        if self.closing or self._shares < 2:
            return
        limit = self.max_concurrency
        late = self._loop().time() - self._probe_at
        throttle = self._throttle
        if late > _LAG_TARGET_S:
            throttle = max(1, throttle * 3 // 4)
        elif throttle < limit:
            throttle = min(limit, throttle + max(1, limit // 50))
        if throttle != self._throttle:
            raised = throttle > self._throttle
            self._throttle = throttle
            self.queue.throttle(throttle if throttle < limit else None)
            if raised:
                self.dispatch()
        self._arm_probe()

    # ---- shutdown ----

    def close(self) -> None:
        """Take no more jobs: the queue is emptied and every timer cancelled (workers
        inside a measurement are the scheduler's to wait for or cancel)."""
        self.closing = True
        self._stop_probe()
        self.queue.clear()
        for timer in (self._unpark_timer, self._watchdog):
            if timer is not None:
                timer.cancel()
        self._unpark_timer = self._watchdog = None
        self._namespaces.clear()
