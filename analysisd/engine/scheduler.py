"""The asyncio loop that runs many AnalysisRuns at once.

Each run owns one timer (loop.call_at) set to its next wake-up, computed by
engine.run.plan from the status alone; nothing polls. A wake-up queues the
due measurements; at most `max_concurrency` workers take them from the queue, each
under a per-measurement timeout. When a measurement finishes, its worker records it
for the run (under the run's own lock), re-assesses, awaits the observer, and plans
the run's next step, so the observer always sees every change of a run in order,
before that run moves on.

Due measurements wait in a FairQueue (engine/fairshare.py): when every worker is
busy, namespaces are served in turn, so one team's burst is not every team's
wait, and a namespace's measurementsPerSecond quota delays (never drops) its own
measurements. With one namespace and no quota it is a plain FIFO.

Workers, not a task per measurement: at saturation a worker goes from one
measurement to the next, as a bare client loop does, and no task is created, no
done callback scheduled and no context copied per measurement. A measurement is
cancelled (terminate, timeout, hand-over) by cancelling its worker while the worker
is inside that measurement; the worker absorbs its own cancellations and goes on.

Shutdown (aclose) is a designed path: stop taking work, let in-flight measurements
finish within a grace period, cancel the rest, fail the remaining waiters.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

from analysisd.engine import assess
from analysisd.engine import run as lifecycle
from analysisd.engine.dispatch import bind_metrics, take_measurement
from analysisd.engine.fairshare import FairQueue
from analysisd.engine.measure import (
    MeasurementSource,
    NoSecrets,
    PreparedRun,
    RunSetupError,
    SecretLookupSource,
    prepare_run,
    timed_out,
)
from analysisd.engine.observer import NewMeasurement, RunChange, RunObserver
from analysisd.spec import AnalysisRun, AnalysisRunStatus, Measurement

__all__ = ["MeasurementSource", "Scheduler", "SchedulerClosed", "utc_now"]

log = logging.getLogger(__name__)
RunKey = tuple[str, str]
# Completed runs kept for late wait() calls; each holds its whole AnalysisRun.
_COMPLETED_KEPT = 1024
# Submitted runs are set up in slices of this much time per pass through the loop.
_ADMIT_SLICE_S = 0.005
# A run with this many metrics or more lets one pass through the loop go by before it
# records a finished measurement, so that its siblings finishing in the same pass are
# recorded, assessed and stored with it in one step (see _measure).
_GATHER_FROM = 8
# The loop-lag governor (see _on_probe): while several namespaces have runs, a timer
# every _PROBE_S measures how late the loop runs it; later than _LAG_TARGET_S, the
# namespaces over their fair share get a quarter fewer workers, else one more.
_PROBE_S = 0.02
_LAG_TARGET_S = 0.005


def utc_now() -> datetime:
    return datetime.now(UTC)


def _finished_job(job: tuple[_RunState, lifecycle.MetricTask]) -> bool:
    return job[0].done.done()  # the run finished or was handed over while it waited


class SchedulerClosed(RuntimeError):
    """The scheduler shut down before the run completed."""


class _RunState:
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
        self.done = done
        # The run's lock (see Scheduler._wait_turn): held while its status changes and
        # its observer is awaited. A flag and, only when contended, a queue of waiters.
        self.busy = False
        self.turns: deque[asyncio.Future[None]] | None = None
        self.prepared: PreparedRun | None = None
        self.given: PreparedRun | None = None  # prepared by the caller of submit (admission)
        # Metric name -> the worker measuring it, or None while it waits in the queue.
        self.measuring: dict[str, _Worker | None] = {}
        self.timer: asyncio.TimerHandle | None = None
        self.wake: datetime | None = None  # what `timer` is set for
        # Measurements taken and not yet recorded (metric name, measurement or None for
        # one that never happened); the first arrival's worker records them all.
        self.arrived: list[tuple[str, Measurement | None]] = []


class _Worker:
    """One of at most `max_concurrency` measurement workers, and what it is measuring."""

    __slots__ = ("cancels", "job", "task", "timed_out")

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None
        # The run whose measurement this worker is inside right now (None between them):
        # only then may the measurement be cancelled, by cancelling the worker.
        self.job: _RunState | None = None
        self.cancels = 0  # cancellations asked for by the scheduler, absorbed by the worker
        self.timed_out = False

    def cancel(self) -> None:
        """Cut the current measurement short (the worker itself goes on)."""
        if self.job is not None and self.task is not None:
            self.cancels += 1
            self.task.cancel()


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
        error_retry: timedelta = lifecycle.ERROR_RETRY_INTERVAL,
        rate_of: Callable[[str], float | None] = lambda namespace: None,
    ) -> None:
        # error_retry exists so tests can shorten Argo's 10 s retry. rate_of: a
        # namespace's measurementsPerSecond quota (None: unlimited).
        self._source = source
        self._observer = observer
        self._secrets: SecretLookupSource = secrets if secrets is not None else NoSecrets()
        self._clock = clock
        # Due measurements (a FIFO per namespace, served in turn) and up to
        # max_concurrency workers draining them (instead of a semaphore: tens of
        # thousands of waiters on asyncio.Semaphore cost O(waiters) per release, and a
        # task per queued measurement costs memory).
        self._max_concurrency = max_concurrency
        self._queue: FairQueue[tuple[_RunState, lifecycle.MetricTask]] = FairQueue(
            rate_of, skip=_finished_job
        )
        self._unpark_timer: asyncio.TimerHandle | None = None
        self._unpark_at = 0.0
        # Active runs per namespace: with more than one namespace, one at or over its
        # fair share of the workers leaves a tenth of them free for the others, so a
        # small one finds a free worker at once (FairQueue.share).
        self._namespaces: dict[str, int] = {}
        self._shares = 0
        self._probe: asyncio.TimerHandle | None = None
        self._probe_at = 0.0
        self._throttle = max_concurrency  # workers over-share namespaces may fill
        self._workers: set[_Worker] = set()
        # Submitted runs not yet set up, and the task setting them up (see _admit).
        self._arrivals: deque[_RunState] = deque()
        self._admitter: asyncio.Task[None] | None = None
        self._unstarted = 0  # workers started but not yet running (they will take one each)
        self._timeout = measurement_timeout
        self._error_retry = error_retry
        self._runs: dict[RunKey, _RunState] = {}
        self._completed: OrderedDict[RunKey, asyncio.Future[AnalysisRun]] = OrderedDict()
        self._tasks: set[asyncio.Task[Any]] = set()
        # Measurement timeouts: every measurement gets the same timeout, so deadlines
        # come in start order; one timer for the oldest replaces a timer apiece. A plain
        # dict keeps that order (a key re-inserted goes last) for less than OrderedDict.
        self._deadlines: dict[_Worker, float] = {}
        self._watchdog: asyncio.TimerHandle | None = None
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
        self._stop_probe()
        self._queue.clear()
        if self._unpark_timer is not None:
            self._unpark_timer.cancel()
            self._unpark_timer = None
        self._arrivals.clear()
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        for state in self._runs.values():
            if state.timer is not None:
                state.timer.cancel()
                state.timer = None
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
        self._namespaces.clear()

    # ---- public API ----

    def submit(self, run: AnalysisRun, prepared: PreparedRun | None = None) -> None:
        """Start (or resume, from its stored status) a run. `prepared`: the run already
        prepared (prepare_run of this very spec, secrets and metadata), e.g. by admission;
        it is then not prepared again."""
        if self._closing:
            raise SchedulerClosed("scheduler is shutting down")
        key = (run.metadata.namespace or "default", run.metadata.name)
        if key in self._runs:
            raise ValueError(f"run {key[0]}/{key[1]} is already active")
        # Our own copy: terminate() sets spec.terminate and the status is ours to change.
        # Metrics are never mutated, so they are shared rather than deep-copied.
        status = run.status.model_copy(deep=True) if run.status else AnalysisRunStatus()
        run = run.model_copy(update={"spec": run.spec.model_copy(), "status": status})
        done: asyncio.Future[AnalysisRun] = self._event_loop.create_future()
        self._completed.pop(key, None)
        state = _RunState(key, run, done)
        state.given = prepared
        self._runs[key] = state
        self._count_namespace(key[0], +1)
        self._arrivals.append(state)
        if self._admitter is None:
            self._admitter = self._spawn(self._admit())

    def terminate(self, namespace: str, name: str) -> bool:
        """Ask a run to stop: no new measurements, in-flight ones are cancelled and dropped."""
        state = self._runs.get((namespace, name))
        if state is None or state.done.done():
            return False
        state.run.spec.terminate = True
        for worker in state.measuring.values():
            if worker is not None:
                worker.cancel()
        if state.timer is not None:
            state.timer.cancel()
            state.timer = None
        self._spawn(self._advance(state))
        return True

    def _count_namespace(self, namespace: str, delta: int) -> None:
        namespaces = self._namespaces
        count = namespaces.get(namespace, 0) + delta
        if count > 0:
            namespaces[namespace] = count
        else:
            namespaces.pop(namespace, None)
        shares = len(namespaces)
        if shares != self._shares and (shares > 1 or self._shares > 1):
            # Fair share of the workers among namespaces with runs (FairQueue.share).
            self._queue.share(self._max_concurrency if shares > 1 else None, shares)
            if shares > 1 and self._probe is None and not self._closing:
                self._arm_probe()
            elif shares < 2:
                self._stop_probe()
            self._dispatch()
        self._shares = shares

    def _arm_probe(self) -> None:
        loop = self._event_loop
        self._probe_at = loop.time() + _PROBE_S
        self._probe = loop.call_at(self._probe_at, self._on_probe, context=self._timer_context)

    def _stop_probe(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            self._probe = None
        self._throttle = self._max_concurrency
        self._queue.throttle(None)

    def _on_probe(self) -> None:
        """The loop is a queue every namespace shares: while it runs late, namespaces
        over their fair share take fewer workers (their bookkeeping is what fills it),
        never fewer than their fair share (FairQueue.throttle); on time, more again."""
        self._probe = None
        if self._closing or self._shares < 2:
            return
        limit = self._max_concurrency
        late = self._event_loop.time() - self._probe_at
        throttle = self._throttle
        if late > _LAG_TARGET_S:
            throttle = max(1, throttle * 3 // 4)
        elif throttle < limit:
            throttle = min(limit, throttle + max(1, limit // 50))
        if throttle != self._throttle:
            raised = throttle > self._throttle
            self._throttle = throttle
            self._queue.throttle(throttle if throttle < limit else None)
            if raised:
                self._dispatch()
        self._arm_probe()

    def _dropped(self, state: _RunState) -> None:
        """`state` left self._runs (finished, abandoned or handed over)."""
        self._count_namespace(state.key[0], -1)

    def is_active(self, namespace: str, name: str) -> bool:
        return (namespace, name) in self._runs

    def forget(self, namespace: str, name: str) -> bool:
        """Drop a run here without terminating or recording anything: another replica
        holds it now. In-flight measurements are cancelled; waiters get SchedulerClosed."""
        state = self._runs.pop((namespace, name), None)
        if state is None:
            return False
        self._dropped(state)
        if state.timer is not None:
            state.timer.cancel()
            state.timer = None
        # Done first, so cancelled measurements see a finished run and record nothing.
        if not state.done.done():
            state.done.set_exception(SchedulerClosed(f"{namespace}/{name}: handed over"))
            state.done.exception()
        for worker in state.measuring.values():
            if worker is not None:
                worker.cancel()
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
        return self._queue.waiting(namespace)

    # ---- internals ----

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = self._event_loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # The run's lock: `if state.busy: await self._wait_turn(state)`, then take it by
    # setting busy; `_unlock` in a finally. Uncontended (nearly always), taking it costs
    # no coroutine and no future, where asyncio.Lock costs two coroutines per use.

    async def _wait_turn(self, state: _RunState) -> None:
        turn: asyncio.Future[None] = self._event_loop.create_future()
        if state.turns is None:
            state.turns = deque()
        state.turns.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._unlock(state)  # handed over just as we were cancelled: pass it on
            raise

    def _unlock(self, state: _RunState) -> None:
        turns = state.turns
        while turns:
            turn = turns.popleft()
            if not turn.done():  # a cancelled waiter is skipped
                turn.set_result(None)  # handed over: the run stays busy
                return
        state.busy = False

    async def _admit(self) -> None:
        """Set up submitted runs, a few milliseconds' worth per pass through the loop.

        Setting a run up (arguments, validation, binding) takes a tenth of a
        millisecond; ten thousand submitted at once (a restart resuming every stored
        run) would hold the loop for a second, and every measurement, timer and API
        request would wait behind them. In slices, they wait a slice at most.
        """
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
            self._admitter = None

    def _set_up(self, state: _RunState) -> tuple[PreparedRun | None, Exception | None]:
        if assess.completed(state.status.phase):
            return None, None  # stored completed: nothing to prepare
        try:
            prepared, state.given = state.given, None
            if prepared is None:
                prepared = prepare_run(state.run.spec, self._secrets, state.run.metadata)
            bind_metrics(self._source, prepared)
        except Exception as exc:  # RunSetupError: Argo's message; anything else: a bug
            return None, exc
        return prepared, None

    async def _begin(
        self, state: _RunState, prepared: PreparedRun | None, error: Exception | None
    ) -> None:
        if state.busy:
            await self._wait_turn(state)  # handed over: still busy, now ours
        state.busy = True
        try:
            if state.done.done():
                return  # forgotten (handed over) meanwhile
            if assess.completed(state.status.phase):
                self._finish(state)
                return
            if isinstance(error, RunSetupError):
                await self._fail_setup(state, str(error))
                return
            if error is not None:
                raise error
            state.prepared = prepared
            await self._step(state, measurements=())
        except Exception as exc:
            self._abandon(state, exc)
        finally:
            self._unlock(state)

    async def _advance(self, state: _RunState) -> None:
        """A timer fired or the run was terminated: start what is due, re-assess."""
        if state.busy:
            await self._wait_turn(state)  # handed over: still busy, now ours
        state.busy = True
        try:
            if state.done.done() or state.prepared is None:
                return
            await self._step(state, measurements=())
        except Exception as exc:
            self._abandon(state, exc)
        finally:
            self._unlock(state)

    def _on_timer(self, state: _RunState) -> None:
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

    async def _fail_setup(self, state: _RunState, message: str) -> None:
        status = state.status
        previous = status.phase
        status.phase = "Error"
        status.message = message
        status.completed_at = self._clock()
        change = RunChange(previous_phase=previous, phase="Error", completed=True)
        await self._observer.on_change(state.run, change)
        self._finish(state)

    async def _step(self, state: _RunState, measurements: tuple[NewMeasurement, ...]) -> None:
        """Re-assess, tell the observer, then start due measurements and set the timer.

        Called with the run's lock held.
        """
        prepared = state.prepared
        assert prepared is not None
        status = state.status
        spec = state.run.spec
        now = self._clock()
        if spec.terminate:
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
            terminate=spec.terminate,
            now=now,
            hold=bool(state.measuring),
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

    def _plan(self, state: _RunState, now: datetime) -> None:
        """Queue the run's due measurements and set its timer for the next one."""
        prepared = state.prepared
        assert prepared is not None
        status = state.status
        tasks, wake = lifecycle.plan(
            prepared.metrics,
            status,
            now,
            terminate=state.run.spec.terminate,
            in_flight=state.measuring.keys(),
            error_retry=self._error_retry,
        )
        if tasks:
            queue = self._queue
            namespace = state.key[0]
            if len(tasks) == 1:
                [task] = tasks
                dry = task.metric.name in prepared.dry_run
                lifecycle.begin_measurement(status, task, dry_run=dry, now=now)
            else:  # many due together: the status is indexed once, not scanned per task
                lifecycle.begin_measurements(status, tasks, dry_run=prepared.dry_run, now=now)
            for task in tasks:
                state.measuring[task.metric.name] = None
                queue.push(namespace, (state, task))
            self._dispatch()
        self._set_timer(state, now, wake)

    def _dispatch(self) -> None:
        """Start workers for queued measurements, up to the global concurrency limit.

        Workers inside a measurement cannot take more (one may hang until its timeout):
        a measurement queued while there is room gets a new worker of its own.
        """
        while (
            self._queue.runnable > self._unstarted
            and len(self._workers) < self._max_concurrency
            and not self._closing
        ):
            worker = _Worker()
            self._workers.add(worker)
            self._unstarted += 1
            worker.task = self._spawn(self._work(worker))

    async def _work(self, worker: _Worker) -> None:
        """Take queued measurements one after another until the queue is empty."""
        self._unstarted -= 1
        queue = self._queue
        loop = self._event_loop
        try:
            while not self._closing:
                job = queue.pop(loop.time())
                if job is None:
                    break
                state, task = job
                try:
                    await self._measure(worker, state, task)
                except Exception as exc:  # a bug: that run stops, the worker goes on
                    self._abandon(state, exc)
                finally:
                    queue.finished(state.key[0])
                # One trip through the loop before the next measurement: the workers
                # that finished in this pass start their next requests together, after
                # the loop has polled for I/O, instead of one at a time in between.
                # Batched, the sends wake the endpoint and its answers wake us less
                # often; at saturation this costs less CPU than it adds (measured in
                # bench/bench_scheduler.py: about 8 % less per measurement).
                await asyncio.sleep(0)
        finally:
            self._workers.discard(worker)
            if self._queue.next_unpark() is not None:
                self._arm_unpark()

    def _arm_unpark(self) -> None:
        """A namespace is parked on its rate quota: wake up when its next token is due."""
        at = self._queue.next_unpark()
        if at is None or self._closing:
            return
        if self._unpark_timer is not None:
            if self._unpark_at <= at:
                return
            self._unpark_timer.cancel()
        self._unpark_at = at
        self._unpark_timer = self._event_loop.call_at(at, self._on_unpark)

    def _on_unpark(self) -> None:
        self._unpark_timer = None
        if self._closing:
            return
        if self._queue.unpark(self._loop_time()):
            self._dispatch()
        self._arm_unpark()

    def _loop_time(self) -> float:
        return self._event_loop.time()

    def _arm_watchdog(self) -> None:
        if self._deadlines and not self._closing:
            first = next(iter(self._deadlines.values()))
            self._watchdog = self._event_loop.call_at(first, self._on_deadline)
        else:
            self._watchdog = None

    def _on_deadline(self) -> None:
        """Cut off every measurement past its deadline, then wait for the next one."""
        now = self._loop_time()
        deadlines = self._deadlines
        while deadlines:
            worker, deadline = next(iter(deadlines.items()))
            if deadline > now:
                break
            del deadlines[worker]
            if worker.job is not None:
                worker.timed_out = True
                worker.cancel()
        self._arm_watchdog()

    def _set_timer(self, state: _RunState, now: datetime, wake: datetime | None) -> None:
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

    async def _measure(self, worker: _Worker, state: _RunState, task: lifecycle.MetricTask) -> None:
        """One measurement in `worker`, then (under the run's lock) its bookkeeping.

        The metric stays in `state.measuring` from the moment it is queued until its
        measurement is recorded under the run's lock: a plan made in between (a timer,
        a sibling's measurement) must see it as in flight, never as an unfinished
        measurement left over from a restart, which it would take again.
        """
        prepared = state.prepared
        assert prepared is not None
        name = task.metric.name
        measurement: Measurement | None
        me = worker.task
        assert me is not None
        started = self._clock()
        state.measuring[name] = worker
        worker.job = state
        worker.timed_out = False
        self._deadlines[worker] = self._event_loop.time() + self._timeout
        if self._watchdog is None:
            self._arm_watchdog()
        try:
            if state.run.spec.terminate:
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
                measurement = timed_out(task.metric, started, self._clock(), self._timeout)
            elif state.run.spec.terminate:
                measurement = None  # cancelled by terminate(): it never happened
            else:
                return  # the run was handed over or stopped: nothing to record here
        finally:
            # Past this point the measurement is taken: recording it is never cut off.
            # Still in `measuring` (no worker: nothing left to cancel) until recorded.
            worker.job = None
            self._deadlines.pop(worker, None)
            if state.measuring.get(name) is worker:
                state.measuring[name] = None
            while worker.cancels:  # absorbed: the worker goes on to its next measurement
                worker.cancels -= 1
                me.uncancel()
        if state.done.done():
            return
        # Recorded in one step with every measurement of this run that arrives before
        # that step: the first arrival's worker takes the run's lock and records them
        # all; later ones only leave theirs (a run of 3,000 metrics would otherwise be
        # assessed, planned and stored 3,000 times per round, each pass over 3,000).
        arrived = state.arrived
        arrived.append((name, measurement))
        if len(arrived) > 1:
            return
        if len(prepared.metrics) >= _GATHER_FROM:
            await asyncio.sleep(0)  # siblings finishing in this pass join the batch
        if state.busy:
            await self._wait_turn(state)  # handed over: still busy, now ours
        state.busy = True
        try:
            if state.done.done():
                return
            batch, state.arrived = state.arrived, []
            await self._step(state, self._record(state, prepared, batch))
        except Exception as exc:
            self._abandon(state, exc)
        finally:
            self._unlock(state)

    def _record(
        self,
        state: _RunState,
        prepared: PreparedRun,
        batch: list[tuple[str, Measurement | None]],
    ) -> tuple[NewMeasurement, ...]:
        """Record measurements that arrived (under the run's lock); the new ones, in order."""
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

    def _finish(self, state: _RunState) -> None:
        if state.timer is not None:
            state.timer.cancel()
            state.timer = None
        for worker in state.measuring.values():
            if worker is not None:
                worker.cancel()
        if self._runs.pop(state.key, None) is not None:
            self._dropped(state)
        if not state.done.done():
            state.done.set_result(state.run)
        self._completed[state.key] = state.done
        while len(self._completed) > _COMPLETED_KEPT:
            self._completed.popitem(last=False)

    def _abandon(self, state: _RunState, exc: Exception) -> None:
        """The observer (or a bug) failed: this run stops here; waiters get the error."""
        log.error("run %s/%s stopped: %r", state.key[0], state.key[1], exc)
        if state.timer is not None:
            state.timer.cancel()
            state.timer = None
        for worker in state.measuring.values():
            if worker is not None:
                worker.cancel()
        if self._runs.pop(state.key, None) is not None:
            self._dropped(state)
        if not state.done.done():
            state.done.set_exception(exc)
            state.done.exception()
