"""The real Scheduler against a plain, sequential model of Argo's analysis controller.

Hypothesis draws runs of one to three scripted Web metrics (count, interval, the four
limits, dry-run, each a script of Successful / Failed / Inconclusive / Error readings,
the last one repeating), several runs at once in one real `Scheduler`, answers that
come back after a random number of loop turns, an observer that takes a few turns
per change, and `terminate()` calls after the k-th recorded measurement. Nothing in
the scheduler is stubbed: runs pass the door (`admission_problems`), are prepared
with the real `prepare_run` and measured through `engine.dispatch`.

The model is written here from Argo Rollouts' controller, not from analysisd's code
(argoproj/argo-rollouts analysis/analysis.go and utils/analysis/helpers.go, master;
the master-only consecutiveSuccessLimit rules from its tests
TestAssessMetricStatusConsecutiveSuccessLimit and
TestAssessMetricStatusFailureLimitAndConsecutiveSuccessLimit, as encoded in
../shared/vectors/argo-assess.json). Each metric, alone, measures its script in
order until assessMetricStatus says it is complete ("solo"). Running beside
siblings, a metric may be stopped early: once a wet metric completes Failed, Error
or Inconclusive, or the run is terminated, no new measurement starts (IsTerminating
and generateMetricTasks), so how far a sibling got depends on timing. What must hold
whatever the timing:

- each metric's measurements are a prefix of its solo sequence, and all of it when
  nothing stopped the run; nothing new started after the run began terminating;
- its counters, phase and message are Argo's for exactly those measurements
  (a metric stopped before completing is Successful: assessMetricStatus when
  terminating);
- the run's phase, message and summaries are assessRunStatus over those metrics;
  and from the solo sequences alone: the same phase when nothing stops the run,
  Successful when only terminate() does, otherwise one of the wet metrics' own
  failing phases.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from analysisd.admission import admission_problems, errors
from analysisd.engine.measure import NoSecrets
from analysisd.engine.observer import RunChange
from analysisd.engine.scheduler import Scheduler
from analysisd.spec import AnalysisRun, Measurement, MetricResult
from providers.base import Reading
from tests.unit.engine_fakes import ScriptedSource, make_run

NAMESPACE = "ns"
INTERVAL = timedelta(milliseconds=1)
PHASE_OF = {"S": "Successful", "F": "Failed", "I": "Inconclusive", "E": "Error"}
COMPLETED = frozenset({"Successful", "Failed", "Error", "Inconclusive"})
FAILING = frozenset({"Failed", "Error", "Inconclusive"})
# Argo's analysisStatusOrder (utils/analysis/helpers.go): later is worse.
ORDER = ("Pending", "Running", "Successful", "Inconclusive", "Error", "Failed")
DEFAULT_CONSECUTIVE_ERROR_LIMIT = 4  # analysis.go / utils/defaults
SOLO_LIMIT = 200  # a metric still running after this many measurements runs until stopped
WAIT_S = 30.0  # a run that has not completed by then is stuck (a bug), not slow


# ---- what a run is made of ----


@dataclass(frozen=True)
class MetricCase:
    name: str
    script: str
    count: int | None = None
    interval: bool = False
    failure_limit: int | None = None
    inconclusive_limit: int | None = None
    consecutive_error_limit: int | None = None
    consecutive_success_limit: int | None = None
    dry_run: bool = False

    def fields(self) -> dict[str, Any]:
        """The metric's YAML fields (those left unset are absent, as in a template)."""
        values: dict[str, Any] = {
            "count": self.count,
            "interval": "1ms" if self.interval else None,
            "failureLimit": self.failure_limit,
            "inconclusiveLimit": self.inconclusive_limit,
            "consecutiveErrorLimit": self.consecutive_error_limit,
            "consecutiveSuccessLimit": self.consecutive_success_limit,
        }
        return {key: value for key, value in values.items() if value is not None}

    def outcome(self, attempt: int) -> str:
        """The scripted answer to the attempt-th measurement (the last one repeats)."""
        return PHASE_OF[self.script[min(attempt, len(self.script) - 1)]]


