"""Argo's assessment rules: measurement -> metric counters -> metric phase -> run phase.

A faithful port of the analysis controller (argo-rollouts analysis/analysis.go:
assessMetricStatus, assessMetricFailureInconclusiveOrError, assessRunStatus, the
counter switch of runMeasurements, garbageCollectMeasurements, and
isAnalysisRunTtlExceeded). No I/O and no clock: time comes in as an argument.
The functions that update a status mutate the pydantic models they are given,
as the controller mutates its deep copy of the run.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from analysisd.spec import (
    COMPLETED_PHASES,
    AnalysisRunStatus,
    Metric,
    MetricResult,
    Phase,
    RunSummary,
    TTLStrategy,
)

DEFAULT_CONSECUTIVE_ERROR_LIMIT = 4
DEFAULT_MEASUREMENT_HISTORY_LIMIT = 10
RUN_TERMINATED_MESSAGE = "Run Terminated"

# Argo's analysisStatusOrder: a later phase is worse.
_PHASE_ORDER = ("Pending", "Running", "Successful", "Inconclusive", "Error", "Failed")
_FAILING_PHASES = frozenset({"Failed", "Error", "Inconclusive"})
_GO_INT = re.compile(r"[+-]?\d+")


def completed(phase: str | None) -> bool:
    return phase in COMPLETED_PHASES


def is_worse(current: str, new: str) -> bool:
    """True when `new` ranks worse than `current` (Failed > Error > Inconclusive > Successful)."""
    return _rank(new) > _rank(current)


def _rank(phase: str) -> int:
    return _PHASE_ORDER.index(phase) if phase in _PHASE_ORDER else 0


def int_value(value: int | str | None, default: int = 0) -> int:
    """intstr.IntOrString.IntValue(): strings go through Atoi, and unparsable ones are 0."""
    if value is None:
        return default
    if isinstance(value, int):
        return value
    text = value.strip()
    return int(text) if _GO_INT.fullmatch(text) else 0


def effective_count(metric: Metric) -> int | None:
    """Measurements wanted: count; unset/0 means once without an interval, forever with one."""
    return _effective_count(metric.count, metric.interval)


@functools.lru_cache(maxsize=1024)
def _effective_count(count: int | str | None, interval: str | None) -> int | None:
    # Memoised: a pure function of a few distinct (count, interval) pairs, asked several
    # times per measurement of every run.
    wanted = int_value(count)
    if count is None or wanted == 0:
        return None if interval else 1
    return wanted


def consecutive_error_limit(metric: Metric) -> int:
    if metric.consecutive_error_limit is None:
        return DEFAULT_CONSECUTIVE_ERROR_LIMIT
    return int_value(metric.consecutive_error_limit)


def failure_inconclusive_or_error(metric: Metric, result: MetricResult) -> tuple[Phase | None, str]:
    """The limit a metric's counters exceed, if any; the last check that matches wins."""
    phase: Phase | None = None
    message = ""
    failure_limit = int_value(metric.failure_limit)
    # failureLimit -1 switches the failure rule off.
    if failure_limit >= 0 and result.failed > failure_limit:
        phase = "Failed"
        message = f"failed ({result.failed}) > failureLimit ({failure_limit})"
    inconclusive_limit = int_value(metric.inconclusive_limit)
    if result.inconclusive > inconclusive_limit:
        phase = "Inconclusive"
        message = f"inconclusive ({result.inconclusive}) > inconclusiveLimit ({inconclusive_limit})"
    error_limit = consecutive_error_limit(metric)
    if result.consecutive_error > error_limit:
        phase = "Error"
        message = (
            f"consecutiveErrors ({result.consecutive_error}) "
            f"> consecutiveErrorLimit ({error_limit})"
        )
    return phase, message


