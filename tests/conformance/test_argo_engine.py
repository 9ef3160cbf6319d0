"""argo-assess.json: the analysis controller's assessment, scheduling, TTL and GC rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from analysisd.engine import assess, run
from analysisd.spec import AnalysisRunSpec, AnalysisRunStatus, Measurement, Metric, MetricResult
from tests.vectors import case_id, load_argo

FILE = "argo-assess.json"
VECTORS = load_argo(FILE)
NOW = datetime(2026, 8, 17, 12, 0, 0, tzinfo=UTC)
COUNTERS = ("count", "successful", "failed", "inconclusive", "error")
STREAKS = {"consecutiveError": "consecutive_error", "consecutiveSuccess": "consecutive_success"}


def cases(section: str) -> list[Any]:
    return [pytest.param(c, id=case_id(FILE, section, c)) for c in VECTORS[section]]


def at(seconds: float | None) -> datetime | None:
    return None if seconds is None else NOW + timedelta(seconds=seconds)


def metric_of(name: str, fields: dict[str, Any] | None) -> Metric:
    data = {"provider": {"web": {"url": "http://127.0.0.1/"}}, **(fields or {}), "name": name}
    return Metric.model_validate(data)


def measurement_of(item: str | dict[str, Any], message: str = "") -> Measurement:
    if isinstance(item, str):
        # Vector convention: "Running" means in flight, i.e. no finishedAt.
        finished = None if item == "Running" else NOW
        return Measurement.model_validate(
            {"phase": item, "startedAt": NOW, "finishedAt": finished, "message": message}
        )
    return Measurement.model_validate(
        {
            "phase": item["phase"],
            "startedAt": at(item.get("startedAt")),
            "finishedAt": at(item.get("finishedAt")),
            "resumeAt": at(item.get("resumeAt")),
        }
    )


def result_of(name: str, data: dict[str, Any], dry_run: bool = False) -> MetricResult:
    items = data.get("measurements", [])
    measurements = [measurement_of(m) for m in items]
    if measurements and "last_measurement_message" in data:
        measurements[-1].message = data["last_measurement_message"]
    fields: dict[str, Any] = {k: data.get(k, 0) for k in (*COUNTERS, *STREAKS)}
    return MetricResult.model_validate(
        {
            "name": name,
            "phase": data.get("phase", "Running" if measurements else "Pending"),
            "message": data.get("message", ""),
            "measurements": measurements,
            "dryRun": dry_run,
            **fields,
        }
    )


def counters_of(result: MetricResult) -> dict[str, int]:
    values = {k: getattr(result, k) for k in COUNTERS}
    values.update({alias: getattr(result, attr) for alias, attr in STREAKS.items()})
    return values


@pytest.mark.parametrize("case", cases("metric_phase"))
def test_metric_phase(case: dict[str, Any]) -> None:
    metric = metric_of("m", case["metric"])
    result = result_of("m", case["result"])
    assert assess.assess_metric(metric, result, case["terminating"]) == case["expect"]
    if "expect_message" in case:
        _, message = assess.failure_inconclusive_or_error(metric, result)
        assert message == case["expect_message"]


@pytest.mark.parametrize("case", cases("measurement_sequences"))
def test_measurement_sequence(case: dict[str, Any]) -> None:
    metric = metric_of("m", case["metric"])
    result = MetricResult(name="m", phase="Running")
    completed_at: int | None = None
    for index, phase in enumerate(case["measurements"], start=1):
        assert completed_at is None, "a completed metric takes no further measurements"
        result.measurements.append(measurement_of(phase))
        assess.apply_counters(result, phase)
        result.phase = assess.assess_metric(metric, result, terminating=False)
        if assess.completed(result.phase):
            completed_at = index
    if case["terminate_after_last"]:
        result.phase = assess.assess_metric(metric, result, terminating=True)
    assert result.phase == case["expect"]
    assert completed_at == case["completes_after_measurement"]
    assert counters_of(result) == case["expect_counters"]


@pytest.mark.parametrize("case", cases("measurement_counters"))
def test_measurement_counters(case: dict[str, Any]) -> None:
    result = result_of("m", case["before"])
    assess.apply_counters(result, case["measurement"])
    expected = {k: case["expect"].get(k, 0) for k in counters_of(result)}
    assert counters_of(result) == expected


@pytest.mark.parametrize("case", cases("run_phase"))
def test_run_phase(case: dict[str, Any]) -> None:
    metrics = [metric_of(m["name"], m.get("spec")) for m in case["metrics"]]
    dry_run = frozenset(m["name"] for m in case["metrics"] if m.get("dryRun"))
    status = AnalysisRunStatus(phase="Running", startedAt=NOW)
    for m in case["metrics"]:
        if m["result"] is not None:
            status.metric_results.append(result_of(m["name"], m["result"], bool(m.get("dryRun"))))
    outcome = assess.assess_run(status, metrics, dry_run, case["terminate"], NOW)
    assert outcome.phase == case["expect"]
    assert outcome.message == case["expect_message"]
    phases = {r.name: r.phase for r in status.metric_results}
    assert phases == case["expect_metric_phases"]
    assert status.run_summary.model_dump() == case["expect_run_summary"]
    assert status.dry_run_summary is not None
    assert status.dry_run_summary.model_dump() == case["expect_dry_run_summary"]
    messages = {r.name: r.message for r in status.metric_results}
    for name, message in case.get("expect_metric_messages", {}).items():
        assert messages[name] == message


class _VectorSecrets:
    def __init__(self, secret: dict[str, Any] | None) -> None:
        self._secret = secret

    def get(self, name: str, key: str) -> str | None:
        if self._secret is None or self._secret["name"] != name:
            return None
        value = self._secret["data"].get(key)
        return None if value is None else str(value)


def _run_error_spec(case: dict[str, Any], variant: dict[str, Any]) -> AnalysisRunSpec:
    args = []
    for arg in case.get("args", []):
        ref = arg.get("valueFrom", {}).get("secretKeyRef")
        if ref is not None and "key" not in ref:
            ref = {**ref, "key": ""}  # the vector leaves key out; only the name matters
            arg = {**arg, "valueFrom": {"secretKeyRef": ref}}
        args.append(arg)
    metrics = case.get("metrics") or [
        {"name": "m", "provider": {"web": {"url": "http://127.0.0.1/{{args." + a["name"] + "}}"}}}
        for a in args
    ]
    return AnalysisRunSpec.model_validate(
        {
            "metrics": metrics,
            "args": args,
            "dryRun": variant.get("dryRun", case.get("dryRun", [])),
            "measurementRetention": case.get("measurementRetention", []),
            "terminate": case.get("terminate", False),
        }
    )


def _run_error_params() -> list[Any]:
    params = []
    for c in VECTORS["run_errors"]:
        for i, variant in enumerate(c.get("variants", [{}])):
            suffix = f"[{i}]" if "variants" in c else ""
            params.append(pytest.param(c, variant, id=case_id(FILE, "run_errors", c) + suffix))
    return params


@pytest.mark.parametrize(("case", "variant"), _run_error_params())
def test_run_error(case: dict[str, Any], variant: dict[str, Any]) -> None:
    from analysisd.engine.measure import RunSetupError, prepare_run

    spec = _run_error_spec(case, variant)
    with pytest.raises(RunSetupError) as caught:
        prepare_run(spec, _VectorSecrets(case.get("secret")))
    assert caught.value.phase == case["expect"]
    if "expect_message" in case:
        assert str(caught.value) == case["expect_message"]
    if "expect_error" in case:
        assert str(caught.value) == f"Unable to resolve metric arguments: {case['expect_error']}"


def _scheduling_inputs(case: dict[str, Any]) -> tuple[list[Metric], AnalysisRunStatus]:
    if "metric" in case:
        specs = {"m": case["metric"]}
        results = {"m": case["result"]} if case.get("result") is not None else {}
    else:
        specs = case["metrics"]
        results = case.get("results", {})
    metrics = [metric_of(name, spec) for name, spec in specs.items()]
    status = AnalysisRunStatus(phase="Running", startedAt=at(case.get("run_startedAt")))
    for name, data in results.items():
        status.metric_results.append(result_of(name, data))
    return metrics, status


@pytest.mark.parametrize("case", cases("scheduling"))
def test_scheduling(case: dict[str, Any]) -> None:
    metrics, status = _scheduling_inputs(case)
    # run.plan is what the scheduler asks: the tasks due now, and when to wake next
    # with those tasks in flight (Argo takes them before calculateNextReconcileTime).
    tasks, wake = run.plan(metrics, status, NOW)
    if "expect_task" in case:
        kinds = [("resume" if t.resume else "new") for t in tasks]
        assert kinds == ([] if case["expect_task"] is None else [case["expect_task"]])
    if "expect_tasks" in case:
        assert [t.metric.name for t in tasks] == case["expect_tasks"]
    if "expect_next_reconcile" in case:
        assert wake == at(case["expect_next_reconcile"])


@pytest.mark.parametrize("case", cases("ttl"))
def test_ttl(case: dict[str, Any]) -> None:
    from analysisd.spec import TTLStrategy

    ttl = TTLStrategy.model_validate(case["ttlStrategy"])
    expired = assess.ttl_expired(ttl, case["phase"], at(case["completedAt"]), NOW)
    # A run already being deleted is not deleted again.
    delete = expired and not case.get("deletionTimestamp_set", False)
    assert delete == case["expect_delete"]


@pytest.mark.parametrize("case", cases("measurement_gc"))
def test_measurement_gc(case: dict[str, Any]) -> None:
    status = AnalysisRunStatus(phase="Running")
    for name, values in case["measurement_values"].items():
        result = MetricResult(name=name, count=len(values), successful=len(values))
        result.measurements = [
            Measurement.model_validate({"phase": "Successful", "value": v, "finishedAt": NOW})
            for v in values
        ]
        status.metric_results.append(result)
    assess.trim_measurements(status, case["retention"], case["default_limit"])
    kept = {r.name: [m.value for m in r.measurements] for r in status.metric_results}
    assert kept == case["expect"]
    originals = case["measurement_values"].values()
    for result, values in zip(status.metric_results, originals, strict=True):
        assert result.count == len(values), "trimming never changes counters"
