"""A new run's first step taken before it is stored (Scheduler.first_status) and the run
then submitted `started`: set up and planned in submit, its observer not told of that
step, its measurements taken as any run's."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from analysisd.engine.measure import NoSecrets, PreparedRun, prepare_run
from analysisd.engine.scheduler import Scheduler
from analysisd.spec import AnalysisRun
from tests.unit.engine_fakes import RecordingObserver, ScriptedSource, make_run

FAST = timedelta(milliseconds=1)
T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def prepared_for(run: AnalysisRun) -> PreparedRun:
    return prepare_run(run.spec, NoSecrets(), run.metadata)


async def loop_passes(n: int = 10) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_first_status_is_running_from_the_schedulers_clock() -> None:
    observer = RecordingObserver()
    async with Scheduler(ScriptedSource({}), observer, clock=lambda: T0) as s:
        run = make_run({"m": {"initialDelay": "1h"}, "n": {"initialDelay": "2h"}})
        status = s.first_status(run, prepared_for(run))
    assert status is not None
    assert (status.phase, status.started_at, status.completed_at) == ("Running", T0, None)
    assert status.metric_results == []
    assert status.run_summary.count == 2
    assert observer.changes == []  # nothing stored or told: it is only computed


async def test_a_run_that_would_complete_in_its_first_step_gets_no_first_status() -> None:
    async with Scheduler(ScriptedSource({}), RecordingObserver()) as s:
        told_to_stop = make_run({"m": {"initialDelay": "1h"}}, terminate=True)
        assert s.first_status(told_to_stop, prepared_for(told_to_stop)) is None
        resumed = make_run({"m": {}})
        resumed.status = s.first_status(resumed, prepared_for(resumed))
        assert s.first_status(resumed, prepared_for(resumed)) is None  # has a status


async def test_a_started_run_is_planned_in_submit_and_its_observer_not_told_of_it() -> None:
    observer = RecordingObserver()
    async with Scheduler(ScriptedSource({"m": "S"}), observer, error_retry=FAST) as s:
        run = make_run({"m": {"initialDelay": "1h"}})
        prepared = prepared_for(run)
        run.status = s.first_status(run, prepared)
        s.submit(run, prepared, started=True)
        assert s.is_active("ns", "run")
        await loop_passes()
        assert observer.changes == []  # no second write of the new run
        # Without `started`, the same run's first step tells the observer Pending -> Running.
        other = make_run({"m": {"initialDelay": "1h"}}, name="other")
        s.submit(other, prepared_for(other))
        await loop_passes()
        assert [(c.previous_phase, c.phase) for c in observer.changes] == [("Pending", "Running")]
        # The started run is live: terminated, it completes and is told so.
        assert s.terminate("ns", "run")
        done = await asyncio.wait_for(s.wait("ns", "run"), 10)
    assert done.status is not None and done.status.phase == "Successful"
    assert done is run  # handed over: not copied
    assert [(c.previous_phase, c.phase, c.completed) for c in observer.changes[1:]] == [
        ("Running", "Successful", True)
    ]


async def test_a_started_run_with_nothing_delayed_is_measured_at_once() -> None:
    observer = RecordingObserver()
    source = ScriptedSource({"m": "S"})
    async with Scheduler(source, observer, error_retry=FAST) as s:
        run = make_run({"m": {"count": 2, "interval": "1ms"}})
        prepared = prepared_for(run)
        run.status = s.first_status(run, prepared)
        s.submit(run, prepared, started=True)
        done = await asyncio.wait_for(s.wait("ns", "run"), 10)
    assert done.status is not None and done.status.phase == "Successful"
    assert done.status.metric_results[0].count == 2
    # Every change the observer heard carried a measurement, the last one the completion.
    assert [len(c.measurements) for c in observer.changes] == [1, 1]
    assert observer.changes[0].previous_phase == "Running"
    assert observer.changes[-1].completed