def assess_metric(metric: Metric, result: MetricResult, terminating: bool) -> Phase:
    """assessMetricStatus: the phase of one metric given its counters and measurements."""
    if result.phase in COMPLETED_PHASES:  # completed(), inlined: per measurement
        return result.phase
    if not result.measurements:
        # Told to stop before the first measurement: nothing went wrong.
        return "Successful" if terminating else "Pending"
    if result.measurements[-1].phase not in COMPLETED_PHASES:
        return "Running"
    limit_phase, _ = failure_inconclusive_or_error(metric, result)
    if limit_phase is not None:
        return limit_phase
    success_limit = int_value(metric.consecutive_success_limit)
    success_applies = success_limit > 0
    if success_applies and result.consecutive_success >= success_limit:
        return "Successful"
    count = effective_count(metric)
    if count is not None and result.count >= count:
        # failureLimit -1 disables the failure rule; then only the streak can pass.
        failure_applies = metric.failure_limit is None or int_value(metric.failure_limit) >= 0
        if success_applies and failure_applies:
            return "Inconclusive"
        if success_applies:
            return "Failed"
        return "Successful"
    # An indefinite metric ends successfully when the run is told to stop.
    return "Successful" if terminating else "Running"


def apply_counters(result: MetricResult, phase: str) -> None:
    """runMeasurements' counter switch for one completed measurement."""
    # The model's fields written in its __dict__, where pydantic keeps them: these are
    # plain ints (nothing to validate) and its __setattr__ costs more than the update,
    # four times per measurement of every run.
    fields = result.__dict__
    if phase == "Successful":
        fields["successful"] += 1
        fields["count"] += 1
        fields["consecutive_error"] = 0
        fields["consecutive_success"] += 1
    elif phase in ("Failed", "Inconclusive"):
        if phase == "Failed":
            fields["failed"] += 1
        else:
            fields["inconclusive"] += 1
        fields["count"] += 1
        fields["consecutive_error"] = 0
        fields["consecutive_success"] = 0
    elif phase == "Error":
        fields["error"] += 1
        fields["consecutive_error"] += 1
        fields["consecutive_success"] = 0


def is_terminating(terminate: bool, results: Iterable[MetricResult]) -> bool:
    """Told to stop, or a wet (non dry-run) metric already Failed, Errored or was Inconclusive."""
    if terminate:
        return True
    # A loop, not any(genexpr): this runs several times per measurement of every run.
    for result in results:  # noqa: SIM110
        if result.phase in _FAILING_PHASES and not result.dry_run:
            return True
    return False


@dataclass(frozen=True, slots=True)
class RunAssessment:
    phase: Phase
    message: str


def assess_run(
    status: AnalysisRunStatus,
    metrics: Sequence[Metric],
    dry_run: frozenset[str] | set[str],
    terminate: bool,
    now: datetime,
    terminating: bool | None = None,
) -> RunAssessment:
    """assessRunStatus: update metric phases/messages and summaries; return the run phase.

    Like Argo, `terminating` is decided from the status as it was when the pass began,
    so a metric that turns Failed in this pass stops its siblings on the next pass.
    """
    if terminating is None:  # the caller may know it already (is_terminating)
        terminating = is_terminating(terminate, status.metric_results)
    if status.started_at is None:
        status.started_at = now
    worst: Phase | None = None
    worst_message = RUN_TERMINATED_MESSAGE if terminate else ""
    everything_completed = True
    # [count, successful, failed, inconclusive, error] for wet and dry-run metrics;
    # plain lists because this runs after every measurement of every run.
    summary = [0, 0, 0, 0, 0]
    dry_summary = [0, 0, 0, 0, 0]
    results = {r.name: r for r in status.metric_results}
    for metric in metrics:
        is_dry = metric.name in dry_run
        target = dry_summary if is_dry else summary
        target[0] += 1
        result = results.get(metric.name)
        if result is None:
            # Not started yet (initialDelay): the run cannot be complete.
            everything_completed = False
            continue
        metric_phase = assess_metric(metric, result, terminating)
        if result.phase != metric_phase:
            if result.measurements:
                result.message = result.measurements[-1].message
            result.phase = metric_phase
        if metric_phase not in COMPLETED_PHASES:
            everything_completed = False
            continue
        limit_phase, limit_message = failure_inconclusive_or_error(metric, result)
        if not is_dry:
            if worst is None or is_worse(worst, metric_phase):
                worst = metric_phase
                if limit_message:
                    worst_message = (
                        f'Metric "{metric.name}" assessed {metric_phase} due to {limit_message}'
                    )
                    if result.message:
                        worst_message += f': "Error Message: {result.message}"'
        else:
            if worst is None:
                worst = "Successful"
            if limit_message:
                result.message = f"Metric assessed {metric_phase} due to {limit_message}"
        target[_SUMMARY_SLOT.get(limit_phase, 1)] += 1
    _store_summary(status, summary, dry_summary)
    worst_message = worst_message.strip()
    if terminating:
        return RunAssessment(worst or "Successful", worst_message)
    if not everything_completed or worst is None:
        return RunAssessment("Running", "")
    return RunAssessment(worst, worst_message)


