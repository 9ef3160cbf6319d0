"""What the handlers need, handed in by the app factory (no globals)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web
from prometheus_client import CollectorRegistry

from analysisd.config import Settings
from analysisd.engine.measure import PreparedRun
from analysisd.secrets import SecretSource
from analysisd.spec import AnalysisRun, AnalysisRunStatus
from analysisd.store import Store


class RunDriver(Protocol):
    """The scheduler as the API sees it."""

    def submit(
        self, run: AnalysisRun, prepared: PreparedRun | None = None, *, started: bool = False
    ) -> None: ...

    def first_status(self, run: AnalysisRun, prepared: PreparedRun) -> AnalysisRunStatus | None:
        """A new run's status after its first step, when that step only starts it (stored
        with the run, which is then submitted `started`): see engine.runstate.first_status."""
        ...

    def terminate(self, namespace: str, name: str) -> bool: ...


class EventHub:
    """Live run events for server-sent-event watchers, fanned out per run."""

    def __init__(self, queue_size: int = 1000) -> None:
        self._watchers: dict[tuple[str, str], set[asyncio.Queue[tuple[str, Any]]]] = {}
        self._queue_size = queue_size

    def subscribe(self, namespace: str, name: str) -> asyncio.Queue[tuple[str, Any]]:
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(self._queue_size)
        self._watchers.setdefault((namespace, name), set()).add(queue)
        return queue

    def unsubscribe(self, namespace: str, name: str, queue: asyncio.Queue[tuple[str, Any]]) -> None:
        watchers = self._watchers.get((namespace, name))
        if watchers is not None:
            watchers.discard(queue)
            if not watchers:
                del self._watchers[(namespace, name)]

    def publish(self, namespace: str, name: str, event: str, data: Any) -> None:
        for queue in self._watchers.get((namespace, name), ()):
            if queue.full():
                # A watcher that stopped reading loses its oldest events, never blocks runs.
                queue.get_nowait()
            queue.put_nowait((event, data))


@dataclass
class ApiContext:
    settings: Settings
    store: Store
    driver: RunDriver
    secrets: SecretSource
    hub: EventHub
    metrics_registry: CollectorRegistry
    ready: Callable[[], bool] = lambda: True
    extra: dict[str, Any] = field(default_factory=dict)


CONTEXT: web.AppKey[ApiContext] = web.AppKey("analysisd_context", ApiContext)


def context(request: web.Request) -> ApiContext:
    return request.app[CONTEXT]
