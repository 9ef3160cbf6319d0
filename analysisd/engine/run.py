"""One AnalysisRun's lifecycle as pure functions over its status; time is an argument.

Ported from Argo's generateMetricTasks / calculateNextReconcileTime / runMeasurements
bookkeeping. Everything a run needs to resume lives in its status: the next
measurement of a metric is due at its last measurement's finishedAt plus the
interval (10 s after an Error), the first one at status.startedAt plus initialDelay.
A measurement with no finishedAt was in flight when the status was stored; it is
taken again, as Argo resumes an unfinished measurement.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

from analysisd.durations import DurationError, parse_duration
from analysisd.engine import assess
from analysisd.spec import COMPLETED_PHASES, AnalysisRunStatus, Measurement, Metric, MetricResult

ERROR_RETRY_INTERVAL = timedelta(seconds=10)


class MetricTask(NamedTuple):
    """A measurement to take now; `resume` re-takes an unfinished stored measurement.

    NamedTuples here and in Reassessment: immutable, and made for every measurement at a
    third of a frozen dataclass's cost.
    """

    metric: Metric
    resume: bool = False


def result_for(status: AnalysisRunStatus, name: str) -> MetricResult | None:
    for result in status.metric_results:
        if result.name == name:
            return result
    return None


# From this many metric results on, a pass over a run's metrics looks each one up in a
# dictionary built once for the pass; below it, a scan of the short list costs less.
_INDEX_FROM = 8


def results_by_name(status: AnalysisRunStatus) -> dict[str, MetricResult]:
    """name -> metric result, built once for a pass over many metrics (lookups O(1))."""
    return {result.name: result for result in status.metric_results}


@functools.lru_cache(maxsize=1024)
def _duration(text: str) -> timedelta | None:
    # Memoised: a pure function of a handful of distinct strings, asked several times
    # per measurement of every run.
    try:
        return parse_duration(text)
    except DurationError:
        # Validation rejects bad durations first; like Argo, skip the metric here.
        return None


def _unfinished(result: MetricResult | None) -> Measurement | None:
    if result is None or not result.measurements:
        return None
    last = result.measurements[-1]
    return last if last.finished_at is None else None


def _next_due(
    metric: Metric,
    result: MetricResult | None,
    started_at: datetime | None,
    error_retry: timedelta,
) -> datetime | None:
    """When this metric's next new measurement falls due (None: never, or not by timer).

    A metric never measured and without initialDelay is due at once; callers handle it.
    """
    if result is not None and result.phase in COMPLETED_PHASES:
        return None
    last = result.measurements[-1] if result is not None and result.measurements else None
    if last is None:
        delay = _duration(metric.initial_delay) if metric.initial_delay else None
        if delay is None or started_at is None:
            return None
        return started_at + delay
    if last.finished_at is None:
        return last.resume_at
    count = assess.effective_count(metric)
    if result is not None and count is not None and result.count >= count:
        return None
    if last.phase == "Error":
        interval: timedelta | None = error_retry
    elif metric.interval:
        interval = _duration(metric.interval)
    else:
        interval = error_retry
    if interval is None:
        return None
    return last.finished_at + interval


def metric_next_due(
    metric: Metric,
    status: AnalysisRunStatus,
    error_retry: timedelta = ERROR_RETRY_INTERVAL,
) -> datetime | None:
    """When this metric's next measurement falls due, for display (None: not by a timer)."""
    return _next_due(metric, result_for(status, metric.name), status.started_at, error_retry)


def plan(
    metrics: Sequence[Metric],
    status: AnalysisRunStatus,
    now: datetime,
    *,
    terminate: bool = False,
    in_flight: Collection[str] = (),
    error_retry: timedelta = ERROR_RETRY_INTERVAL,
) -> tuple[list[MetricTask], datetime | None]:
    """The due tasks (generateMetricTasks), and next_wakeup as it is once those tasks are
    in flight, in one pass: what the scheduler asks after every measurement of every run.

    A property test holds the tasks to a plain port of generateMetricTasks and the
    wake-up to a plain port of calculateNextReconcileTime (tests/unit/
    test_engine_lifecycle.py), over every status a simulated run passes through.
    """
    terminating = assess.is_terminating(terminate, status.metric_results)
    run_completed = assess.completed(status.phase)
    started_at = status.started_at
    tasks: list[MetricTask] = []
    earliest: datetime | None = None
    # Looked up in a dictionary made once per pass: a scan per metric made a pass over
    # a run of 3,000 metrics cost 4.5 million comparisons, after every measurement.
    index = results_by_name(status) if len(status.metric_results) >= _INDEX_FROM else None
    for metric in metrics:
        name = metric.name
        if name in in_flight:
            continue
        result = index.get(name) if index is not None else result_for(status, name)
        unfinished = _unfinished(result)
        due: datetime | None = None
        known = False  # `due` computed with started_at as given
        if result is None or result.phase not in COMPLETED_PHASES:
            if unfinished is not None:
                if unfinished.resume_at is None or unfinished.resume_at <= now:
                    tasks.append(MetricTask(metric, resume=True))
                    continue
            elif not terminating:
                if (result is None or not result.measurements) and not metric.initial_delay:
                    tasks.append(MetricTask(metric))
                    continue
                due, known = _next_due(metric, result, started_at, error_retry), True
                if due is not None and now >= due:
                    tasks.append(MetricTask(metric))
                    continue
        # Not started now: when it falls due (calculateNextReconcileTime's part).
        if run_completed or (terminating and unfinished is None):
            continue
        if not known or started_at is None:
            due = _next_due(metric, result, started_at or now, error_retry)
        if due is not None and (earliest is None or due < earliest):
            earliest = due
    return tasks, earliest


