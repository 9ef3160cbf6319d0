"""A run's lifecycle over fake time: the pure functions of engine.run, driven pass by pass.

`simulate` plays Argo's reconcile loop without sleeping: start what is due, finish
those measurements with the script's outcomes, re-assess, jump to the next wake-up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from analysisd.engine import run
from analysisd.spec import AnalysisRunStatus, Measurement, Metric, MetricResult
from tests.unit.engine_fakes import VERDICTS

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def metric(name: str = "m", **fields: object) -> Metric:
    return Metric.model_validate({"name": name, "provider": {"fake": {}}, **fields})


@dataclass
class Sim:
    status: AnalysisRunStatus
    now: datetime
    history: list[tuple[AnalysisRunStatus, datetime]] = field(default_factory=list)
    passes: int = 0


def _attempts(status: AnalysisRunStatus, name: str) -> int:
    result = run.result_for(status, name)
    return 0 if result is None else result.count + result.error


def simulate(
    metrics: list[Metric],
    script: dict[str, str],
    status: AnalysisRunStatus | None = None,
    now: datetime = T0,
    *,
    retention: dict[str, int] | None = None,
    dry_run: frozenset[str] = frozenset(),
    terminate_at_pass: int | None = None,
    max_passes: int = 500,
) -> Sim:
    sim = Sim(status or AnalysisRunStatus(), now)
    terminate = False
    while sim.passes < max_passes:
        sim.passes += 1
        terminate = terminate or sim.passes == terminate_at_pass
        tasks, _ = run.plan(metrics, sim.status, sim.now, terminate=terminate)
        for task in tasks:
            run.begin_measurement(
                sim.status, task, dry_run=task.metric.name in dry_run, now=sim.now
            )
        # A stored status may be caught with measurements in flight, as after a crash.
        sim.history.append((sim.status.model_copy(deep=True), sim.now))
        for task in tasks:
            name = task.metric.name
            outcomes = script[name]
            outcome = outcomes[min(_attempts(sim.status, name), len(outcomes) - 1)]
            phase = VERDICTS.get(outcome, "Error")
            done = Measurement.model_validate(
                {"phase": phase, "startedAt": sim.now, "finishedAt": sim.now, "value": outcome}
            )
            run.finish_measurement(sim.status, name, done)
        outcome_ = run.reassess(
            sim.status,
            metrics,
            dry_run=dry_run,
            retention=retention or {},
            terminate=terminate,
            now=sim.now,
        )
        sim.history.append((sim.status.model_copy(deep=True), sim.now))
        if outcome_.completed:
            return sim
        wake = next_reconcile_time(metrics, sim.status, sim.now, terminate)
        if wake is None:
            if tasks or terminate:
                continue
            raise AssertionError(f"run stuck at pass {sim.passes}: {sim.status}")
        sim.now = max(sim.now, wake)
    return sim


def counters(status: AnalysisRunStatus) -> dict[str, tuple[int, ...]]:
    return {
        r.name: (
            r.count,
            r.successful,
            r.failed,
            r.inconclusive,
            r.error,
            r.consecutive_error,
            r.consecutive_success,
        )
        for r in status.metric_results
    }


# ---- time semantics, no sleeping ----


def test_interval_spaces_measurements_from_the_previous_finish() -> None:
    sim = simulate([metric(interval="30s", count=3)], {"m": "S"})
    [result] = sim.status.metric_results
    starts = [m.started_at for m in result.measurements]
    assert starts == [T0, T0 + timedelta(seconds=30), T0 + timedelta(seconds=60)]
    assert sim.status.phase == "Successful"


def test_initial_delay_counts_from_run_start() -> None:
    sim = simulate([metric(initialDelay="45s")], {"m": "S"})
    assert sim.status.started_at == T0
    assert sim.status.metric_results[0].measurements[0].started_at == T0 + timedelta(seconds=45)


def test_error_is_retried_after_ten_seconds_even_with_a_long_interval() -> None:
    sim = simulate([metric(interval="5m", count=2)], {"m": "ESS"})
    starts = [m.started_at for m in sim.status.metric_results[0].measurements]
    assert starts == [T0, T0 + timedelta(seconds=10), T0 + timedelta(seconds=310)]


def test_no_count_no_interval_measures_once() -> None:
    sim = simulate([metric()], {"m": "S"})
    assert sim.status.metric_results[0].count == 1
    assert sim.status.phase == "Successful"


def test_interval_without_count_runs_until_terminated() -> None:
    sim = simulate([metric(interval="1m")], {"m": "S"}, terminate_at_pass=50)
    assert sim.status.metric_results[0].count == 49
    assert (sim.status.phase, sim.status.message) == ("Successful", "Run Terminated")


def test_next_measurement_after_resume_derives_from_last_finished_at() -> None:
    status = AnalysisRunStatus(phase="Running", startedAt=T0)
    done = Measurement.model_validate({"phase": "Successful", "startedAt": T0, "finishedAt": T0})
    status.metric_results.append(
        MetricResult.model_validate(
            {"name": "m", "phase": "Running", "count": 1, "successful": 1, "measurements": [done]}
        )
    )
    metrics = [metric(interval="1m", count=2)]
    later = T0 + timedelta(seconds=20)
    assert run.plan(metrics, status, later) == ([], T0 + timedelta(minutes=1))


def test_in_flight_stored_measurement_is_retaken_not_appended() -> None:
    status = AnalysisRunStatus(phase="Running", startedAt=T0)
    metrics = [metric(count=1)]
    [task], _ = run.plan(metrics, status, T0)
    run.begin_measurement(status, task, dry_run=False, now=T0)
    [again], _ = run.plan(metrics, status, T0 + timedelta(seconds=5))
    assert again.resume
    run.begin_measurement(status, again, dry_run=False, now=T0 + timedelta(seconds=5))
    assert len(status.metric_results[0].measurements) == 1


def test_wet_failure_stops_new_measurements_of_siblings() -> None:
    metrics = [metric("bad", interval="1m"), metric("other", interval="10s")]
    sim = simulate(metrics, {"bad": "F", "other": "S"})
    results = {r.name: r for r in sim.status.metric_results}
    assert results["other"].count == 1
    assert sim.status.phase == "Failed"


def test_dry_run_failure_does_not_decide_but_must_complete() -> None:
    metrics = [metric("dry", count=2, interval="1m"), metric("wet", count=1)]
    sim = simulate(metrics, {"dry": "F", "wet": "S"}, dry_run=frozenset({"dry"}))
    results = {r.name: r for r in sim.status.metric_results}
    assert results["dry"].phase == "Failed" and results["dry"].dry_run
    assert sim.status.phase == "Successful"
    assert sim.status.dry_run_summary is not None and sim.status.dry_run_summary.failed == 1


# ---- properties ----

OUTCOMES = st.text(alphabet="SFIEH", min_size=1, max_size=10)
LIMIT = st.one_of(st.none(), st.integers(0, 3))


@st.composite
def finite_runs(draw: st.DrawFn) -> tuple[list[Metric], dict[str, str]]:
    names = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3, unique=True))
    metrics = []
    for name in names:
        fields: dict[str, object] = {"count": draw(st.integers(1, 6)), "interval": "30s"}
        for key in ("failureLimit", "inconclusiveLimit", "consecutiveErrorLimit"):
            value = draw(LIMIT)
            if value is not None:
                fields[key] = value
        if draw(st.booleans()):
            fields["consecutiveSuccessLimit"] = draw(st.integers(1, 3))
            fields["failureLimit"] = draw(st.sampled_from([-1, 0, 2]))
        if draw(st.booleans()):
            fields["initialDelay"] = "15s"
        metrics.append(metric(name, **fields))
    script = {name: draw(OUTCOMES) for name in names}
    return metrics, script


@settings(max_examples=150, deadline=None)
@given(finite_runs())
def test_every_finite_run_reaches_a_terminal_phase_with_consistent_counters(
    case: tuple[list[Metric], dict[str, str]],
) -> None:
    metrics, script = case
    sim = simulate(metrics, script)
    assert sim.status.phase in {"Successful", "Failed", "Error", "Inconclusive"}
    assert sim.status.completed_at is not None
    for result in sim.status.metric_results:
        assert result.count == result.successful + result.failed + result.inconclusive
        taken = script[result.name][: result.count + result.error]
        padded = taken + script[result.name][-1] * (result.count + result.error - len(taken))
        phases = [VERDICTS.get(o, "Error") for o in padded]
        assert result.error == phases.count("Error")
        trailing_errors = len(phases) - len("".join(p[0] for p in phases).rstrip("E"))
        assert result.consecutive_error == trailing_errors
        assert len(result.measurements) <= 10
        assert all(m.finished_at is not None for m in result.measurements)


@settings(max_examples=100, deadline=None)
@given(finite_runs(), st.integers(1, 3))
def test_measurement_retention_never_changes_a_verdict(
    case: tuple[list[Metric], dict[str, str]], keep: int
) -> None:
    metrics, script = case
    full = simulate(metrics, script)
    trimmed = simulate(metrics, script, retention={m.name: keep for m in metrics})
    assert trimmed.status.phase == full.status.phase
    assert trimmed.status.message == full.status.message
    assert counters(trimmed.status) == counters(full.status)
    assert all(len(r.measurements) <= keep for r in trimmed.status.metric_results)


@settings(max_examples=100, deadline=None)
@given(finite_runs(), st.data())
def test_resuming_from_any_stored_status_gives_the_same_outcome(
    case: tuple[list[Metric], dict[str, str]], data: st.DataObject
) -> None:
    metrics, script = case
    full = simulate(metrics, script)
    index = data.draw(st.integers(0, len(full.history) - 1))
    stored, at = full.history[index]
    resumed = simulate(metrics, script, stored.model_copy(deep=True), at)
    assert resumed.status.phase == full.status.phase
    assert resumed.status.message == full.status.message
    assert counters(resumed.status) == counters(full.status)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="SFIEH", min_size=1, max_size=8), st.integers(1, 30))
def test_terminating_an_indefinite_metric_always_completes(script: str, when: int) -> None:
    sim = simulate([metric(interval="1m", failureLimit=-1)], {"m": script}, terminate_at_pass=when)
    assert sim.status.phase in {"Successful", "Error", "Inconclusive"}
    assert sim.passes <= when + 1


def _duration(text: str) -> timedelta | None:
    from analysisd.durations import DurationError, parse_duration

    try:
        return parse_duration(text)
    except DurationError:
        return None


def next_reconcile_time(
    metrics: list[Metric],
    status: AnalysisRunStatus,
    now: datetime,
    terminate: bool,
    in_flight: set[str] | frozenset[str] = frozenset(),
) -> datetime | None:
    """Argo's calculateNextReconcileTime, written plainly (metrics in flight here and,
    once terminating, metrics with nothing unfinished are left out): run.plan's oracle.
    """
    from analysisd.engine import assess

    if assess.completed(status.phase):
        return None
    terminating = assess.is_terminating(terminate, status.metric_results)
    earliest: datetime | None = None
    for m in metrics:
        if m.name in in_flight:
            continue
        result = run.result_for(status, m.name)
        if result is not None and assess.completed(result.phase):
            continue
        last = result.measurements[-1] if result is not None and result.measurements else None
        if terminating and (last is None or last.finished_at is not None):
            continue
        candidate: datetime | None = None
        if last is None:
            delay = _duration(m.initial_delay) if m.initial_delay else None
            if delay is not None:
                candidate = (status.started_at or now) + delay
        elif last.finished_at is None:
            candidate = last.resume_at
        else:
            count = assess.effective_count(m)
            if result is not None and count is not None and result.count >= count:
                continue
            if last.phase == "Error" or not m.interval:
                interval: timedelta | None = run.ERROR_RETRY_INTERVAL
            else:
                interval = _duration(m.interval)
            if interval is not None:
                candidate = last.finished_at + interval
        if candidate is not None and (earliest is None or candidate < earliest):
            earliest = candidate
    return earliest


def generate_metric_tasks(
    metrics: list[Metric],
    status: AnalysisRunStatus,
    now: datetime,
    terminate: bool,
    in_flight: set[str],
) -> list[run.MetricTask]:
    """Argo's generateMetricTasks, written plainly: the oracle for run.plan's one pass."""
    from analysisd.engine import assess

    terminating = assess.is_terminating(terminate, status.metric_results)
    tasks: list[run.MetricTask] = []
    for m in metrics:
        result = run.result_for(status, m.name)
        if m.name in in_flight or (result is not None and assess.completed(result.phase)):
            continue
        last = result.measurements[-1] if result is not None and result.measurements else None
        if last is not None and last.finished_at is None:  # stored in flight: take it again
            if last.resume_at is None or last.resume_at <= now:
                tasks.append(run.MetricTask(m, resume=True))
            continue
        if terminating:
            continue
        if last is None and not m.initial_delay:
            tasks.append(run.MetricTask(m))
            continue
        due = run.metric_next_due(m, status)
        if due is not None and now >= due:
            tasks.append(run.MetricTask(m))
    return tasks


@settings(max_examples=150, deadline=None)
@given(finite_runs(), st.data())
def test_plan_answers_as_generate_metric_tasks_then_next_reconcile_time(
    case: tuple[list[Metric], dict[str, str]], data: st.DataObject
) -> None:
    # Every status a run passes through (in flight ones included), at its own time and
    # later, terminating or not, with some metrics in flight here.
    metrics, script = case
    sim = simulate(metrics, script)
    names = [m.name for m in metrics]
    for stored, at in sim.history:
        now = at + data.draw(
            st.sampled_from([timedelta(0), timedelta(seconds=7), timedelta(hours=1)])
        )
        terminate = data.draw(st.booleans())
        in_flight = set(data.draw(st.lists(st.sampled_from(names), max_size=len(names))))
        stored = stored.model_copy(deep=True)
        for result in stored.metric_results:
            last = result.measurements[-1] if result.measurements else None
            if last is not None and last.finished_at is None:
                # A measurement that asked to be resumed later (Argo's resumeAt), or now.
                offset = data.draw(st.sampled_from([None, -5, 0, 5]))
                if offset is not None:
                    last.resume_at = now + timedelta(seconds=offset)
        tasks, wake = run.plan(metrics, stored, now, terminate=terminate, in_flight=in_flight)
        expected = generate_metric_tasks(metrics, stored, now, terminate, in_flight)
        assert tasks == expected
        busy = in_flight | {t.metric.name for t in expected}
        assert wake == next_reconcile_time(metrics, stored, now, terminate, busy)
