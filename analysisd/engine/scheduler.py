"""The asyncio loop that runs many AnalysisRuns at once.

Each run owns one timer (loop.call_at) set to its next wake-up, computed by engine.run.plan
from the status alone; nothing polls. A wake-up queues the due measurements; at most
`max_concurrency` workers take them from the queue, each under a per-measurement timeout.
When a measurement finishes, its worker records it for the run (under the run's own lock),
re-assesses, awaits the observer, and plans the run's next step, so the observer always
sees every change of a run in order, before that run moves on.

The workers, their fair queue (namespaces served in turn, a fair share of the
workers and of the loop, measurementsPerSecond quotas) and the measurement
deadlines are engine/workers.py's WorkerPool. A measurement is cancelled
(terminate, timeout, hand-over) by cancelling its worker while the worker is
inside that measurement; the worker absorbs its own cancellations and goes on.

Shutdown (aclose) is a designed path: stop taking work, let in-flight measurements
finish within a grace period, cancel the rest, fail the remaining waiters.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from analysisd.engine import assess
from analysisd.engine import run as lifecycle
from analysisd.engine.dispatch import log_error, take_measurement
from analysisd.engine.measure import (
    MeasurementSource,
    NoSecrets,
    PreparedRun,
    RunSetupError,
    SecretLookupSource,
    timed_out,
)
from analysisd.engine.observer import NewMeasurement, RunChange, RunObserver
from analysisd.engine.runstate import (
    Admitter,
    Job,
    RunKey,
    RunState,
    SchedulerClosed,
    finished_job,
    first_status,
    namespace_of,
    set_up,
    utc_now,
)
from analysisd.engine.workers import Worker, WorkerPool
from analysisd.spec import AnalysisRun, AnalysisRunStatus, Measurement

__all__ = ["MeasurementSource", "Scheduler", "SchedulerClosed", "utc_now"]

# Completed runs kept for late wait() calls; each holds its whole AnalysisRun.
_COMPLETED_KEPT = 1024
# A run with this many metrics or more lets one pass through the loop go by before it records
# a finished measurement: its siblings finishing in that pass join the same step (_measure).
_GATHER_FROM = 8


class Scheduler:
    """Runs AnalysisRuns to completion; see the module docstring."""

    def __init__(
        self,
        source: MeasurementSource,
        observer: RunObserver,
        *,
        secrets: SecretLookupSource | None = None,
        clock: Callable[[], datetime] = utc_now,
        max_concurrency: int = 1000,
        measurement_timeout: float = 60.0,
        long_measurement_timeout: float = 6 * 3600.0,
        error_retry: timedelta = lifecycle.ERROR_RETRY_INTERVAL,
        rate_of: Callable[[str], float | None] = lambda namespace: None,
    ) -> None:
        # error_retry exists so tests can shorten Argo's 10 s retry. rate_of: a
        # namespace's measurementsPerSecond quota (None: unlimited).
        self._source = source
        self._observer = observer
        self._secrets: SecretLookupSource = secrets if secrets is not None else NoSecrets()
        self._clock = clock
        # Due measurements and the workers taking them (engine/workers.py).
        self._pool: WorkerPool[Job] = WorkerPool(
            self._measure,
            # A bug in one measurement's bookkeeping: that run stops, the worker goes on.
            lambda job, exc: self._abandon(job[0], exc),
            namespace_of=namespace_of,
            skip=finished_job,
            spawn=self._spawn,
            loop=lambda: self._event_loop,
            max_concurrency=max_concurrency,
            timeout=measurement_timeout,
            long_timeout=long_measurement_timeout,
            rate_of=rate_of,
        )
        # Submitted runs are set up in slices, then begun (engine/runstate.py).
        self._admitter = Admitter(
            lambda state: set_up(state, self._source, self._secrets), self._begin, self._spawn
        )
        self._timeout = measurement_timeout
        self._error_retry = error_retry
        self._runs: dict[RunKey, RunState] = {}
        self._completed: OrderedDict[RunKey, asyncio.Future[AnalysisRun]] = OrderedDict()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = False
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None  # see _event_loop
        # Run timers carry one shared context and one bound callback: call_at would
        # otherwise copy the context and bind the method anew for every timer set
        # (two objects per run per measurement, left for the garbage collector).
        self._timer_context = contextvars.copy_context()
        self._timer_callback = self._on_timer

    # ---- lifecycle ----

    async def start(self) -> None:
        self._started = True
        self._loop = asyncio.get_running_loop()

    @property
    def _event_loop(self) -> asyncio.AbstractEventLoop:
        # The running loop, looked up once: asyncio.get_running_loop() costs a getpid()
        # system call on every call (CPython 3.11 checks for a fork), several times per
        # measurement otherwise.
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        return loop

    async def __aenter__(self) -> Scheduler:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self, grace: float = 30.0) -> None:
        """Stop taking work, let measurements in flight finish within `grace`, cancel the rest."""
        if self._closing:
            return
        self._closing = True
        self._pool.close()
        self._admitter.close()
        for state in self._runs.values():
            state.stop_timer()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)
        pending = set(self._tasks)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        for state in list(self._runs.values()):
            if not state.done.done():
                state.done.set_exception(SchedulerClosed(f"{state.key[0]}/{state.key[1]}"))
                state.done.exception()  # retrieved here so an unawaited run does not warn
        self._runs.clear()

    # ---- public API ----

    def submit(
        self, run: AnalysisRun, prepared: PreparedRun | None = None, *, started: bool = False
    ) -> None:
        """Start (or resume, from its stored status) a run. `prepared`: the run already
        prepared (prepare_run of this very spec, secrets and metadata), e.g. by admission;
        it is then not prepared again. `started`: see runstate.first_status."""
        if self._closing:
            raise SchedulerClosed("scheduler is shutting down")
        key = (run.metadata.namespace or "default", run.metadata.name)
        if key in self._runs:
            raise ValueError(f"run {key[0]}/{key[1]} is already active")
        state = RunState.submitted(key, run, self._event_loop.create_future(), prepared, started)
        self._completed.pop(key, None)
        self._runs[key] = state
        self._pool.count_namespace(key[0], +1)
        if not started:
            self._admitter.add(state)
        elif self._admitter.set_up_now(state):  # the run is new: no task, no lock
            self._plan(state, self._clock())  # its first step is taken (first_status)

    def first_status(self, run: AnalysisRun, prepared: PreparedRun) -> AnalysisRunStatus | None:
        """runstate.first_status at this scheduler's clock (see submit's `started`)."""
        return first_status(run, prepared, self._clock())

    def terminate(self, namespace: str, name: str) -> bool:
        """Ask a run to stop: no new measurements, in-flight ones are cancelled and dropped."""
        state = self._runs.get((namespace, name))
        if state is None or state.done.done():
            return False
        state.run.spec.terminate = state.terminating = True
        state.cancel_measurements()
        state.stop_timer()
        self._spawn(self._advance(state))
        return True

    def _dropped(self, state: RunState) -> None:
        """`state` left self._runs (finished, abandoned or handed over)."""
        self._pool.count_namespace(state.key[0], -1)

    def is_active(self, namespace: str, name: str) -> bool:
        return (namespace, name) in self._runs

    def forget(self, namespace: str, name: str) -> bool:
        """Drop a run here without terminating or recording anything: another replica
        holds it now. In-flight measurements are cancelled; waiters get SchedulerClosed."""
        state = self._runs.pop((namespace, name), None)
        if state is None:
            return False
        self._dropped(state)
        state.stop_timer()
        # Done first, so cancelled measurements see a finished run and record nothing.
        if not state.done.done():
            state.done.set_exception(SchedulerClosed(f"{namespace}/{name}: handed over"))
            state.done.exception()
        state.cancel_measurements()
        return True

    async def wait(self, namespace: str, name: str) -> AnalysisRun:
        """The run once it reaches a completed phase."""
        key = (namespace, name)
        state = self._runs.get(key)
        future = state.done if state is not None else self._completed.get(key)
        if future is None:
            raise KeyError(f"no run {namespace}/{name}")
        return await asyncio.shield(future)

    def active_runs(self) -> int:
        return len(self._runs)

    def active_by_namespace(self) -> dict[str, int]:
        """Active runs per namespace (for per-namespace gauges)."""
        counts: dict[str, int] = {}
        for namespace, _ in self._runs:
            counts[namespace] = counts.get(namespace, 0) + 1
        return counts

    def waiting(self, namespace: str) -> int:
        """Due measurements of a namespace waiting for a worker or for its rate quota."""
        return self._pool.waiting(namespace)

    # ---- internals ----

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = self._event_loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _begin(
        self, state: RunState, prepared: PreparedRun | None, error: Exception | None
    ) -> None:
        if state.busy:
            await state.wait_turn(self._event_loop)  # handed over: still busy, now ours
        state.busy = True
        try:
            if state.done.done():
                return  # forgotten (handed over) meanwhile
            if assess.completed(state.status.phase):
                self._finish(state)
            elif isinstance(error, RunSetupError):
                await self._fail_setup(state, str(error))
            elif error is not None:
                raise error
            else:
                state.prepared = prepared
                await self._step(state, measurements=())
        except Exception as exc:
            self._abandon(state, exc)
        finally:
            state.unlock()

    async def _advance(self, state: RunState) -> None:
        """A timer fired or the run was terminated: start what is due, re-assess."""
        if state.busy:
            await state.wait_turn(self._event_loop)  # handed over: still busy, now ours
        state.busy = True
        try:
            if state.done.done() or state.prepared is None:
                return
            await self._step(state, measurements=())
        except Exception as exc:
            self._abandon(state, exc)
        finally:
            state.unlock()

    def _on_timer(self, state: RunState) -> None:
        state.timer = None
        if self._closing or state.done.done() or state.prepared is None:
            return
        if state.busy:
            # The run is busy (its observer is being awaited): go through the lock.
            self._spawn(self._advance(state))
            return
        # Fast path: time alone never changes an assessment, so a timer only has to
        # start what fell due and set the next timer; no task, no lock needed.
        now = self._clock()
        self._plan(state, now)

    async def _fail_setup(self, state: RunState, message: str) -> None:
        status = state.status
        previous = status.phase
        status.phase = "Error"
        status.message = message
        status.completed_at = self._clock()
        change = RunChange(previous_phase=previous, phase="Error", completed=True)
        await self._observer.on_change(state.run, change)
        self._finish(state)

    async def _step(self, state: RunState, measurements: tuple[NewMeasurement, ...]) -> None:
        """Re-assess, tell the observer, then start due measurements and set the timer.

        Called with the run's lock held.
        """
        prepared = state.prepared
        assert prepared is not None
        status = state.status
        terminating = state.terminating
        now = self._clock()
        if terminating:
            # Stored in flight (e.g. before a restart) but the run was told to stop:
            # those measurements never completed and will not be taken.
            for result in status.metric_results:
                if result.name not in state.measuring:
                    lifecycle.drop_unfinished(status, result.name)
        outcome = lifecycle.reassess(
            status,
            prepared.metrics,
            dry_run=prepared.dry_run,
            retention=prepared.retention,
            terminate=terminating,
            now=now,
            hold=bool(state.measuring),
            # Only the metrics just recorded need a look (one dropped unrecorded: terminate).
            changed={new.metric for new in measurements} if measurements else None,
        )
        if measurements or outcome.phase != outcome.previous_phase:
            change = RunChange(
                measurements=measurements,
                previous_phase=outcome.previous_phase,
                phase=outcome.phase,
                completed=outcome.completed,
            )
            await self._observer.on_change(state.run, change)
        if outcome.completed:
            self._finish(state)
            return
        if self._closing:
            return
        self._plan(state, now)

    def _plan(self, state: RunState, now: datetime) -> None:
        """Queue the run's due measurements and set its timer for the next one."""
        prepared = state.prepared
        assert prepared is not None
        status = state.status
        tasks, wake = lifecycle.plan(
            prepared.metrics,
            status,
            now,
            terminate=state.terminating,
            in_flight=state.measuring.keys(),
            error_retry=self._error_retry,
        )
        if tasks:
            pool = self._pool
            namespace = state.key[0]
            if len(tasks) == 1:
                [task] = tasks
                dry = task.metric.name in prepared.dry_run
                lifecycle.begin_measurement(status, task, dry_run=dry, now=now)
            else:  # many due together: the status is indexed once, not scanned per task
                lifecycle.begin_measurements(status, tasks, dry_run=prepared.dry_run, now=now)
            for task in tasks:
                state.measuring[task.metric.name] = None
                pool.push(namespace, (state, task))
            pool.dispatch()
        self._set_timer(state, now, wake)

    def _set_timer(self, state: RunState, now: datetime, wake: datetime | None) -> None:
        if state.timer is not None:
            if wake == state.wake:
                return  # already set for that (often: a sibling metric's next measurement)
            state.timer.cancel()
            state.timer = None
        if wake is None:
            return
        loop = self._event_loop
        delay = max(0.0, (wake - now).total_seconds())
        state.timer = loop.call_at(
            loop.time() + delay, self._timer_callback, state, context=self._timer_context
        )
        state.wake = wake

    async def _measure(self, worker: Worker, job: Job) -> None:
        """One measurement in `worker`, then (under the run's lock) its bookkeeping.

        The metric stays in `state.measuring` from the moment it is queued until its
        measurement is recorded under the run's lock: a plan made in between (a timer,
        a sibling's measurement) must see it as in flight, never as an unfinished
        measurement left over from a restart, which it would take again.
        """
        state, task = job
        prepared = state.prepared
        assert prepared is not None
        name = task.metric.name
        measurement: Measurement | None
        me = worker.task
        assert me is not None
        started = self._clock()
        state.measuring[name] = worker
        bound = prepared.bindings.get(name)
        timed = bound is None or bound.timed
        self._pool.started(worker, state, timed)
        try:
            if state.terminating:
                measurement = None  # terminated while it waited in the queue
            else:
                measurement = await take_measurement(
                    self._source, prepared, task.metric, clock=self._clock, started=started
                )
        except asyncio.CancelledError:
            # Ours (worker.cancels) or the task's own: shutdown cancels workers outright.
            foreign = me.cancelling() > worker.cancels
            if foreign or self._closing:
                raise
            if worker.timed_out:
                limit = self._timeout if timed else self._pool.long_timeout
                measurement = timed_out(task.metric, started, self._clock(), limit)
            elif state.terminating:
                measurement = None  # cancelled by terminate(): it never happened
            else:
                return  # the run was handed over or stopped: nothing to record here
        finally:
            # Past this point the measurement is taken: recording it is never cut off.
            # Still in `measuring` (no worker: nothing left to cancel) until recorded.
            self._pool.ended(worker)
            if state.measuring.get(name) is worker:
                state.measuring[name] = None
            while worker.cancels:  # absorbed: the worker goes on to its next measurement
                worker.cancels -= 1
                me.uncancel()
        if state.done.done():
            return
        # Recorded in one step with every measurement of this run arriving before it: the
        # first arrival's worker takes the run's lock and records them all; later ones
        # only leave theirs (else a run of 3,000 metrics is assessed, planned and stored
        # 3,000 times per round). Emptied, not swapped: a new list is one more young object.
        arrived = state.arrived
        arrived.append((name, measurement))
        if len(arrived) > 1:
            return
        if len(prepared.metrics) >= _GATHER_FROM:
            await asyncio.sleep(0)  # siblings finishing in this pass join the batch
        if state.busy:
            await state.wait_turn(self._event_loop)  # handed over: still busy, now ours
        state.busy = True
        try:
            if state.done.done():
                return
            news = state.record(prepared, arrived)
            arrived.clear()
            await self._step(state, news)
        except Exception as exc:
            self._abandon(state, exc)
        finally:
            state.unlock()

    def _finish(self, state: RunState) -> None:
        state.stop_timer()
        state.cancel_measurements()
        if self._runs.pop(state.key, None) is not None:
            self._dropped(state)
        if not state.done.done():
            state.done.set_result(state.run)
        self._completed[state.key] = state.done
        while len(self._completed) > _COMPLETED_KEPT:
            self._completed.popitem(last=False)

    def _abandon(self, state: RunState, exc: Exception) -> None:
        """The observer (or a bug) failed: this run stops here; waiters get the error."""
        secrets = state.prepared.secret_values if state.prepared is not None else frozenset()
        log_error("run stopped", exc, secrets, namespace=state.key[0], run=state.key[1])
        state.stop_timer()
        state.cancel_measurements()
        if self._runs.pop(state.key, None) is not None:
            self._dropped(state)
        if not state.done.done():
            state.done.set_exception(exc)
            state.done.exception()