@dataclass(frozen=True)
class RunCase:
    name: str
    metrics: tuple[MetricCase, ...]
    terminate_after: int | None  # terminate() once this many measurements are recorded
    terminate_inline: bool  # from inside the observer's on_change, or from a task
    terminate_turns: int  # that task's loop turns before it calls terminate()

    def analysis_run(self) -> AnalysisRun:
        dry = [{"metricName": m.name} for m in self.metrics if m.dry_run]
        spec: dict[str, Any] = {"dryRun": dry} if dry else {}
        return make_run(
            {m.name: m.fields() for m in self.metrics},
            name=self.name,
            namespace=NAMESPACE,
            **spec,
        )


@dataclass(frozen=True)
class Case:
    runs: tuple[RunCase, ...]
    seed: int
    max_concurrency: int
    observer_turns: int


# ---- the model: Argo's rules, one metric at a time ----


@dataclass(frozen=True)
class Counters:
    count: int = 0
    successful: int = 0
    failed: int = 0
    inconclusive: int = 0
    error: int = 0
    consecutive_error: int = 0
    consecutive_success: int = 0


def counted(c: Counters, phase: str) -> Counters:
    """runMeasurements' switch: errors do not count, and every non-success ends a streak."""
    if phase == "Successful":
        return replace(
            c,
            successful=c.successful + 1,
            count=c.count + 1,
            consecutive_error=0,
            consecutive_success=c.consecutive_success + 1,
        )
    if phase == "Failed":
        return replace(
            c, failed=c.failed + 1, count=c.count + 1, consecutive_error=0, consecutive_success=0
        )
    if phase == "Inconclusive":
        return replace(
            c,
            inconclusive=c.inconclusive + 1,
            count=c.count + 1,
            consecutive_error=0,
            consecutive_success=0,
        )
    assert phase == "Error", phase
    return replace(
        c, error=c.error + 1, consecutive_error=c.consecutive_error + 1, consecutive_success=0
    )


def limit_exceeded(m: MetricCase, c: Counters) -> tuple[str | None, str]:
    """assessMetricFailureInconclusiveOrError: checked in this order, the last match wins."""
    phase: str | None = None
    message = ""
    failure_limit = 0 if m.failure_limit is None else m.failure_limit
    if failure_limit >= 0 and c.failed > failure_limit:  # -1 switches the rule off
        phase, message = "Failed", f"failed ({c.failed}) > failureLimit ({failure_limit})"
    inconclusive_limit = m.inconclusive_limit or 0
    if c.inconclusive > inconclusive_limit:
        phase = "Inconclusive"
        message = f"inconclusive ({c.inconclusive}) > inconclusiveLimit ({inconclusive_limit})"
    error_limit = m.consecutive_error_limit
    if error_limit is None:
        error_limit = DEFAULT_CONSECUTIVE_ERROR_LIMIT
    if c.consecutive_error > error_limit:
        phase = "Error"
        message = (
            f"consecutiveErrors ({c.consecutive_error}) > consecutiveErrorLimit ({error_limit})"
        )
    return phase, message


def effective_count(m: MetricCase) -> int | None:
    """Metric.EffectiveCount: count; unset or 0 is once without an interval, else unbounded."""
    if not m.count:
        return None if m.interval else 1
    return m.count


def metric_phase(m: MetricCase, c: Counters, measured: int, terminating: bool) -> str:
    """assessMetricStatus for a metric with `measured` completed measurements."""
    if measured == 0:
        return "Successful" if terminating else "Pending"
    limit_phase, _ = limit_exceeded(m, c)
    if limit_phase is not None:
        return limit_phase
    streak = m.consecutive_success_limit or 0
    if streak > 0 and c.consecutive_success >= streak:
        return "Successful"
    wanted = effective_count(m)
    if wanted is not None and c.count >= wanted:
        if streak > 0:
            # The streak was wanted and not reached: Inconclusive while the failure
            # limit applies, Failed when only the streak could have passed it.
            failure_applies = m.failure_limit is None or m.failure_limit >= 0
            return "Inconclusive" if failure_applies else "Failed"
        return "Successful"
    return "Successful" if terminating else "Running"


