"""The observer writes a run's status as JSON text made straight from the model: what is
stored (and what GET answers) is the status as Argo shows it, and a completed run's status
is still published as that mapping."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from analysisd.engine.observer import NewMeasurement, RunChange
from analysisd.recorder import StoreObserver
from analysisd.spec import AnalysisRun, Measurement
from analysisd.store import SqliteStore
from analysisd.telemetry import DaemonMetrics


class Hub:
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def publish(self, namespace: str, name: str, event: str, data: Any) -> None:
        self.events.append((event, data))


def a_run() -> AnalysisRun:
    return AnalysisRun.model_validate(
        {
            "metadata": {"name": "r", "namespace": "ns", "uid": "u"},
            "spec": {"metrics": [{"name": "m", "provider": {"web": {"url": "http://x"}}}]},
        }
    )


async def test_the_stored_status_is_the_models_and_completion_publishes_it(
    tmp_path: Path,
) -> None:
    hub = Hub()
    async with SqliteStore(tmp_path / "s.db") as store:
        run = a_run()
        body = run.model_dump(mode="json", by_alias=True, exclude_none=True)
        await store.create_run("ns", "r", "u", body, None, "Pending", {}, "2026-01-01T00:00:00Z")
        observer = StoreObserver(
            store,
            subscriptions=(),
            source="test",
            hub=hub,
            metrics=DaemonMetrics(CollectorRegistry()),
            on_committed=lambda: None,
        )
        at = datetime(2026, 1, 1, tzinfo=UTC)
        status = {
            "phase": "Running",
            "message": "ünïcode ✓",
            "startedAt": at,
            "metricResults": [
                {
                    "name": "m",
                    "phase": "Running",
                    "count": 1,
                    "measurements": [{"phase": "Successful", "value": "1.5", "startedAt": at}],
                }
            ],
        }
        run = AnalysisRun.model_validate({**run.model_dump(by_alias=True), "status": status})
        assert run.status is not None
        await observer.on_change(run, RunChange(previous_phase="Pending", phase="Running"))
        expected = run.status.model_dump(mode="json", by_alias=True, exclude_none=True)
        record = await store.get_run("ns", "r")
        assert record is not None and record.status == expected and record.phase == "Running"
        text = await store.run_manifest("ns", "r")
        assert text is not None and json.loads(text) == {**body, "status": expected}

        run.status.phase = "Successful"
        measurement = Measurement(phase="Successful", value="2", startedAt=at, finishedAt=at)
        change = RunChange(
            measurements=(NewMeasurement("m", measurement),),
            previous_phase="Running",
            phase="Successful",
            completed=True,
        )
        await observer.on_change(run, change)
        expected = run.status.model_dump(mode="json", by_alias=True, exclude_none=True)
        record = await store.get_run("ns", "r")
        assert record is not None and record.status == expected and record.completed
        assert hub.events[-1] == ("completed", expected)
        assert [event for event, _ in hub.events] == ["phase", "measurement", "phase", "completed"]
