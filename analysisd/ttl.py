"""TTL collection: completed runs past their spec.ttlStrategy are deleted, as Argo does.

`TtlCollector` looks every `interval` seconds; a pass that fails (the store is
away for a moment) is retried, backing off up to one interval, and reported to
its LoopHealth (/readyz names it after a few failures).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import structlog

from analysisd.engine.assess import ttl_expired
from analysisd.loops import LoopHealth, LoopTask
from analysisd.spec import TTLStrategy
from analysisd.store import Store

__all__ = ["TtlCollector"]

log = structlog.get_logger(__name__)


class TtlCollector:
    def __init__(self, store: Store, interval: float) -> None:
        self._store = store
        self._interval = interval
        self.health = LoopHealth("ttl-collector")
        self._runner = LoopTask(self.health, self._loop)

    async def collect_expired(self, now: datetime | None = None) -> int:
        """Delete completed runs past their spec.ttlStrategy; how many were deleted."""
        moment = now if now is not None else datetime.now(UTC)
        deleted = 0
        for record in await self._store.completed_runs_with_ttl():
            raw_ttl = record.body.get("spec", {}).get("ttlStrategy")
            completed_at = (record.status or {}).get("completedAt")
            if not raw_ttl or not completed_at:
                continue
            finished = datetime.fromisoformat(str(completed_at).replace("Z", "+00:00"))
            if not ttl_expired(TTLStrategy.model_validate(raw_ttl), record.phase, finished, moment):
                continue
            if await self._store.delete_run(record.namespace, record.name):
                deleted += 1
                log.info("deleted after ttl", namespace=record.namespace, run=record.name)
        return deleted

    def start(self) -> None:
        self._runner.start()

    async def stop(self) -> None:
        await self._runner.stop()

    async def _loop(self) -> None:
        wait = self._interval
        while True:
            await asyncio.sleep(wait)
            try:
                await self.collect_expired()
            except Exception as exc:
                # The database may be away for a moment: try again, backing off up to a period.
                wait = min(self._interval, self.health.failed(exc))
            else:
                self.health.succeeded()
                wait = self._interval