def begin_measurement(
    status: AnalysisRunStatus,
    task: MetricTask,
    *,
    dry_run: bool,
    now: datetime,
    index: dict[str, MetricResult] | None = None,
) -> Measurement:
    """Record an in-flight measurement (phase Running, no finishedAt) for `task`.

    `index` (results_by_name of this status, kept up to date here): look the metric
    up there instead of scanning the status.
    """
    name = task.metric.name
    result = index.get(name) if index is not None else result_for(status, name)
    if result is None:
        result = MetricResult.trusted(name, "Running", dry_run=dry_run)
        status.metric_results.append(result)
        if index is not None:
            index[name] = result
    # Values of our own making, and this runs for every measurement of every run.
    measurement = Measurement.trusted("Running", started_at=now)
    if task.resume and _unfinished(result) is not None:
        result.measurements[-1] = measurement
    else:
        result.measurements.append(measurement)
    return measurement


def begin_measurements(
    status: AnalysisRunStatus,
    tasks: Sequence[MetricTask],
    *,
    dry_run: Collection[str],
    now: datetime,
) -> None:
    """begin_measurement for each of `tasks` (due together), the status indexed once."""
    index = results_by_name(status) if len(tasks) > 1 else None
    for task in tasks:
        begin_measurement(status, task, dry_run=task.metric.name in dry_run, now=now, index=index)


def finish_measurement(
    status: AnalysisRunStatus,
    name: str,
    measurement: Measurement,
    index: Mapping[str, MetricResult] | None = None,
) -> None:
    """Replace the metric's in-flight measurement with the completed one; update counters.

    `index`: results_by_name of this status, for a batch of measurements finished together.
    """
    result = index.get(name) if index is not None else result_for(status, name)
    if result is None:
        raise KeyError(name)
    if _unfinished(result) is not None:
        result.measurements[-1] = measurement
    else:
        result.measurements.append(measurement)
    assess.apply_counters(result, measurement.phase)


def drop_unfinished(
    status: AnalysisRunStatus, name: str, index: Mapping[str, MetricResult] | None = None
) -> None:
    """Forget an in-flight measurement that was cancelled (it never completed)."""
    result = index.get(name) if index is not None else result_for(status, name)
    if result is not None and _unfinished(result) is not None:
        result.measurements.pop()


class Reassessment(NamedTuple):
    previous_phase: str
    phase: str
    completed: bool


def reassess(
    status: AnalysisRunStatus,
    metrics: Sequence[Metric],
    *,
    dry_run: frozenset[str],
    retention: Mapping[str, int],
    terminate: bool,
    now: datetime,
    hold: bool = False,
    changed: Collection[str] | None = None,
) -> Reassessment:
    """assessRunStatus (twice if it starts terminating), trim history; sets phase, completedAt.

    Argo re-reconciles right after a metric turns Failed (its status update wakes it),
    which is what makes the failing metric stop its siblings; looping here does the same.
    `hold` (measurements still in flight) keeps the run Running: Argo finishes every
    measurement of a pass before it assesses, so a run never completes under one.

    `changed`: the metrics whose measurements were recorded since the last pass over
    this status (None: unknown, assess everything). When the run is Running and not
    terminating, and none of them changes phase, the full pass would change nothing:
    every other metric's phase is what the last pass made it (a pass is a fixpoint of
    assessMetricStatus, and starting a measurement keeps a Running metric Running), so
    neither the run's phase, its messages nor its summary can move. Only the history is
    trimmed then. A property test holds this to the full pass.
    """
    previous = status.phase
    if (
        changed is not None
        and previous == "Running"
        and not terminate
        and _unchanged(status, metrics, changed)
    ):
        assess.trim_measurements(status, retention)
        return Reassessment(previous, previous, False)
    was_terminating = assess.is_terminating(terminate, status.metric_results)
    outcome = assess.assess_run(status, metrics, dry_run, terminate, now, was_terminating)
    # A second pass matters only when this one made the run start terminating;
    # once terminating, a pass changes nothing further.
    if not was_terminating and assess.is_terminating(terminate, status.metric_results):
        outcome = assess.assess_run(status, metrics, dry_run, terminate, now)
    if hold and assess.completed(outcome.phase):
        outcome = assess.RunAssessment("Running", "")
    if outcome.phase != status.phase:
        status.phase = outcome.phase
        status.message = outcome.message
    done = assess.completed(status.phase)
    if done and status.completed_at is None:
        status.completed_at = now
    assess.trim_measurements(status, retention)
    return Reassessment(previous, status.phase, done)


def _unchanged(
    status: AnalysisRunStatus, metrics: Sequence[Metric], changed: Collection[str]
) -> bool:
    """True when a full pass would leave every phase as it is (see reassess's `changed`)."""
    if assess.is_terminating(False, status.metric_results):
        return False
    left = len(changed)
    index = results_by_name(status) if len(status.metric_results) >= _INDEX_FROM else None
    for metric in metrics:
        if metric.name not in changed:
            continue
        result = index.get(metric.name) if index is not None else result_for(status, metric.name)
        if result is None:
            return False
        phase = assess.assess_metric(metric, result, False)
        if phase != result.phase or phase in COMPLETED_PHASES:
            return False
        left -= 1
        if not left:
            return True
    return not left