@dataclass(frozen=True)
class Solo:
    """A metric measured alone: its measurements until it completes, and its phase
    (None: it never completes by itself and runs until the run stops)."""

    phases: tuple[str, ...]
    phase: str | None


def solo(m: MetricCase) -> Solo:
    c = Counters()
    phases: list[str] = []
    for attempt in range(SOLO_LIMIT):
        phase = m.outcome(attempt)
        c = counted(c, phase)
        phases.append(phase)
        verdict = metric_phase(m, c, len(phases), terminating=False)
        if verdict != "Running":
            return Solo(tuple(phases), verdict)
    return Solo(tuple(phases), None)


def replay(phases: Sequence[str]) -> Counters:
    c = Counters()
    for phase in phases:
        c = counted(c, phase)
    return c


@dataclass(frozen=True)
class MetricVerdict:
    name: str
    phase: str
    counters: Counters
    message: str  # the metric's message (its last measurement's, or the dry-run note)
    limit_phase: str | None
    limit_message: str
    dry_run: bool


def metric_verdict(
    m: MetricCase, phases: Sequence[str], last_message: str, terminating: bool
) -> MetricVerdict:
    """The metric after exactly these measurements; `terminating` when the run stopped."""
    c = replay(phases)
    phase = metric_phase(m, c, len(phases), terminating)
    limit_phase, limit_message = limit_exceeded(m, c)
    message = last_message
    if m.dry_run and limit_message:
        message = f"Metric assessed {phase} due to {limit_message}"
    return MetricVerdict(m.name, phase, c, message, limit_phase, limit_message, m.dry_run)


def worse(current: str, new: str) -> bool:
    return ORDER.index(new) > ORDER.index(current)


def run_verdict(
    verdicts: Sequence[MetricVerdict], terminate: bool
) -> tuple[str, str, list[int], list[int]]:
    """assessRunStatus once every metric completed: (phase, message, runSummary,
    dryRunSummary), summaries as [count, successful, failed, inconclusive, error]."""
    worst: str | None = None
    message = "Run Terminated" if terminate else ""
    wet = [0, 0, 0, 0, 0]
    dry = [0, 0, 0, 0, 0]
    slot = {"Failed": 2, "Inconclusive": 3, "Error": 4}
    for v in verdicts:
        assert v.phase in COMPLETED, v
        summary = dry if v.dry_run else wet
        summary[0] += 1
        summary[slot.get(v.limit_phase or "", 1)] += 1
        if v.dry_run:
            worst = worst or "Successful"
        elif worst is None or worse(worst, v.phase):
            worst = v.phase
            if v.limit_message:
                message = f'Metric "{v.name}" assessed {v.phase} due to {v.limit_message}'
                if v.message:
                    message += f': "Error Message: {v.message}"'
    return worst or "Successful", message.strip(), wet, dry


# ---- drawing runs the door admits ----

# Mostly successes, so that runs last a few measurements before a limit ends them.
SCRIPTS = st.lists(st.sampled_from("SSSSFFIE"), min_size=1, max_size=8).map("".join)


