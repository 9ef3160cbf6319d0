"""Properties of the real scheduler under any provider behaviour (success, failure, error, hang)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from analysisd.engine.scheduler import Scheduler
from analysisd.spec import AnalysisRun
from tests.unit.engine_fakes import RecordingObserver, ScriptedSource, make_run

SCRIPTS = st.text(alphabet="SFIEH", min_size=1, max_size=8)


async def _run(
    run: AnalysisRun, script: dict[str, str], start: dict[str, int] | None = None
) -> tuple[AnalysisRun, RecordingObserver]:
    observer = RecordingObserver()
    source = ScriptedSource(script, start)
    async with Scheduler(
        source,
        observer,
        error_retry=timedelta(milliseconds=1),
        measurement_timeout=0.005,
    ) as s:
        s.submit(run)
        # A guard against a hang, not a timing assertion.
        done = await asyncio.wait_for(s.wait("ns", "run"), 60)
    return done, observer


def assert_counters_match_the_observed_measurements(
    run: AnalysisRun, observer: RecordingObserver
) -> None:
    """Each metric's counters agree with the measurements the observer was told of."""
    assert run.status is not None
    seen: dict[str, list[str]] = {}
    for change in observer.changes:
        for new in change.measurements:
            seen.setdefault(new.metric, []).append(new.measurement.phase)
    for result in run.status.metric_results:
        phases = seen.get(result.name, [])
        assert result.count == result.successful + result.failed + result.inconclusive
        assert result.count == len([p for p in phases if p != "Error"])
        assert result.error == phases.count("Error")
        assert all(m.finished_at is not None for m in result.measurements)


@st.composite
def runs(draw: st.DrawFn, max_metrics: int = 2) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    names = ["a", "b"][: draw(st.integers(1, max_metrics))]
    metrics: dict[str, dict[str, Any]] = {}
    for name in names:
        fields: dict[str, Any] = {"count": draw(st.integers(1, 4)), "interval": "1ms"}
        if draw(st.booleans()):
            fields["failureLimit"] = draw(st.integers(0, 2))
        if draw(st.booleans()):
            fields["consecutiveErrorLimit"] = draw(st.integers(0, 2))
        metrics[name] = fields
    return metrics, {name: draw(SCRIPTS) for name in names}


@settings(max_examples=40, deadline=None)
@given(runs())
def test_any_provider_behaviour_ends_in_a_terminal_phase_with_consistent_counters(
    case: tuple[dict[str, dict[str, Any]], dict[str, str]],
) -> None:
    metrics, script = case
    done, observer = asyncio.run(_run(make_run(metrics), script))
    assert done.status is not None
    assert done.status.phase in {"Successful", "Failed", "Error", "Inconclusive"}
    assert observer.changes[-1].completed
    assert_counters_match_the_observed_measurements(done, observer)


@settings(max_examples=30, deadline=None)
@given(runs(max_metrics=1), st.data())
def test_resuming_the_scheduler_from_any_observed_status_gives_the_same_phase(
    case: tuple[dict[str, dict[str, Any]], dict[str, str]], data: st.DataObject
) -> None:
    metrics, script = case
    done, observer = asyncio.run(_run(make_run(metrics), script))
    assert done.status is not None
    stored = data.draw(st.sampled_from(observer.snapshots))
    assert stored.status is not None
    # The scripted provider continues from where the stored status left off.
    start = {r.name: r.count + r.error for r in stored.status.metric_results}
    resumed, _ = asyncio.run(_run(stored, script, start))
    assert resumed.status is not None
    assert resumed.status.phase == done.status.phase
    before = {r.name: (r.count, r.error, r.phase) for r in done.status.metric_results}
    after = {r.name: (r.count, r.error, r.phase) for r in resumed.status.metric_results}
    assert after == before


async def _terminate_after(steps: int, script: str) -> AnalysisRun:
    source = ScriptedSource({"m": script})
    async with Scheduler(
        source,
        RecordingObserver(),
        error_retry=timedelta(milliseconds=1),
        measurement_timeout=0.005,
    ) as s:
        # failureLimit -1 needs a success streak to be valid (Argo); this one is never reached.
        s.submit(
            make_run(
                {"m": {"interval": "1ms", "failureLimit": -1, "consecutiveSuccessLimit": 10_000}}
            )
        )
        for _ in range(steps):
            await asyncio.sleep(0)
        s.terminate("ns", "run")
        return await asyncio.wait_for(s.wait("ns", "run"), 60)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 12), SCRIPTS)
def test_terminate_at_any_moment_completes_the_run(steps: int, script: str) -> None:
    done = asyncio.run(_terminate_after(steps, script))
    assert done.status is not None
    assert done.status.phase in {"Successful", "Error", "Inconclusive"}
    results = done.status.metric_results
    assert all(m.finished_at is not None for r in results for m in r.measurements)


async def _many(
    cases: list[tuple[dict[str, dict[str, Any]], dict[str, str]]],
    concurrency: int,
    stop: dict[int, int],
) -> tuple[list[AnalysisRun], RecordingObserver]:
    # Every run's metrics renamed apart, so each follows its own script.
    script: dict[str, str] = {}
    manifests = []
    for i, (metrics, own) in enumerate(cases):
        manifests.append(make_run({f"r{i}{k}": v for k, v in metrics.items()}, name=f"r{i}"))
        script.update({f"r{i}{k}": v for k, v in own.items()})
    observer = RecordingObserver()
    async with Scheduler(
        ScriptedSource(script),
        observer,
        error_retry=timedelta(milliseconds=1),
        measurement_timeout=0.005,
        max_concurrency=concurrency,
    ) as s:
        for manifest in manifests:
            s.submit(manifest)
        for step in range(max(stop.values(), default=0) + 1):
            for i, at in stop.items():
                if at == step:
                    s.terminate("ns", f"r{i}")
            await asyncio.sleep(0)
        done = [await asyncio.wait_for(s.wait("ns", f"r{i}"), 60) for i in range(len(cases))]
    return done, observer


@settings(max_examples=30, deadline=None)
@given(
    st.lists(runs(), min_size=2, max_size=4),
    st.integers(1, 3),
    st.data(),
)
def test_few_workers_shared_by_many_runs_finish_every_run_consistently(
    cases: list[tuple[dict[str, dict[str, Any]], dict[str, str]]],
    concurrency: int,
    data: st.DataObject,
) -> None:
    # Fewer workers than measurements: each worker goes from run to run through
    # timeouts (H), errors and terminations, and must carry nothing of one to the next.
    stop = data.draw(
        st.dictionaries(st.integers(0, len(cases) - 1), st.integers(0, 15), max_size=len(cases))
    )
    done, observer = asyncio.run(_many(cases, concurrency, stop))
    for i, run in enumerate(done):
        assert run.status is not None
        assert run.status.phase in {"Successful", "Error", "Inconclusive", "Failed"}
        assert_counters_match_the_observed_measurements(run, observer)
        for result in run.status.metric_results:
            # Never more measurements than the metric's count.
            assert result.count <= cases[i][0][result.name[len(f"r{i}") :]]["count"]
