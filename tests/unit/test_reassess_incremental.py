"""lifecycle.reassess told which metrics changed gives exactly what a full pass gives.

The scheduler records a run's measurements one (or a few) at a time, between which
siblings start, and passes their names as `changed`; reassess then revisits only
those metrics when that cannot change the run. Driven here the way the scheduler
drives it (random subsets of the in-flight measurements finishing, siblings started
in between, terminations, dry-run metrics, retention), every step is compared with a
full pass on a copy: the outcome and the whole status must be equal.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from analysisd.engine import run
from analysisd.spec import AnalysisRunStatus, Measurement, Metric
from tests.unit.engine_fakes import VERDICTS

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LIMIT = st.one_of(st.none(), st.integers(-1, 3))


def metric(name: str, **fields: object) -> Metric:
    return Metric.model_validate({"name": name, "provider": {"fake": {}}, **fields})


@st.composite
def runs(draw: st.DrawFn) -> tuple[list[Metric], dict[str, str], frozenset[str], dict[str, int]]:
    names = draw(st.lists(st.sampled_from("abcdefghij"), min_size=1, max_size=10, unique=True))
    metrics = []
    for name in names:
        fields: dict[str, object] = {"interval": draw(st.sampled_from(["5s", "30s"]))}
        if draw(st.integers(0, 4)):  # mostly counted; sometimes indefinite
            fields["count"] = draw(st.integers(1, 6))
        for key in ("failureLimit", "inconclusiveLimit", "consecutiveErrorLimit"):
            value = draw(LIMIT)
            if value is not None:
                fields[key] = value
        if draw(st.booleans()):
            fields["consecutiveSuccessLimit"] = draw(st.integers(1, 3))
        if draw(st.booleans()):
            fields["initialDelay"] = draw(st.sampled_from(["3s", "15s"]))
        metrics.append(metric(name, **fields))
    script = {name: draw(st.text(alphabet="SFIE", min_size=1, max_size=12)) for name in names}
    dry_run = frozenset(draw(st.sets(st.sampled_from(names))))
    retention = {name: draw(st.integers(0, 3)) for name in draw(st.sets(st.sampled_from(names)))}
    return metrics, script, dry_run, retention


@settings(max_examples=300, deadline=None)
@given(runs(), st.data())
def test_reassessing_the_changed_metrics_equals_a_full_pass(
    case: tuple[list[Metric], dict[str, str], frozenset[str], dict[str, int]],
    data: st.DataObject,
) -> None:
    metrics, script, dry_run, retention = case
    status = AnalysisRunStatus()
    now = T0
    taken = dict.fromkeys(script, 0)
    in_flight: set[str] = set()
    terminate = False
    # The scheduler's first pass over a run is always a full one.
    run.reassess(status, metrics, dry_run=dry_run, retention=retention, terminate=False, now=now)
    fast_paths = 0
    for _ in range(150):
        tasks, wake = run.plan(metrics, status, now, terminate=terminate, in_flight=in_flight)
        for task in tasks:
            name = task.metric.name
            run.begin_measurement(status, task, dry_run=name in dry_run, now=now)
            in_flight.add(name)
        if not in_flight:
            if wake is None:
                break
            now = max(now, wake)
            continue
        done = data.draw(st.sets(st.sampled_from(sorted(in_flight)), min_size=1))
        for name in sorted(done):
            outcomes = script[name]
            outcome = outcomes[min(taken[name], len(outcomes) - 1)]
            taken[name] += 1
            finished = Measurement.model_validate(
                {
                    "phase": VERDICTS.get(outcome, "Error"),
                    "startedAt": now,
                    "finishedAt": now,
                    "value": outcome,
                }
            )
            run.finish_measurement(status, name, finished)
        in_flight -= done
        terminate = terminate or data.draw(st.integers(0, 30)) == 0
        full = status.model_copy(deep=True)
        expected = run.reassess(
            full,
            metrics,
            dry_run=dry_run,
            retention=retention,
            terminate=terminate,
            now=now,
            hold=bool(in_flight),
        )
        phase_before = status.phase
        got = run.reassess(
            status,
            metrics,
            dry_run=dry_run,
            retention=retention,
            terminate=terminate,
            now=now,
            hold=bool(in_flight),
            changed=done,
        )
        assert got == expected
        assert status.model_dump() == full.model_dump()
        fast_paths += int(phase_before == "Running" and got.phase == "Running")
        if got.completed:
            break
        now += timedelta(seconds=data.draw(st.integers(0, 40)))
    # Not asserted per example (some end at once), but the fast path is what is tested:
    # see test_the_fast_path_is_taken_for_a_healthy_measurement.


def test_the_fast_path_is_taken_for_a_healthy_measurement() -> None:
    """A Successful measurement of a metric with more to take leaves the run as it was
    without a pass over the other metrics (their results are not even looked at)."""
    metrics = [metric("a", count=3, interval="5s"), metric("b", count=3, interval="5s")]
    status = AnalysisRunStatus()
    run.reassess(status, metrics, dry_run=frozenset(), retention={}, terminate=False, now=T0)
    tasks, _ = run.plan(metrics, status, T0)
    for task in tasks:
        run.begin_measurement(status, task, dry_run=False, now=T0)
    ok = Measurement.model_validate(
        {"phase": "Successful", "startedAt": T0, "finishedAt": T0, "value": "1"}
    )
    run.finish_measurement(status, "a", ok)
    b = run.result_for(status, "b")
    assert b is not None
    b.phase = "Pending"  # a pass would assess it back to Running; the fast path never looks
    outcome = run.reassess(
        status,
        metrics,
        dry_run=frozenset(),
        retention={},
        terminate=False,
        now=T0,
        hold=True,
        changed={"a"},
    )
    assert outcome == run.Reassessment("Running", "Running", False)
    assert b.phase == "Pending"
    # Without `changed`, the full pass revisits b.
    run.reassess(
        status, metrics, dry_run=frozenset(), retention={}, terminate=False, now=T0, hold=True
    )
    assert b.phase == "Running"
