"""Several replicas on one PostgreSQL database: each runs only the runs it leased.

`Replicas` is the lease loop. At start it claims free runs (unowned, or a dead
replica's whose lease expired) and hands them to the scheduler, which resumes
each from its stored status. Then every lease/3 (jittered, so replicas do not
claim in step) it renews its leases in one statement, stops locally every run it
lost, releases runs the scheduler no longer runs (an observer error stopped them)
so that someone resumes them, and claims again. A pass that fails (the database
is away for a moment) is retried sooner, backing off up to one period.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import structlog

from analysisd.engine.scheduler import Scheduler, SchedulerClosed
from analysisd.loops import LoopHealth, LoopTask
from analysisd.spec import AnalysisRun
from analysisd.store import Leasing

__all__ = ["Replicas"]

log = structlog.get_logger(__name__)


class Replicas:
    """Claims, renews and releases this replica's run leases for `scheduler()`.

    `scheduler` is asked each time (None once it is shut down: nothing more is claimed).
    """

    def __init__(
        self,
        leasing: Leasing,
        scheduler: Callable[[], Scheduler | None],
        *,
        lease_duration: float,
    ) -> None:
        self._leases = leasing
        self._scheduler = scheduler
        self._period = lease_duration / 3
        self.health = LoopHealth("lease-loop")
        self._runner = LoopTask(self.health, self._loop)

    async def claim(self, batch: int = 100) -> int:
        """Claim free runs (unowned, or a dead replica's with an expired lease); resume them."""
        claimed = 0
        while (scheduler := self._scheduler()) is not None:
            runs = await self._leases.claim_runs(batch)
            for run in runs:
                # A stale local copy (we lost the run and got it back): the stored status wins.
                scheduler.forget(run.namespace, run.name)
                try:
                    scheduler.submit(AnalysisRun.model_validate_json(run.manifest))
                except SchedulerClosed:
                    return claimed  # shutting down; release_leases hands it back
                claimed += 1
                log.info("claimed", namespace=run.namespace, run=run.name, epoch=run.epoch)
            if len(runs) < batch:
                break
        return claimed

    async def renew(self) -> list[tuple[str, str]]:
        """Extend our leases; stop locally every run another replica holds now."""
        lost = await self._leases.renew_leases()
        for namespace, name in lost:
            log.warning("lease lost", namespace=namespace, run=name)
            scheduler = self._scheduler()
            if scheduler is not None:
                scheduler.forget(namespace, name)
        return lost

    async def release_orphans(self) -> int:
        """Runs we hold that the scheduler no longer runs (an observer error stopped them,
        e.g. the database was away): release them so a claim resumes them from the store,
        instead of renewing a lease on a run nobody runs."""
        scheduler = self._scheduler()
        if scheduler is None:
            return 0
        orphans = [k for k in self._leases.held_leases() if not scheduler.is_active(*k)]
        if not orphans:
            return 0
        released = await self._leases.release_runs(orphans)
        log.warning("released stopped runs", runs=released)
        return released

    def lost(self, namespace: str, name: str) -> None:
        """The store refused a change of this run: another replica holds it now."""
        self._leases.forget_lease(namespace, name)
        scheduler = self._scheduler()
        if scheduler is not None:
            scheduler.forget(namespace, name)

    def start(self) -> None:
        self._runner.start()

    async def stop(self) -> None:
        await self._runner.stop()

    async def release(self) -> None:
        """Hand every run we hold over at once (after the scheduler drained)."""
        try:
            released = await self._leases.release_leases()
            log.info("released leases", runs=released)
        except Exception as exc:  # they expire on their own after the lease
            log.warning("release leases", error=repr(exc))

    async def release_deliveries(self) -> None:
        """Sends cut short by the stop: let the other replicas take them at once."""
        try:
            await self._leases.release_deliveries()
        except Exception as exc:  # they are taken after their claim expires
            log.warning("release deliveries", error=repr(exc))

    async def _loop(self) -> None:
        wait = self._period
        while True:
            # Jitter spreads replicas' claims apart, so one does not grab every expired run.
            await asyncio.sleep(wait * random.uniform(0.9, 1.1))
            try:
                await self.renew()
                await self.release_orphans()
                await self.claim()
            except Exception as exc:
                # The database may be away for a moment: try again sooner than a period
                # (leases expire), backing off up to one period.
                wait = min(self._period, self.health.failed(exc))
            else:
                self.health.succeeded()
                wait = self._period