# Argo summarises by the limit that was exceeded; anything else counts as successful.
_SUMMARY_SLOT: dict[str | None, int] = {"Failed": 2, "Inconclusive": 3, "Error": 4}


_SUMMARY_FIELDS = ("count", "successful", "failed", "inconclusive", "error")


def _store_summary(status: AnalysisRunStatus, wet: list[int], dry: list[int]) -> None:
    # Updated in place (plain ints in the model's __dict__, where pydantic keeps them):
    # the summary changes with nearly every measurement of every run.
    if _values(status.run_summary) != wet:
        status.run_summary.__dict__.update(zip(_SUMMARY_FIELDS, wet, strict=True))
    if status.dry_run_summary is None:
        status.dry_run_summary = _summary(dry)
    elif _values(status.dry_run_summary) != dry:
        status.dry_run_summary.__dict__.update(zip(_SUMMARY_FIELDS, dry, strict=True))


def _values(s: RunSummary) -> list[int]:
    return [s.count, s.successful, s.failed, s.inconclusive, s.error]


def _summary(values: list[int]) -> RunSummary:
    count, successful, failed, inconclusive, error = values
    return RunSummary(
        count=count,
        successful=successful,
        failed=failed,
        inconclusive=inconclusive,
        error=error,
    )


def history_limit(
    retention: Mapping[str, int],
    metric: str,
    default_limit: int = DEFAULT_MEASUREMENT_HISTORY_LIMIT,
) -> int:
    """How many measurements of `metric` are kept: its measurementRetention when above 0,
    else Argo's DefaultMeasurementHistoryLimit."""
    limit = retention.get(metric, 0)
    return limit if limit > 0 else default_limit


def trim_measurements(
    status: AnalysisRunStatus,
    retention: Mapping[str, int],
    default_limit: int = DEFAULT_MEASUREMENT_HISTORY_LIMIT,
) -> None:
    """Keep the newest N measurements of each metric; counters are never touched."""
    for result in status.metric_results:
        limit = history_limit(retention, result.name, default_limit)
        if len(result.measurements) > limit:
            del result.measurements[: len(result.measurements) - limit]


def ttl_expired(
    ttl: TTLStrategy | None,
    phase: str,
    completed_at: datetime | None,
    now: datetime,
) -> bool:
    """isAnalysisRunTtlExceeded: a completed run older than its TTL may be deleted."""
    if ttl is None or completed_at is None or not completed(phase):
        return False
    seconds: int | None = ttl.seconds_after_completion
    if phase == "Successful" and ttl.seconds_after_success is not None:
        seconds = ttl.seconds_after_success
    elif phase == "Failed" and ttl.seconds_after_failure is not None:
        seconds = ttl.seconds_after_failure
    if seconds is None:
        return False
    return now > completed_at + timedelta(seconds=seconds)
