"""Scripted provider, verdicts and observer shared by the engine and scheduler tests.

A script gives, per metric, the outcome of each attempt in order: "S", "F", "I"
(a reading that the metric's real conditions judge Successful, Failed or
Inconclusive), "E" (the provider raises), "H" (the provider hangs until the
measurement timeout). Attempts past the script's end repeat its last outcome.

The runs are ordinary Web metrics (they pass the real preparation: arguments,
validation, compiled conditions); only the source behind them is scripted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from analysisd.engine.observer import RunChange
from analysisd.spec import AnalysisRun, AnalysisRunSpec, ObjectMeta
from providers.base import ProviderHTTPError, Reading

VERDICTS = {"S": "Successful", "F": "Failed", "I": "Inconclusive"}
# The reading's result for each scripted verdict, and the conditions that judge it so.
RESULTS = {"S": 1.0, "F": 0.0, "I": 0.5}
SUCCESS_CONDITION = "result == 1"
FAILURE_CONDITION = "result == 0"
SCRIPTED_URL = "http://scripted.invalid/"


def scripted_metric(kind: str, config: Mapping[str, Any]) -> str:
    """The metric name a scripted Web block stands for."""
    url = str(config["url"])
    if kind != "web" or not url.startswith(SCRIPTED_URL):
        raise AssertionError(f"not a scripted block: {kind} {config}")
    return url.removeprefix(SCRIPTED_URL).partition("?")[0]


class ScriptedSource:
    """A MeasurementSource whose answers follow a per-metric script."""

    def __init__(self, script: Mapping[str, str], start: Mapping[str, int] | None = None) -> None:
        self.script = dict(script)
        self.attempts: dict[str, int] = dict(start or {})
        self.concurrent = 0
        self.max_concurrent = 0
        self.calls = 0
        self.started = asyncio.Event()  # set once any measurement is in flight

    async def measure(self, kind: str, config: Mapping[str, Any]) -> Reading:
        name = scripted_metric(kind, config)
        index = self.attempts.get(name, 0)
        self.attempts[name] = index + 1
        outcomes = self.script[name]
        outcome = outcomes[min(index, len(outcomes) - 1)]
        self.calls += 1
        self.concurrent += 1
        self.max_concurrent = max(self.max_concurrent, self.concurrent)
        self.started.set()
        try:
            await asyncio.sleep(0)
            if outcome == "H":
                await asyncio.Event().wait()  # hangs until the scheduler's timeout
            if outcome == "E":
                raise ProviderHTTPError(
                    f"fake: GET http://fake/{name} returned 500: boom token=s3cret",
                    status=500,
                    body="boom",
                )
            return Reading(result=RESULTS[outcome], value=outcome)
        finally:
            self.concurrent -= 1


@dataclass
class RecordingObserver:
    """Keeps every change and a deep copy of the run at each one."""

    changes: list[RunChange] = field(default_factory=list)
    snapshots: list[AnalysisRun] = field(default_factory=list)
    fail_after: int | None = None
    measured: asyncio.Event = field(default_factory=asyncio.Event)

    async def on_change(self, run: AnalysisRun, change: RunChange) -> None:
        self.changes.append(change)
        self.snapshots.append(run.model_copy(deep=True))
        if change.measurements:
            self.measured.set()
        if self.fail_after is not None and len(self.changes) > self.fail_after:
            raise RuntimeError("store is down")


def make_run(
    metrics: Mapping[str, Mapping[str, Any]],
    name: str = "run",
    namespace: str = "ns",
    **spec: Any,
) -> AnalysisRun:
    """An AnalysisRun whose Web metrics are answered by a ScriptedSource."""
    items = [
        {
            "name": metric_name,
            "successCondition": SUCCESS_CONDITION,
            "failureCondition": FAILURE_CONDITION,
            "provider": {"web": {"url": SCRIPTED_URL + metric_name}},
            **fields,
        }
        for metric_name, fields in metrics.items()
    ]
    return AnalysisRun(
        metadata=ObjectMeta(name=name, namespace=namespace),
        spec=AnalysisRunSpec.model_validate({"metrics": items, **spec}),
    )