@st.composite
def metric_cases(draw: st.DrawFn, name: str) -> MetricCase:
    count = draw(st.sampled_from([None, 0, 1, 2, 3, 4, 5, 6]))
    # Argo's ValidateMetric: an interval whenever count > 1; without count or
    # interval a metric measures once, with an interval and no count until stopped.
    interval = True if count is not None and count > 1 else draw(st.booleans())
    bound = count if count else 3
    streak = draw(st.one_of(st.none(), st.integers(0, min(3, bound))))
    # count >= failureLimit + consecutiveSuccessLimit when both >= 0; failureLimit -1
    # (disabled) only beside a success streak, and then count >= the streak.
    failure_choices: list[int | None] = [None, *range(0, min(3, bound - (streak or 0)) + 1)]
    if streak:
        failure_choices.append(-1)
    failure = draw(st.sampled_from(failure_choices))
    inconclusive = draw(st.one_of(st.none(), st.integers(0, min(3, bound))))
    errors_ = draw(st.one_of(st.none(), st.integers(0, 4)))
    return MetricCase(
        name=name,
        script=draw(SCRIPTS),
        count=count,
        interval=interval,
        failure_limit=failure,
        inconclusive_limit=inconclusive,
        consecutive_error_limit=errors_,
        consecutive_success_limit=streak,
        dry_run=draw(st.integers(0, 4)) == 0,
    )


def stops_by_itself(metrics: Sequence[MetricCase]) -> bool:
    """Every metric completes alone, or a wet one fails and so stops the rest."""
    solos = [solo(m) for m in metrics]
    if all(s.phase is not None for s in solos):
        return True
    return any(s.phase in FAILING for m, s in zip(metrics, solos, strict=True) if not m.dry_run)


@st.composite
def run_cases(draw: st.DrawFn, index: int) -> RunCase:
    name = f"r{index}"
    size = draw(st.integers(1, 3))
    metrics = tuple(draw(metric_cases(f"{name}m{j}")) for j in range(size))
    terminate_after: int | None
    if stops_by_itself(metrics):
        terminate_after = draw(st.one_of(st.none(), st.integers(1, 8)))
    else:
        terminate_after = draw(st.integers(1, 8))  # it would never end otherwise
    return RunCase(
        name=name,
        metrics=metrics,
        terminate_after=terminate_after,
        terminate_inline=draw(st.booleans()),
        terminate_turns=draw(st.integers(0, 5)),
    )


@st.composite
def cases(draw: st.DrawFn) -> Case:
    runs = tuple(draw(run_cases(i)) for i in range(draw(st.integers(1, 2))))
    return Case(
        runs=runs,
        seed=draw(st.integers(0, 2**32 - 1)),
        max_concurrency=draw(st.sampled_from([1, 2, 1000])),
        observer_turns=draw(st.integers(0, 3)),
    )


# ---- the harness: real scheduler, jittery source, observing observer ----


class JitterSource(ScriptedSource):
    """Answers after a random number of loop turns, so siblings finish in any order."""

    def __init__(self, script: Mapping[str, str], seed: int) -> None:
        super().__init__(script)
        self.random = random.Random(seed)

    async def measure(self, kind: str, config: Mapping[str, Any]) -> Reading:
        for _ in range(self.random.randrange(0, 7)):
            await asyncio.sleep(0)
        return await super().measure(kind, config)


@dataclass
class StopPoint:
    """The run as it was when it began to stop: per metric, measurements taken
    (count + error) and whether one was in flight (begun, not yet recorded)."""

    taken: dict[str, int]
    in_flight: dict[str, bool]


def stop_point(run: AnalysisRun) -> StopPoint:
    assert run.status is not None
    taken: dict[str, int] = {}
    in_flight: dict[str, bool] = {}
    for result in run.status.metric_results:
        taken[result.name] = result.count + result.error
        last = result.measurements[-1] if result.measurements else None
        in_flight[result.name] = last is not None and last.finished_at is None
    return StopPoint(taken, in_flight)


@dataclass
class RunLog:
    case: RunCase
    streams: dict[str, list[Measurement]] = field(default_factory=dict)
    recorded: int = 0
    failed_at: StopPoint | None = None  # first change with a wet metric failing
    terminated_at: StopPoint | None = None  # when terminate() took effect
    terminate_calls: int = 0


