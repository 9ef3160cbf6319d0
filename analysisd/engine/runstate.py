"""One active run as the scheduler holds it (RunState), its lock, its recording, and
how submitted runs are set up (Admitter: in slices, off the hot path).

The run's lock is held while its status changes and its observer is awaited, so
the observer sees every change of a run in order. Uncontended (nearly always) it
is a flag; only when contended is there a queue of waiters, each handed the lock
in turn.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import deque
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from analysisd.engine import assess
from analysisd.engine import run as lifecycle
from analysisd.engine.dispatch import bind_metrics
from analysisd.engine.measure import (
    MeasurementSource,
    PreparedRun,
    SecretLookupSource,
    prepare_run,
)
from analysisd.engine.observer import NewMeasurement
from analysisd.engine.workers import Worker
from analysisd.spec import AnalysisRun, AnalysisRunStatus, Measurement

__all__ = [
    "Admitter",
    "Job",
    "RunKey",
    "RunState",
    "SchedulerClosed",
    "finished_job",
    "first_status",
    "namespace_of",
    "set_up",
    "utc_now",
]

RunKey = tuple[str, str]
# Submitted runs are set up in slices of this much time per pass through the loop.
_ADMIT_SLICE_S = 0.005


# The scheduler's clock: a partial of the C function, called without a Python frame
# (several times per measurement: when it starts, ends and is recorded).
utc_now: Callable[[], datetime] = functools.partial(datetime.now, UTC)


Job = tuple["RunState", lifecycle.MetricTask]


def finished_job(job: Job) -> bool:
    return job[0].done.done()  # the run finished or was handed over while it waited


def namespace_of(job: Job) -> str:
    return job[0].key[0]


class SchedulerClosed(RuntimeError):
    """The scheduler shut down before the run completed."""


class RunState:
    """One active run: its model, resolved spec, in-flight measurements and timer."""

    __slots__ = (
        "arrived",
        "busy",
        "done",
        "given",
        "key",
        "measuring",
        "prepared",
        "run",
        "status",
        "terminating",
        "timer",
        "turns",
        "wake",
    )

    def __init__(self, key: RunKey, run: AnalysisRun, done: asyncio.Future[AnalysisRun]) -> None:
        self.key = key
        self.run = run
        assert run.status is not None
        # run.status, which is never replaced (only changed in place) once submitted.
        self.status: AnalysisRunStatus = run.status
        # run.spec.terminate, kept beside the rest of the state the scheduler reads for
        # every measurement (Scheduler.terminate sets both) rather than three objects away.
        self.terminating: bool = run.spec.terminate
        self.done = done
        # The run's lock (see Scheduler._wait_turn): held while its status changes and
        # its observer is awaited. A flag and, only when contended, a queue of waiters.
        self.busy = False
        self.turns: deque[asyncio.Future[None]] | None = None
        self.prepared: PreparedRun | None = None
        self.given: PreparedRun | None = None  # prepared by the caller of submit (admission)
        # Metric name -> the worker measuring it, or None while it waits in the queue.
        self.measuring: dict[str, Worker | None] = {}
        self.timer: asyncio.TimerHandle | None = None
        self.wake: datetime | None = None  # what `timer` is set for
        # Measurements taken and not yet recorded (metric name, measurement or None for
        # one that never happened); the first arrival's worker records them all.
        self.arrived: list[tuple[str, Measurement | None]] = []

    @classmethod
    def submitted(
        cls,
        key: RunKey,
        run: AnalysisRun,
        done: asyncio.Future[AnalysisRun],
        prepared: PreparedRun | None,
        started: bool,
    ) -> RunState:
        """The state of a run given to Scheduler.submit: with its own copy of the run,
        unless it is `started` (see first_status): such a run is handed over."""
        if not started or prepared is None or run.status is None:
            # Our own copy: terminate() sets spec.terminate and the status is ours to change.
            # Metrics are never mutated, so they are shared rather than deep-copied.
            status = run.status.model_copy(deep=True) if run.status else AnalysisRunStatus()
            run = run.model_copy(update={"spec": run.spec.model_copy(), "status": status})
        state = cls(key, run, done)
        state.given = prepared  # prepared by the caller of submit (admission)
        return state

    def stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def cancel_measurements(self) -> None:
        """Cut short every measurement of this run a worker is inside."""
        for worker in self.measuring.values():
            if worker is not None:
                worker.cancel()

    # The run's lock: `if state.busy: await state.wait_turn(loop)`, then take it by
    # setting busy; `unlock` in a finally. Uncontended (nearly always), taking it costs
    # no coroutine and no future, where asyncio.Lock costs two coroutines per use.

    async def wait_turn(self, loop: asyncio.AbstractEventLoop) -> None:
        state = self
        turn: asyncio.Future[None] = loop.create_future()
        if state.turns is None:
            state.turns = deque()
        state.turns.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                state.unlock()  # handed over just as we were cancelled: pass it on
            raise

    def unlock(self) -> None:
        state = self
        turns = state.turns
        while turns:
            turn = turns.popleft()
            if not turn.done():  # a cancelled waiter is skipped
                turn.set_result(None)  # handed over: the run stays busy
                return
        state.busy = False

    def record(
        self,
        prepared: PreparedRun,
        batch: list[tuple[str, Measurement | None]],
    ) -> tuple[NewMeasurement, ...]:
        """Record measurements that arrived (under the run's lock); the new ones, in order."""
        state = self
        status = state.status
        index = lifecycle.results_by_name(status) if len(batch) > 1 else None
        news: list[NewMeasurement] = []
        for name, measurement in batch:
            state.measuring.pop(name, None)
            if measurement is None:
                lifecycle.drop_unfinished(status, name, index)
            else:
                lifecycle.finish_measurement(status, name, measurement, index)
                news.append(NewMeasurement(name, measurement, name in prepared.dry_run))
        return tuple(news)


def first_status(
    run: AnalysisRun, prepared: PreparedRun, now: datetime
) -> AnalysisRunStatus | None:
    """The status a new run (no status yet) has after its first step, when that step only
    starts it (Pending -> Running, startedAt `now`; nothing is due to be measured behind an
    initialDelay, and nothing to tell but the phase).

    Stored with the run (the API inserts it so), the run is then submitted with it and
    `started`: Scheduler.submit sets it up and plans it at once (no task, no lock: the
    run is new), and its observer is not told of that step (no second write of a new
    run); its due measurements are queued then. None when the first step would do more
    (a run told to terminate from the start completes in it): the run is then stored
    and submitted without status, and its first step taken as any run's.
    """
    if run.status is not None:
        return None
    status = AnalysisRunStatus()
    outcome = lifecycle.reassess(
        status,
        prepared.metrics,
        dry_run=prepared.dry_run,
        retention=prepared.retention,
        terminate=run.spec.terminate,
        now=now,
    )
    if outcome.completed or outcome.phase != "Running":
        return None
    return status


SetUp = tuple[PreparedRun | None, Exception | None]
Begin = Callable[[RunState, PreparedRun | None, Exception | None], Coroutine[Any, Any, None]]


def set_up(state: RunState, source: MeasurementSource, secrets: SecretLookupSource) -> SetUp:
    """Prepare a submitted run and bind its providers: (prepared, None) or (None, error)."""
    if assess.completed(state.status.phase):
        return None, None  # stored completed: nothing to prepare
    try:
        prepared, state.given = state.given, None
        if prepared is None:
            prepared = prepare_run(state.run.spec, secrets, state.run.metadata)
        bind_metrics(source, prepared, state.status)  # the status it starts or resumes from
    except Exception as exc:  # RunSetupError: Argo's message; anything else: a bug
        return None, exc
    return prepared, None


class Admitter:
    """Set up submitted runs, a few milliseconds' worth per pass through the loop.

    Setting a run up (arguments, validation, binding) takes a tenth of a
    millisecond; ten thousand submitted at once (a restart resuming every stored
    run) would hold the loop for a second, and every measurement, timer and API
    request would wait behind them. In slices, they wait a slice at most. Each run
    set up is handed to `begin(state, prepared, error)` in a task of its own.
    """

    def __init__(
        self,
        set_up: Callable[[RunState], SetUp],
        begin: Callable[
            [RunState, PreparedRun | None, Exception | None], Coroutine[Any, Any, None]
        ],
        spawn: Callable[[Coroutine[Any, Any, None]], asyncio.Task[Any]],
    ) -> None:
        self._set_up = set_up
        self._begin = begin
        self._spawn = spawn
        self._arrivals: deque[RunState] = deque()
        self._task: asyncio.Task[Any] | None = None
        self._closing = False

    def add(self, state: RunState) -> None:
        self._arrivals.append(state)
        if self._task is None:
            self._task = self._spawn(self._admit())

    def set_up_now(self, state: RunState) -> bool:
        """Set up a started run (Scheduler.submit) now: True when it is ready to be planned.
        Else it is added, or (its set-up failed: not expected, binding errors are its
        measurements') begun, as any run."""
        if state.given is None or state.status.phase != "Running":
            self.add(state)
            return False
        prepared, error = self._set_up(state)
        if prepared is None or error is not None:
            self._spawn(self._begin(state, prepared, error))
            return False
        state.prepared = prepared
        return True

    def close(self) -> None:
        self._closing = True
        self._arrivals.clear()

    async def _admit(self) -> None:
        arrivals = self._arrivals
        try:
            while arrivals and not self._closing:
                deadline = time.perf_counter() + _ADMIT_SLICE_S
                while arrivals and time.perf_counter() < deadline:
                    state = arrivals.popleft()
                    if state.done.done():
                        continue  # forgotten before it started
                    prepared, error = self._set_up(state)
                    self._spawn(self._begin(state, prepared, error))
                await asyncio.sleep(0)
        finally:
            self._task = None
