"""The asyncio scheduler end to end against a scripted provider (real loop, short intervals)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import structlog

from analysisd.engine import runstate as runstate_module
from analysisd.engine.measure import PreparedRun, prepare_run
from analysisd.engine.scheduler import Scheduler, SchedulerClosed
from analysisd.spec import AnalysisRun, AnalysisRunSpec
from providers.base import MeasurementContext, ProviderError
from tests.unit.engine_fakes import (
    SCRIPTED_URL,
    RecordingObserver,
    ScriptedSource,
    make_run,
    scripted_metric,
)

FAST = timedelta(milliseconds=1)


def scheduler(source: ScriptedSource, observer: RecordingObserver, **kw: Any) -> Scheduler:
    options: dict[str, Any] = {
        "error_retry": FAST,
        "measurement_timeout": 0.05,
    }
    options.update(kw)
    return Scheduler(source, observer, **options)


async def run_to_end(run: AnalysisRun, script: dict[str, str], **kw: Any) -> AnalysisRun:
    async with scheduler(ScriptedSource(script), RecordingObserver(), **kw) as s:
        s.submit(run)
        return await asyncio.wait_for(s.wait("ns", "run"), 30)


async def test_single_measurement_run_is_successful_and_observer_sees_it() -> None:
    observer = RecordingObserver()
    async with scheduler(ScriptedSource({"m": "S"}), observer) as s:
        s.submit(make_run({"m": {}}))
        done = await s.wait("ns", "run")
    assert done.status is not None
    assert done.status.phase == "Successful"
    assert done.status.completed_at is not None
    [result] = done.status.metric_results
    assert (result.count, result.successful, result.phase) == (1, 1, "Successful")
    assert [m.metric for c in observer.changes for m in c.measurements] == ["m"]
    assert observer.changes[-1].completed
    assert s.active_runs() == 0


async def test_count_with_interval_takes_exactly_count_measurements() -> None:
    source = ScriptedSource({"m": "S"})
    async with scheduler(source, RecordingObserver()) as s:
        s.submit(make_run({"m": {"count": 3, "interval": "1ms"}}))
        done = await s.wait("ns", "run")
    assert done.status is not None
    assert done.status.metric_results[0].count == 3
    assert source.calls == 3


async def test_failed_metric_stops_an_indefinite_sibling() -> None:
    script = {"bad": "SSF", "forever": "S"}
    run = make_run({"bad": {"interval": "1ms"}, "forever": {"interval": "1ms"}})
    done = await run_to_end(run, script)
    assert done.status is not None
    phases = {r.name: r.phase for r in done.status.metric_results}
    assert phases == {"bad": "Failed", "forever": "Successful"}
    assert done.status.phase == "Failed"
    expected = 'Metric "bad" assessed Failed due to failed (1) > failureLimit (0)'
    assert done.status.message == expected


async def test_hanging_provider_times_out_into_errors_then_run_error() -> None:
    done = await run_to_end(make_run({"m": {}}), {"m": "H"})
    assert done.status is not None
    [result] = done.status.metric_results
    assert (result.error, result.consecutive_error, result.count) == (5, 5, 0)
    assert "timed out" in result.measurements[-1].message
    assert done.status.phase == "Error"


async def test_provider_error_message_is_kept_on_the_measurement() -> None:
    done = await run_to_end(make_run({"m": {}}), {"m": "ES"})
    assert done.status is not None
    [result] = done.status.metric_results
    assert result.measurements[0].phase == "Error"
    assert "returned 500: boom" in result.measurements[0].message
    assert done.status.phase == "Successful"


async def test_secret_values_are_redacted_from_messages() -> None:
    run = make_run(
        {"m": {}},
        args=[{"name": "token", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}}],
    )
    run.spec.metrics[0].provider = {"web": {"url": SCRIPTED_URL + "m?token={{args.token}}"}}
    secrets = DictSecrets({("api", "token"): "s3cret"})
    done = await run_to_end(run, {"m": "ES"}, secrets=secrets)
    assert done.status is not None
    message = done.status.metric_results[0].measurements[0].message
    assert "s3cret" not in message
    assert "token=*****" in message


async def test_terminate_ends_indefinite_run_successful_with_run_terminated() -> None:
    observer = RecordingObserver()
    async with scheduler(ScriptedSource({"m": "S"}), observer) as s:
        s.submit(make_run({"m": {"interval": "5ms"}}))
        await observer.measured.wait()
        assert s.terminate("ns", "run")
        done = await s.wait("ns", "run")
    assert done.status is not None
    assert (done.status.phase, done.status.message) == ("Successful", "Run Terminated")
    assert done.status.metric_results[0].phase == "Successful"
    assert not s.terminate("ns", "run")


async def test_terminate_cancels_a_hanging_measurement_and_drops_it() -> None:
    observer = RecordingObserver()
    async with scheduler(ScriptedSource({"m": "H"}), observer, measurement_timeout=60) as s:
        s.submit(make_run({"m": {"interval": "1s"}}))
        await asyncio.sleep(0.01)
        assert s.terminate("ns", "run")
        done = await s.wait("ns", "run")
    assert done.status is not None
    assert done.status.phase == "Successful"
    assert done.status.metric_results == [] or not done.status.metric_results[0].measurements


async def test_initial_delay_runs_first_measurement_after_the_delay() -> None:
    done = await run_to_end(make_run({"m": {"initialDelay": "20ms"}}), {"m": "S"})
    assert done.status is not None and done.status.started_at is not None
    first = done.status.metric_results[0].measurements[0]
    assert first.started_at is not None
    assert first.started_at - done.status.started_at >= timedelta(milliseconds=20)


async def test_setup_error_puts_the_run_in_error_with_its_message() -> None:
    run = make_run({"m": {}})
    run.spec.metrics[0].provider = {}
    observer = RecordingObserver()
    async with scheduler(ScriptedSource({"m": "S"}), observer) as s:
        s.submit(run)
        done = await s.wait("ns", "run")
    assert done.status is not None
    assert done.status.phase == "Error"
    assert done.status.message == "Analysis spec invalid: metrics[0]: no provider specified"
    assert observer.changes[-1].completed


async def test_resumed_run_continues_from_its_stored_counters() -> None:
    observer = RecordingObserver()
    async with scheduler(ScriptedSource({"m": "S"}), observer) as s:
        s.submit(make_run({"m": {"count": 4, "interval": "1ms"}}))
        await s.wait("ns", "run")
    stored = next(r for r in observer.snapshots if r.status and _count(r) == 2)
    source = ScriptedSource({"m": "S"})
    async with scheduler(source, RecordingObserver()) as s:
        s.submit(stored)
        done = await s.wait("ns", "run")
    assert done.status is not None
    assert done.status.metric_results[0].count == 4
    assert source.calls == 2


def _count(run: AnalysisRun) -> int:
    assert run.status is not None
    return run.status.metric_results[0].count if run.status.metric_results else 0


async def test_stored_in_flight_measurement_is_taken_again() -> None:
    observer = RecordingObserver()
    async with scheduler(ScriptedSource({"m": "H"}), observer, measurement_timeout=60) as s:
        s.submit(make_run({"m": {"count": 2, "interval": "1ms"}}))
        await asyncio.sleep(0.01)
        snapshot = s._runs[("ns", "run")].run.model_copy(deep=True)
        await s.aclose(grace=0)
    assert snapshot.status is not None
    assert snapshot.status.metric_results[0].measurements[-1].finished_at is None
    source = ScriptedSource({"m": "S"})
    async with scheduler(source, RecordingObserver()) as s:
        s.submit(snapshot)
        done = await s.wait("ns", "run")
    assert done.status is not None
    assert [m.phase for m in done.status.metric_results[0].measurements] == ["Successful"] * 2
    assert source.calls == 2


async def test_observer_failure_stops_the_run_and_reaches_the_waiter() -> None:
    observer = RecordingObserver(fail_after=0)
    async with scheduler(ScriptedSource({"m": "S"}), observer) as s:
        s.submit(make_run({"m": {"count": 3, "interval": "1ms"}}))
        with pytest.raises(RuntimeError, match="store is down"):
            await s.wait("ns", "run")
        assert s.active_runs() == 0


async def test_aclose_cancels_measurements_after_grace_and_fails_waiters() -> None:
    s = scheduler(ScriptedSource({"m": "H"}), RecordingObserver(), measurement_timeout=60)
    await s.start()
    s.submit(make_run({"m": {}}))
    waiter = asyncio.ensure_future(s.wait("ns", "run"))
    await asyncio.sleep(0.01)
    await s.aclose(grace=0.01)
    with pytest.raises(SchedulerClosed):
        await waiter
    with pytest.raises(SchedulerClosed):
        s.submit(make_run({"m": {}}, name="late"))


async def test_global_concurrency_limit_bounds_measurements_in_flight() -> None:
    source = ScriptedSource({"m": "S"})
    # A long timeout: this is about the concurrency bound, and a pause of the whole
    # process (a full collection late in the test suite) must not turn into retries.
    observer = RecordingObserver()
    async with scheduler(source, observer, max_concurrency=3, measurement_timeout=30) as s:
        for i in range(20):
            s.submit(make_run({"m": {"count": 2, "interval": "1ms"}}, name=f"r{i}"))
        for i in range(20):
            await s.wait("ns", f"r{i}")
    assert source.calls == 40
    assert 1 <= source.max_concurrent <= 3


async def test_duplicate_active_run_is_rejected() -> None:
    async with scheduler(ScriptedSource({"m": "H"}), RecordingObserver()) as s:
        s.submit(make_run({"m": {}}))
        with pytest.raises(ValueError, match="already active"):
            s.submit(make_run({"m": {}}))
        s.terminate("ns", "run")


class SeriesOnlySource(ScriptedSource):
    """Range data for the judge: the canary's error rate is far above the baseline's."""

    async def series(
        self, kind: str, config: Any, query: str, start: Any, end: Any, step: float
    ) -> list[float]:
        base = 10.0 if "canary" in query else 1.0
        return [base + (i % 5) * 0.1 for i in range(30)]


def judge_block(condition: str | None) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "provider": {
            "judge": {
                "source": {"prometheus": {"address": "http://127.0.0.1:9"}},
                "lookback": "30m",
                "step": "1m",
                "scopes": {"baseline": "stable", "canary": "canary"},
                "queries": {"errors": "errors{${scope}}"},
                "canaryConfig": {
                    "metrics": [
                        {
                            "name": "errors",
                            "groups": ["g"],
                            "analysisConfigurations": {
                                "canary": {"direction": "increase", "critical": True}
                            },
                        }
                    ],
                    "classifier": {"groupWeights": {"g": 100}},
                },
                "thresholds": {"pass": 95, "marginal": 75},
            }
        }
    }
    if condition:
        fields["successCondition"] = condition
    return fields


async def test_judge_metric_without_conditions_uses_the_score_thresholds() -> None:
    run = make_run({"m": {}})
    run.spec.metrics[0] = run.spec.metrics[0].model_copy(
        update={
            "success_condition": "",
            "failure_condition": "",
            "provider": judge_block(None)["provider"],
        }
    )
    source = SeriesOnlySource({"m": "S"})
    async with scheduler(source, RecordingObserver(), measurement_timeout=30) as s:
        s.submit(run)
        done = await s.wait("ns", "run")
    assert done.status is not None
    [measurement] = done.status.metric_results[0].measurements
    assert measurement.phase == "Failed", measurement.message
    assert float(measurement.value) < 75
    assert "score" in measurement.metadata


async def test_the_judges_lookback_window_ends_at_the_schedulers_clock() -> None:
    # Time is injected: the window a judge metric asks for ends at the scheduler's "now".
    at = datetime(2031, 5, 4, 3, 2, 1, tzinfo=UTC)
    windows: list[tuple[Any, Any]] = []

    class Recording(SeriesOnlySource):
        async def series(
            self, kind: str, config: Any, query: str, start: Any, end: Any, step: float
        ) -> list[float]:
            windows.append((start, end))
            return await super().series(kind, config, query, start, end, step)

    run = make_run({"m": {}})
    run.spec.metrics[0] = run.spec.metrics[0].model_copy(
        update={
            "success_condition": "",
            "failure_condition": "",
            "provider": judge_block(None)["provider"],
        }
    )
    observer = RecordingObserver()
    async with scheduler(
        Recording({"m": "S"}), observer, clock=lambda: at, measurement_timeout=30
    ) as s:
        s.submit(run)
        await s.wait("ns", "run")
    assert windows and set(windows) == {(at - timedelta(minutes=30), at)}


async def test_terminated_run_resumed_with_a_stored_in_flight_measurement_completes() -> None:
    observer = RecordingObserver()
    async with scheduler(ScriptedSource({"m": "H"}), observer, measurement_timeout=60) as s:
        s.submit(make_run({"m": {"interval": "1s"}}))
        await asyncio.sleep(0.01)
        snapshot = s._runs[("ns", "run")].run.model_copy(deep=True)
        await s.aclose(grace=0)
    snapshot.spec.terminate = True
    source = ScriptedSource({"m": "S"})
    async with scheduler(source, RecordingObserver()) as s:
        s.submit(snapshot)
        done = await s.wait("ns", "run")
    assert done.status is not None
    assert (done.status.phase, done.status.message) == ("Successful", "Run Terminated")
    assert source.calls == 0


class DictSecrets:
    def __init__(self, values: dict[tuple[str, str], str]) -> None:
        self.values = values

    def get(self, name: str, key: str) -> str | None:
        return self.values.get((name, key))


async def test_unresolved_argument_puts_the_run_in_error_with_argos_message() -> None:
    run = make_run({"m": {}})
    run.spec.metrics[0].provider = {"web": {"url": SCRIPTED_URL + "m?q={{args.missing}}"}}
    async with Scheduler(ScriptedSource({"m": "S"}), RecordingObserver()) as s:
        s.submit(run)
        done = await s.wait("ns", "run")
    assert done.status is not None
    assert done.status.phase == "Error"
    assert done.status.message == (
        "Unable to resolve metric arguments: failed to resolve {{args.missing}}"
    )


async def test_secret_argument_is_resolved_once_and_redacted_from_messages() -> None:
    run = make_run(
        {"m": {}},
        args=[{"name": "token", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}}],
    )
    run.spec.metrics[0].provider = {"web": {"url": SCRIPTED_URL + "m?t={{args.token}}"}}
    secrets = DictSecrets({("api", "token"): "s3cret"})
    source = ScriptedSource({"m": "ES"})
    async with Scheduler(source, RecordingObserver(), secrets=secrets, error_retry=FAST) as s:
        s.submit(run)
        done = await s.wait("ns", "run")
    assert done.status is not None
    assert done.status.phase == "Successful"
    first = done.status.metric_results[0].measurements[0]
    assert first.phase == "Error" and "token=*****" in first.message
    assert "s3cret" not in done.model_dump_json()


class SlowObserver(RecordingObserver):
    """Records like RecordingObserver, but each measurement takes a while to store."""

    async def on_change(self, run: AnalysisRun, change: Any) -> None:
        if change.measurements:
            await asyncio.sleep(0.4)  # far past the 0.1 s measurement timeout
        await super().on_change(run, change)


async def test_recording_a_measurement_is_never_cut_off_by_its_timeout() -> None:
    # The timeout covers taking the measurement; once taken, storing it (however slow
    # the store) is not a measurement in flight and must not be cancelled.
    observer = SlowObserver()
    async with scheduler(ScriptedSource({"m": "S"}), observer, measurement_timeout=0.1) as s:
        s.submit(make_run({"m": {"count": 2, "interval": "1ms"}}))
        done = await asyncio.wait_for(s.wait("ns", "run"), 30)
    assert done.status is not None
    assert done.status.phase == "Successful"
    [result] = done.status.metric_results
    assert [m.phase for m in result.measurements] == ["Successful", "Successful"]


async def test_timeouts_cut_off_only_the_measurements_past_their_deadline() -> None:
    # One timer serves every measurement in flight: hanging ones end as Errors with
    # the timeout message, quick ones beside them are untouched.
    source = ScriptedSource({"hang": "H", "quick": "S"})
    async with scheduler(source, RecordingObserver(), measurement_timeout=0.1) as s:
        s.submit(make_run({"hang": {"count": 1}, "quick": {"count": 1}}))
        done = await asyncio.wait_for(s.wait("ns", "run"), 30)
    assert done.status is not None
    by_name = {r.name: r for r in done.status.metric_results}
    hung = by_name["hang"].measurements
    assert hung and {m.phase for m in hung} == {"Error"}  # retried up to the error limit
    assert {m.message for m in hung} == {"hang: measurement timed out after 0.1s"}
    assert all(m.started_at and m.finished_at and m.finished_at > m.started_at for m in hung)
    assert [m.phase for m in by_name["quick"].measurements] == ["Successful"]
    assert done.status.phase == "Error"


class BindingSource(ScriptedSource):
    """A source that binds each block, like ProviderRegistry; binding can be made to fail."""

    def __init__(self, script: dict[str, str], refuse: int = 0) -> None:
        super().__init__(script)
        self.events: list[str] = []
        self.contexts: list[MeasurementContext] = []  # as each bind call got it
        self.refuse = refuse  # how many bind calls fail before one succeeds

    def bind(self, kind: str, config: Any, context: MeasurementContext) -> Any:
        name = scripted_metric(kind, config)
        self.events.append(f"bind {name}")
        self.contexts.append(context)
        if self.refuse > 0:
            self.refuse -= 1
            raise ProviderError(f"web: cannot bind {name}")
        source = self

        class Bound:
            timed = True

            async def measure(self) -> Any:
                source.events.append(f"measure {name}")
                return await source.measure(kind, config)

        return Bound()


async def test_blocks_are_bound_once_when_the_run_starts_before_any_measurement() -> None:
    source = BindingSource({"a": "S", "b": "S"})
    metrics = {"a": {"count": 2, "interval": "1ms"}, "b": {"count": 2, "interval": "1ms"}}
    async with scheduler(source, RecordingObserver()) as s:
        s.submit(make_run(metrics))
        done = await s.wait("ns", "run")
    assert done.status is not None and done.status.phase == "Successful"
    assert source.events[:2] == ["bind a", "bind b"]
    assert sorted(source.events[2:]) == ["measure a"] * 2 + ["measure b"] * 2
    # Each block bound with its run's and metric's context, nothing measured yet.
    assert [(c.run_name, c.run_namespace, c.metric_name, c.taken) for c in source.contexts] == [
        ("run", "ns", "a", 0),
        ("run", "ns", "b", 0),
    ]


async def test_a_block_that_cannot_be_bound_at_start_is_bound_by_its_measurement() -> None:
    # The bind at start fails and is not reported there; the measurement binds again.
    source = BindingSource({"a": "S"}, refuse=2)
    metric: dict[str, dict[str, Any]] = {"a": {}}
    async with scheduler(source, RecordingObserver()) as s:
        s.submit(make_run(metric))
        done = await s.wait("ns", "run")
    assert done.status is not None
    [result] = done.status.metric_results
    # Start: refused (silently). First measurement: refused -> an Error naming the cause.
    assert result.measurements[0].phase == "Error"
    assert result.measurements[0].message == "web: cannot bind a"
    # The retry binds, measures, and the run completes.
    assert (result.error, result.successful, done.status.phase) == (1, 1, "Successful")
    assert source.events == ["bind a", "bind a", "bind a", "measure a"]
    # A block bound at its measurement gets the context it was set up with.
    assert len(set(source.contexts)) == 1 and source.contexts[0].metric_name == "a"


async def test_one_worker_survives_timeouts_and_terminations_and_serves_the_next_run() -> None:
    # A single worker and every first measurement queued at once: the worker goes from
    # one to the next. One that kept a cancellation of its own (a timeout, a terminate)
    # would take the next cancellation for a shutdown and stop, stranding the rest.
    source = ScriptedSource({"h1": "HS", "h2": "HS", "ok": "S"})
    async with scheduler(source, RecordingObserver(), max_concurrency=1) as s:
        for name in ("h1", "h2", "ok"):
            s.submit(make_run({name: {}}, name=name))
        done = [await asyncio.wait_for(s.wait("ns", name), 30) for name in ("h1", "h2", "ok")]
    for run in done:
        assert run.status is not None and run.status.phase == "Successful"
    h1 = done[0].status.metric_results[0]  # type: ignore[union-attr]
    assert [m.phase for m in h1.measurements] == ["Error", "Successful"]
    assert "timed out" in h1.measurements[0].message

    source = ScriptedSource({"stuck": "H", "next": "S"})
    async with scheduler(
        source, RecordingObserver(), max_concurrency=1, measurement_timeout=60
    ) as s:
        s.submit(make_run({"stuck": {}}, name="c"))
        s.submit(make_run({"next": {}}, name="d"))
        await asyncio.wait_for(source.started.wait(), 10)
        assert s.terminate("ns", "c")
        c = await asyncio.wait_for(s.wait("ns", "c"), 30)
        d = await asyncio.wait_for(s.wait("ns", "d"), 30)
    assert c.status is not None and c.status.phase == "Successful"
    assert d.status is not None and d.status.phase == "Successful"
    assert d.status.metric_results[0].measurements[0].phase == "Successful"


async def test_a_hanging_measurement_does_not_hold_up_one_queued_behind_it() -> None:
    # Room for two: the second run must not wait for the first one's worker.
    source = ScriptedSource({"hang": "H", "ok": "S"})
    async with scheduler(
        source, RecordingObserver(), max_concurrency=2, measurement_timeout=60
    ) as s:
        s.submit(make_run({"hang": {}}, name="slow"))
        await asyncio.wait_for(source.started.wait(), 10)
        s.submit(make_run({"ok": {}}, name="fast"))
        fast = await asyncio.wait_for(s.wait("ns", "fast"), 10)
        assert s.is_active("ns", "slow")
        s.terminate("ns", "slow")
    assert fast.status is not None and fast.status.phase == "Successful"


async def test_submitted_runs_are_set_up_in_slices_that_let_the_loop_run_between(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Setting up 100 runs takes ~0.2 s here: not in one go, or nothing else could run.
    log: list[str] = []

    def slow_prepare(spec: AnalysisRunSpec, secrets: Any, meta: Any = None) -> PreparedRun:
        log.append("set up")
        time.sleep(0.002)
        return prepare_run(spec, secrets, meta)

    # The real preparation, made slow (runs are set up by engine/runstate.py's Admitter).
    monkeypatch.setattr(runstate_module, "prepare_run", slow_prepare)

    async def heartbeat() -> None:
        while True:
            log.append("tick")
            await asyncio.sleep(0)

    beat = asyncio.ensure_future(heartbeat())
    try:
        async with scheduler(ScriptedSource({"m": "S"}), RecordingObserver()) as s:
            for i in range(100):
                s.submit(make_run({"m": {}}, name=f"r{i}"))
            for i in range(100):
                await asyncio.wait_for(s.wait("ns", f"r{i}"), 30)
    finally:
        beat.cancel()
    first, last = log.index("set up"), len(log) - 1 - log[::-1].index("set up")
    assert log.count("set up") == 100
    assert log[first:last].count("tick") >= 2  # the loop ran while runs were being set up


async def test_a_run_forgotten_before_it_was_set_up_is_never_observed() -> None:
    observer = RecordingObserver()
    async with scheduler(ScriptedSource({"m": "S"}), observer) as s:
        s.submit(make_run({"m": {}}, name="gone"))
        assert s.forget("ns", "gone")  # before the loop got to it
        s.submit(make_run({"m": {}}, name="kept"))
        kept = await s.wait("ns", "kept")
    assert kept.status is not None and kept.status.phase == "Successful"
    assert observer.changes and all(c.measurements or c.phase for c in observer.changes)
    assert {snapshot.metadata.name for snapshot in observer.snapshots} == {"kept"}


async def test_a_bug_while_recording_stops_that_run_and_the_worker_serves_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from analysisd.engine import dispatch

    real = dispatch.recorded
    calls = 0

    def flaky(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("bug in recording")
        return real(*args)

    monkeypatch.setattr(dispatch, "recorded", flaky)
    source = ScriptedSource({"a": "S", "b": "S"})
    async with scheduler(source, RecordingObserver(), max_concurrency=1) as s:
        s.submit(make_run({"a": {}}, name="a"))
        s.submit(make_run({"b": {}}, name="b"))
        with pytest.raises(RuntimeError, match="bug in recording"):
            await asyncio.wait_for(s.wait("ns", "a"), 10)
        b = await asyncio.wait_for(s.wait("ns", "b"), 10)
    assert b.status is not None and b.status.phase == "Successful"


class JitterSource(ScriptedSource):
    """Answers after a random number of loop turns, so siblings finish in any order."""

    def __init__(self, script: dict[str, str], seed: int) -> None:
        super().__init__(script)
        import random

        self.random = random.Random(seed)

    async def measure(self, kind: str, config: Any) -> Any:
        for _ in range(self.random.randrange(0, 6)):
            await asyncio.sleep(0)
        return await super().measure(kind, config)


class TurnTakingObserver(RecordingObserver):
    """Takes a few loop turns per change, as a store's transaction does: meanwhile the
    run's lock is held and siblings' results wait for it."""

    async def on_change(self, run: AnalysisRun, change: Any) -> None:
        await super().on_change(run, change)
        for _ in range(3):
            await asyncio.sleep(0)


@pytest.mark.parametrize("seed", range(5))
async def test_sibling_metrics_are_each_measured_exactly_count_times(seed: int) -> None:
    # A sibling's measurement recorded while another metric's result waits for the run
    # lock must not see that metric as an unfinished (restart) measurement and take it
    # again: that is how one first-measurement failure used to be recorded twice.
    script = {f"r{i}{m}": ("FS" if m == "a" else "S") for i in range(20) for m in "abc"}
    source = JitterSource(script, seed)
    fields = {"count": 2, "interval": "1ms", "failureLimit": 1}
    async with scheduler(source, TurnTakingObserver(), measurement_timeout=30) as s:
        for i in range(20):
            s.submit(make_run({f"r{i}{m}": dict(fields) for m in "abc"}, name=f"r{i}"))
        done = [await asyncio.wait_for(s.wait("ns", f"r{i}"), 30) for i in range(20)]
    for run in done:
        assert run.status is not None
        assert run.status.phase == "Successful", run.status.message
        for result in run.status.metric_results:
            assert result.count == 2
            assert len(result.measurements) == 2
    assert source.attempts == {name: 2 for name in script}


def secret_run() -> tuple[AnalysisRun, DictSecrets]:
    """A one-measurement run whose URL carries the secret "s3cret", and its secrets."""
    run = make_run(
        {"m": {"count": 1}},
        args=[{"name": "token", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}}],
    )
    run.spec.metrics[0].provider = {"web": {"url": SCRIPTED_URL + "m?t={{args.token}}"}}
    return run, DictSecrets({("api", "token"): "s3cret"})


class BuggySource(ScriptedSource):
    """A provider with a bug: its exception text carries the (secret-bearing) URL."""

    async def measure(self, kind: str, config: Any) -> Any:
        raise KeyError(f"no handler for {config['url']}")


async def test_a_provider_bug_is_an_error_measurement_and_a_logged_traceback_without_secrets() -> (
    None
):
    run, secrets = secret_run()
    with structlog.testing.capture_logs() as logs:
        async with Scheduler(
            BuggySource({"m": "S"}), RecordingObserver(), secrets=secrets, error_retry=FAST
        ) as s:
            s.submit(run)
            done = await asyncio.wait_for(s.wait("ns", "run"), 30)
    assert done.status is not None
    assert done.status.phase == "Error"  # past the consecutive-error limit, as in Argo
    measurements = done.status.metric_results[0].measurements
    assert {m.phase for m in measurements} == {"Error"}
    assert all(m.message.startswith("KeyError: ") for m in measurements)
    bugs = [entry for entry in logs if entry["event"] == "measurement bug"]
    assert len(bugs) == len(measurements)
    bug = bugs[0]
    assert bug["metric"] == "m" and bug["log_level"] == "error"
    assert "Traceback" in bug["traceback"] and "in measure" in bug["traceback"]
    assert "s3cret" not in repr(logs) and "*****" in bug["error"]


class FailingObserver(RecordingObserver):
    """A store that fails to record: its error quotes the resolved (secret-bearing) URL."""

    async def on_change(self, run: AnalysisRun, change: Any) -> None:
        if change.measurements:
            raise RuntimeError(f"could not store the measurement of {SCRIPTED_URL}m?t=s3cret")
        await super().on_change(run, change)


async def test_a_run_stopped_by_its_observer_is_logged_with_traceback_and_without_secrets() -> None:
    run, secrets = secret_run()
    with structlog.testing.capture_logs() as logs:
        async with Scheduler(
            ScriptedSource({"m": "S"}), FailingObserver(), secrets=secrets, error_retry=FAST
        ) as s:
            s.submit(run)
            with pytest.raises(RuntimeError, match="could not store"):
                await asyncio.wait_for(s.wait("ns", "run"), 30)
    [stopped] = [entry for entry in logs if entry["event"] == "run stopped"]
    assert (stopped["namespace"], stopped["run"], stopped["log_level"]) == ("ns", "run", "error")
    assert stopped["error"].startswith("RuntimeError: could not store")
    assert "Traceback" in stopped["traceback"] and "in on_change" in stopped["traceback"]
    assert "s3cret" not in repr(logs) and "*****" in stopped["error"]