class ModelObserver:
    """Keeps every recorded measurement, notes when each run began to stop, and
    terminates runs as the case says."""

    def __init__(self, case: Case) -> None:
        self.case = case
        self.logs = {run.name: RunLog(run) for run in case.runs}
        self.scheduler: Scheduler | None = None
        self.tasks: list[asyncio.Task[None]] = []

    async def on_change(self, run: AnalysisRun, change: RunChange) -> None:
        log = self.logs[run.metadata.name]
        for news in change.measurements:
            log.streams.setdefault(news.metric, []).append(news.measurement)
            log.recorded += 1
        assert run.status is not None
        if log.failed_at is None and any(
            r.phase in FAILING and not r.dry_run for r in run.status.metric_results
        ):
            log.failed_at = stop_point(run)
        wanted = log.case.terminate_after
        if wanted is not None and log.recorded >= wanted and log.terminate_calls == 0:
            log.terminate_calls = 1
            if log.case.terminate_inline:
                self.terminate(run)
            else:
                task = asyncio.get_running_loop().create_task(self.terminate_later(run))
                self.tasks.append(task)
        for _ in range(self.case.observer_turns):
            await asyncio.sleep(0)

    async def terminate_later(self, run: AnalysisRun) -> None:
        for _ in range(self.logs[run.metadata.name].case.terminate_turns):
            await asyncio.sleep(0)
        self.terminate(run)

    def terminate(self, run: AnalysisRun) -> None:
        assert self.scheduler is not None and run.status is not None
        point = stop_point(run)
        already_done = run.status.phase in COMPLETED
        if self.scheduler.terminate(NAMESPACE, run.metadata.name) and not already_done:
            # Accepted while the run was still deciding: it must stop here. (Called
            # while the completing change is being recorded, terminate() answers True
            # too, but the run keeps the verdict it already has, as Argo would.)
            self.logs[run.metadata.name].terminated_at = point


def monotonic_clock() -> datetime:
    # The scheduler's clock, from the monotonic clock its timers use: spacing checks
    # below hold exactly, whatever the wall clock does meanwhile.
    return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=time.monotonic())


@dataclass
class Outcome:
    finals: dict[str, AnalysisRun]
    logs: dict[str, RunLog]
    attempts: dict[str, int]


async def drive(case: Case) -> Outcome:
    script = {m.name: m.script for run in case.runs for m in run.metrics}
    source = JitterSource(script, case.seed)
    observer = ModelObserver(case)
    finals: dict[str, AnalysisRun] = {}
    async with Scheduler(
        source,
        observer,
        clock=monotonic_clock,
        max_concurrency=case.max_concurrency,
        measurement_timeout=60.0,  # never reached: a timeout would be an unscripted Error
        error_retry=INTERVAL,
    ) as scheduler:
        observer.scheduler = scheduler
        for run in case.runs:
            scheduler.submit(run.analysis_run())
        for run in case.runs:
            waited = scheduler.wait(NAMESPACE, run.name)
            finals[run.name] = await asyncio.wait_for(waited, WAIT_S)
        if observer.tasks:
            await asyncio.gather(*observer.tasks)
    return Outcome(finals, observer.logs, dict(source.attempts))


# ---- the comparison ----


