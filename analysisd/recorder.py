"""The observer the daemon gives the scheduler: store, events, logs, metrics.

`StoreObserver.on_change` writes one transaction per run change (the status, the
new measurements and the outbox rows announcing them), then publishes the change
to the API's event hub, logs it and counts it. A change the store refuses because
another replica holds the run (LeaseLost), or because the run was deleted, stops
the run here: it never happened.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import structlog

from analysisd.config import Subscription
from analysisd.engine.observer import RunChange
from analysisd.outbox import events_for_change, targets_for
from analysisd.spec import AnalysisRun
from analysisd.store import LeaseLost, Store, StoredMeasurement
from analysisd.telemetry import DaemonMetrics

__all__ = ["StoreObserver"]

log = structlog.get_logger(__name__)


class Publisher(Protocol):
    """Where changes are announced live (the API's EventHub)."""

    def publish(self, namespace: str, name: str, event: str, data: Any) -> None: ...


class StoreObserver:
    """RunObserver: one transaction per change (status, measurements, outbox), then publish."""

    def __init__(
        self,
        store: Store,
        *,
        subscriptions: Iterable[Subscription],
        source: str,
        hub: Publisher,
        metrics: DaemonMetrics,
        on_committed: Callable[[], None],
        on_lease_lost: Callable[[str, str], None] = lambda namespace, name: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._subscriptions = tuple(subscriptions)
        self._source = source
        self._hub = hub
        self._metrics = metrics
        self._on_committed = on_committed
        self._on_lease_lost = on_lease_lost
        self._clock = clock

    async def on_change(self, run: AnalysisRun, change: RunChange) -> None:
        namespace = run.metadata.namespace or "default"
        name = run.metadata.name
        status = run.status
        assert status is not None, "the scheduler reports runs with a status"
        # As text, straight from the model (no dict made and dumped; the status holds no
        # float nor free-form value, so the text is the JSON that dict would have given).
        status_text = status.model_dump_json(by_alias=True, exclude_none=True)
        rows = events_for_change(
            run,
            change,
            targets_for(run, self._subscriptions),
            now=self._clock(),
            source=self._source,
        )
        stored = [
            StoredMeasurement(
                new.metric,
                new.measurement.phase,
                new.dry_run,
                new.measurement.model_dump(mode="json", by_alias=True, exclude_none=True),
            )
            for new in change.measurements
        ]
        try:
            written = await self._store.record_change(
                namespace,
                name,
                status=status_text,
                phase=status.phase,
                completed=change.completed,
                measurements=stored,
                outbox=rows,
                uid=run.metadata.uid,
            )
        except LeaseLost:
            # Another replica holds the run now and resumes it from what is stored;
            # this change (and its measurement) was not written and never happened.
            log.warning("lease lost", namespace=namespace, run=name)
            self._on_lease_lost(namespace, name)
            return
        if not written:
            # Deleted while it ran (perhaps through another replica): stop it here too.
            self._on_lease_lost(namespace, name)
            return
        if rows:
            self._on_committed()
        self._metrics.observe_change(run, change)
        bound = log.bind(namespace=namespace, run=name)
        for new, record in zip(change.measurements, stored, strict=True):
            bound.info(
                "measurement",
                metric=new.metric,
                phase=new.measurement.phase,
                value=new.measurement.value,
            )
            self._hub.publish(namespace, name, "measurement", {"metric": new.metric, **record.body})
        if change.phase is not None and change.phase != change.previous_phase:
            bound.info("phase", phase=change.phase, previous=change.previous_phase)
            self._hub.publish(
                namespace,
                name,
                "phase",
                {"phase": change.phase, "previousPhase": change.previous_phase},
            )
        if change.completed:
            bound.info("completed", phase=status.phase, message=status.message)
            status_json = status.model_dump(mode="json", by_alias=True, exclude_none=True)
            self._hub.publish(namespace, name, "completed", status_json)
