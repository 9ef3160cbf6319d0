"""Runs with many metrics: every metric measured `count` times, measurements recorded in batches.

A run's measurements that finish together are recorded, assessed and handed to the
observer in one step (engine/scheduler.py `_measure`); a run of 3,000 metrics would
otherwise be assessed and stored 3,000 times per round, each pass over 3,000 metrics.
The per-metric cost is benchmarked in bench/bench_many_metrics.py; here, correctness.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings

from analysisd.admission import admission_problems, errors
from analysisd.engine import scheduler as scheduler_module
from analysisd.engine.measure import NoSecrets
from analysisd.engine.observer import RunChange
from analysisd.engine.scheduler import Scheduler
from analysisd.spec import AnalysisRun
from tests.unit import test_scheduler_model_property as model
from tests.unit.engine_fakes import ScriptedSource, make_run


@dataclass
class CountingObserver:
    """Counts what it is told; checks each measurement is told once, in order per metric."""

    changes: int = 0
    seen: dict[str, int] = field(default_factory=dict)
    largest_batch: int = 0

    async def on_change(self, run: AnalysisRun, change: RunChange) -> None:
        self.changes += 1
        self.largest_batch = max(self.largest_batch, len(change.measurements))
        assert run.status is not None
        for news in change.measurements:
            self.seen[news.metric] = self.seen.get(news.metric, 0) + 1
            assert news.measurement.finished_at is not None
        await asyncio.sleep(0)  # a store write yields


async def test_a_run_of_3000_metrics_measures_each_exactly_count_times() -> None:
    metrics = 3000
    count = 3
    names = [f"m{i}" for i in range(metrics)]
    run = make_run({name: {"count": count, "interval": "1ms"} for name in names})
    source = ScriptedSource(dict.fromkeys(names, "S"))
    observer = CountingObserver()
    async with Scheduler(source, observer, max_concurrency=1000) as scheduler:
        scheduler.submit(run)
        done = await asyncio.wait_for(scheduler.wait("ns", "run"), 120)
    assert done.status is not None
    assert done.status.phase == "Successful", done.status.message
    results = {r.name: r for r in done.status.metric_results}
    assert set(results) == set(names)
    for name, result in results.items():
        assert (result.count, result.successful, result.phase) == (count, count, "Successful"), name
        assert len(result.measurements) == count
        assert all(m.phase == "Successful" and m.finished_at for m in result.measurements)
    assert source.attempts == dict.fromkeys(names, count)
    assert observer.seen == dict.fromkeys(names, count)
    summary = done.status.run_summary
    assert (summary.count, summary.successful) == (metrics, metrics)
    # Recorded in batches: far fewer steps than measurements.
    assert observer.largest_batch > 1
    assert observer.changes < metrics * count // 10


async def test_a_failing_metric_among_many_stops_the_run_as_alone() -> None:
    # One metric fails its second measurement (failureLimit 0): the run fails with
    # Argo's message, the other metrics stop, nothing is measured twice.
    names = [f"m{i}" for i in range(40)]
    script = dict.fromkeys(names, "S")
    script["m17"] = "SF"
    specs = {name: {"interval": "1ms"} for name in names}  # indefinite: only a failure ends it
    source = ScriptedSource(script)
    observer = CountingObserver()
    async with Scheduler(source, observer) as scheduler:
        scheduler.submit(make_run(specs))
        done = await asyncio.wait_for(scheduler.wait("ns", "run"), 60)
    assert done.status is not None
    assert done.status.phase == "Failed"
    expected = 'Metric "m17" assessed Failed due to failed (1) > failureLimit (0)'
    assert done.status.message == expected
    results = {r.name: r for r in done.status.metric_results}
    assert (results["m17"].count, results["m17"].failed) == (2, 1)
    assert all(results[n].phase == "Successful" for n in names if n != "m17")
    # Every measurement the provider answered was recorded once, none dropped or doubled.
    assert observer.seen == source.attempts


@contextlib.contextmanager
def gathering_from(metrics: int) -> Iterator[None]:
    saved = scheduler_module._GATHER_FROM
    scheduler_module._GATHER_FROM = metrics
    try:
        yield
    finally:
        scheduler_module._GATHER_FROM = saved


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(model.cases())
def test_runs_that_gather_their_measurements_end_as_the_sequential_model_says(
    case: model.Case,
) -> None:
    # The model property test's cases, with every run (however few metrics) waiting a
    # pass for its siblings before recording: batches of every shape against the model.
    for run in case.runs:
        assert not errors(admission_problems(run.analysis_run().spec, None, NoSecrets())), run
    with gathering_from(1):
        outcome = asyncio.run(model.drive(case))
    for run in case.runs:
        model.check_run(outcome, run)