def check_run(outcome: Outcome, run: RunCase) -> None:
    final = outcome.finals[run.name]
    log = outcome.logs[run.name]
    status = final.status
    assert status is not None
    where = f"{run.name}: {status.phase} {status.message!r}"
    assert status.phase in COMPLETED, where
    assert status.completed_at is not None, where
    terminated = log.terminated_at is not None
    results: dict[str, MetricResult] = {r.name: r for r in status.metric_results}
    assert set(results) == {m.name for m in run.metrics}, where
    solos = {m.name: solo(m) for m in run.metrics}

    # Each metric: a prefix of what it measures alone, taken in order, spaced, counted
    # and assessed as Argo would.
    verdicts: list[MetricVerdict] = []
    reached: dict[str, bool] = {}
    for m in run.metrics:
        stream = log.streams.get(m.name, [])
        phases = [x.phase for x in stream]
        alone = solos[m.name]
        at = f"{where}: metric {m.name} {m} measured {phases}, alone {alone}"
        assert len(phases) < SOLO_LIMIT, at
        assert tuple(phases) == alone.phases[: len(phases)], at
        reached[m.name] = alone.phase is not None and len(phases) == len(alone.phases)
        taken = outcome.attempts.get(m.name, 0)
        # A measurement cancelled by terminate() asked the provider and was dropped.
        assert taken - len(phases) in ((0, 1) if terminated else (0,)), (at, taken)
        for previous, following in itertools.pairwise(stream):
            assert previous.finished_at is not None and following.started_at is not None
            assert following.started_at >= previous.finished_at + INTERVAL, at
        last_message = stream[-1].message if stream else ""
        verdict = metric_verdict(m, phases, last_message, terminating=not reached[m.name])
        if reached[m.name]:
            assert verdict.phase == alone.phase, at
        else:
            assert verdict.phase == "Successful", at  # stopped before it completed
        verdicts.append(verdict)
        result = results[m.name]
        c = verdict.counters
        actual = Counters(
            result.count,
            result.successful,
            result.failed,
            result.inconclusive,
            result.error,
            result.consecutive_error,
            result.consecutive_success,
        )
        assert actual == c, at
        assert (result.phase, result.message, result.dry_run) == (
            verdict.phase,
            verdict.message,
            m.dry_run,
        ), at
        kept = [x.phase for x in result.measurements]
        assert kept == phases[-10:], at  # the newest 10, all finished
        assert all(x.finished_at is not None for x in result.measurements), at

    # Stopping: a metric stops short only when the run stopped, and nothing new
    # starts once it has begun to stop.
    failing_wet = [v for v in verdicts if v.phase in FAILING and not v.dry_run]
    if not all(reached.values()):
        assert terminated or failing_wet, (where, reached)
    for point in (log.failed_at, log.terminated_at):
        if point is None:
            continue
        for m in run.metrics:
            most = point.taken.get(m.name, 0) + point.in_flight.get(m.name, False)
            assert len(log.streams.get(m.name, [])) <= most, (where, m.name, point)
    if failing_wet:
        assert log.failed_at is not None, where

    event(f"run {status.phase}; terminated={terminated}; cut short={not all(reached.values())}")
    event(f"measurements per run ~{sum(len(x) for x in log.streams.values()) // 5 * 5}")
    # The run: assessRunStatus over its metrics as they ended.
    phase, message, wet, dry = run_verdict(verdicts, terminated)
    assert (status.phase, status.message) == (phase, message), (where, verdicts)
    summary = status.run_summary
    assert [summary.count, summary.successful, summary.failed, summary.inconclusive,
            summary.error] == wet, where  # fmt: skip
    dry_summary = status.dry_run_summary
    assert dry_summary is not None
    assert [dry_summary.count, dry_summary.successful, dry_summary.failed,
            dry_summary.inconclusive, dry_summary.error] == dry, where  # fmt: skip

    # And from the solo sequences alone, whatever the timing.
    wet_solo_failing = {
        solos[m.name].phase for m in run.metrics if not m.dry_run and solos[m.name].phase in FAILING
    }
    if not terminated and not wet_solo_failing:
        # Nothing stops the run early: every metric measures all it would alone.
        assert all(reached.values()), where
        expected = [
            metric_verdict(m, solos[m.name].phases, "", terminating=False) for m in run.metrics
        ]
        assert phase == run_verdict(expected, terminate=False)[0], where
    elif not wet_solo_failing:
        assert status.phase == "Successful", where  # terminated, nothing failed
    elif not terminated:
        assert status.phase in wet_solo_failing, where  # a wet failure stopped it
    else:
        assert status.phase in wet_solo_failing | {"Successful"}, where


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(cases())
def test_every_run_ends_as_a_sequential_model_of_argos_controller_says(case: Case) -> None:
    for run in case.runs:
        assert not errors(admission_problems(run.analysis_run().spec, None, NoSecrets())), run
    outcome = asyncio.run(drive(case))
    for run in case.runs:
        check_run(outcome, run)
