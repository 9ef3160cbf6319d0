"""The app factory: store, providers, scheduler, API, outbox deliverer and telemetry.

`Daemon` owns every piece and their order. Start: open the store, build the
provider registry and scheduler, start the deliverer, resume every unfinished
run from its stored status, then accept HTTP. Stop (SIGTERM): stop accepting
HTTP, let the scheduler finish in-flight measurements within the grace period
(each is persisted by the observer as it lands), release run leases, stop the
deliverer, close the providers, the HTTP runner and finally the store.

Replicas (PostgreSQL): a replica runs only the runs it leased. At start it claims
free runs; a lease loop (every lease/3, jittered) renews its leases in one
statement, stops locally any run it lost, and claims runs whose lease expired (a
dead replica's), which the scheduler resumes from their stored status.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import random
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from analysisd.api.app import build_app
from analysisd.api.context import ApiContext, EventHub
from analysisd.config import ConfigError, Settings, Subscription
from analysisd.engine.assess import ttl_expired
from analysisd.engine.measure import MeasurementSource
from analysisd.engine.observer import RunChange
from analysisd.engine.scheduler import Scheduler, SchedulerClosed
from analysisd.loops import LoopHealth, problems
from analysisd.outbox import Deliverer, DeliveryPolicy, events_for_change, targets_for
from analysisd.secrets import SecretSource
from analysisd.spec import AnalysisRun, TTLStrategy
from analysisd.store import (
    LeaseLost,
    Leasing,
    Store,
    StoredMeasurement,
    leasing_of,
    open_store,
)
from analysisd.teams import Teams
from analysisd.telemetry import DaemonMetrics

log = structlog.get_logger(__name__)


def build_secrets(settings: Settings) -> SecretSource:
    """The daemon's secrets: DIR/<namespace>/<secret>/<key>, env secrets where granted."""
    return Teams(settings).secrets


class StoreObserver:
    """RunObserver: one transaction per change (status, measurements, outbox), then publish."""

    def __init__(
        self,
        store: Store,
        *,
        subscriptions: Iterable[Subscription],
        source: str,
        hub: EventHub,
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
        status_json = status.model_dump(mode="json", by_alias=True, exclude_none=True)
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
                status=status_json,
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
            self._hub.publish(namespace, name, "completed", status_json)


def default_source(
    secrets: SecretSource,
    registry: CollectorRegistry,
    settings: Settings | None = None,
    scopes: Callable[[str], Any] | None = None,
) -> Any:
    from providers.registry import LimitsConfig, ProviderRegistry

    providers = settings.providers if settings is not None else {}
    limits = LimitsConfig.from_mapping(providers.get("limits") or {})
    return ProviderRegistry(
        secrets=secrets.get,
        metrics_registry=registry,
        limits=limits,
        scopes=scopes,
        settings=providers,  # e.g. providers.kubernetes, the job provider's cluster
    )


def is_loopback(host: str) -> bool:
    """A listen address only this machine can reach ("localhost", 127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost, or "" (every address)


def check_exposure(settings: Settings) -> None:
    """An API without tokens is anyone's: beyond loopback, only when asked for."""
    if settings.tokens or settings.allow_anonymous or is_loopback(settings.host):
        return
    raise ConfigError(
        f"host {settings.host!r} is reachable beyond this machine and no API tokens are "
        "configured: anyone could create, read and delete runs. Configure `tokens` in the "
        "settings file, or pass --allow-anonymous (allowAnonymous: true) to serve an open API"
    )


def default_replica_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Daemon:
    """Everything `analysisd serve` runs, with one start and one stop path."""

    def __init__(
        self,
        settings: Settings,
        *,
        source: MeasurementSource | None = None,
        metrics_registry: CollectorRegistry | None = None,
        store: Store | None = None,
    ) -> None:
        self.settings = settings
        self.instance = settings.replica_id or default_replica_id()
        self.registry = metrics_registry if metrics_registry is not None else CollectorRegistry()
        self.metrics = DaemonMetrics(self.registry)
        # Per-namespace secrets, egress and caps (DESIGN.md §7.1).
        self.teams = Teams(settings)
        if settings.port:
            self.teams.listening(settings.host, settings.port)
        self.secrets: SecretSource = self.teams.secrets
        self.hub = EventHub()
        # A given store (tests wrap one to inject faults) is used as it is, unopened.
        self.store = (
            store
            if store is not None
            else open_store(
                settings.store, owner=self.instance, lease_seconds=settings.lease_duration
            )
        )
        # Runs leased among replicas (PostgreSQL), or None: this daemon holds every run.
        self.leasing: Leasing | None = leasing_of(self.store)
        self._lease_task: asyncio.Task[None] | None = None
        self._ttl_task: asyncio.Task[None] | None = None
        self._lease_health = LoopHealth("lease-loop")
        self._ttl_health = LoopHealth("ttl-collector")
        self._loops: list[LoopHealth] = []  # the loops running now, for /readyz
        self._given_source = source
        self._source: Any = None
        self.scheduler: Scheduler | None = None
        self.deliverer: Deliverer | None = None
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._ready = False
        self._draining = False
        self.resumed = 0
        self.port: int = settings.port

    async def start(self) -> None:
        check_exposure(self.settings)
        await self.store.open()
        try:
            await self._start_rest()
        except BaseException:
            await self.aclose()
            raise

    async def _start_rest(self) -> None:
        s = self.settings
        self._source = self._given_source or default_source(
            self.secrets, self.registry, s, self.teams.scope
        )
        self.deliverer = Deliverer(
            self.store,
            self.secrets,
            route=self.teams.webhook_route,
            policy=DeliveryPolicy(
                timeout=s.webhook_timeout,
                max_age=s.webhook_max_age,
                backoff_base=s.webhook_backoff_base,
                backoff_max=s.webhook_backoff_max,
                poll_interval=s.webhook_poll_interval,
            ),
            telemetry=self.metrics,
        )
        observer = StoreObserver(
            self.store,
            subscriptions=s.subscriptions,
            source=f"analysisd://{self.instance}",
            hub=self.hub,
            metrics=self.metrics,
            on_committed=self.deliverer.notify,
            on_lease_lost=self._lease_lost,
        )
        self.scheduler = Scheduler(
            self._source,
            observer,
            secrets=self.secrets,
            max_concurrency=s.max_concurrency,
            measurement_timeout=s.measurement_timeout,
            rate_of=lambda namespace: s.namespace(namespace).quota.measurements_per_second,
        )
        await self.scheduler.start()
        await self.deliverer.start()
        self._loops.append(self.deliverer.health)
        if self.leasing is not None:
            self.resumed = await self.claim()
            self._lease_task = self._lease_health.watch(
                asyncio.get_running_loop().create_task(self._lease_loop())
            )
            self._loops.append(self._lease_health)
        else:
            self.resumed = await self.resume()
        if s.ttl_check_interval > 0:
            self._ttl_task = self._ttl_health.watch(
                asyncio.get_running_loop().create_task(self._ttl_loop())
            )
            self._loops.append(self._ttl_health)
        ctx = ApiContext(
            settings=s,
            store=self.store,
            driver=self.scheduler,
            secrets=self.secrets,
            hub=self.hub,
            metrics_registry=self.registry,
            ready=lambda: self._ready,
            extra={
                "refresh_metrics": self.refresh_metrics,
                "loop_problems": self.loop_problems,
                "draining": lambda: self._draining,
            },
        )
        self._runner = web.AppRunner(
            build_app(ctx), handle_signals=False, access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, s.host, s.port)
        await self._site.start()
        addresses = self._runner.addresses
        if addresses:
            self.port = int(addresses[0][1])  # the real port when 0 was asked for
        for address in addresses:
            self.teams.listening(str(address[0]), int(address[1]))
        self._ready = True
        log.info(
            "serving",
            host=s.host,
            port=self.port,
            store=s.store.split("?")[0],
            resumed=self.resumed,
        )

    @property
    def _leases(self) -> Leasing:
        assert self.leasing is not None, "only a leasing store has leases"
        return self.leasing

    async def resume(self) -> int:
        """Hand every unfinished stored run back to the scheduler, exactly where it was."""
        assert self.scheduler is not None
        manifests = await self.store.unfinished_manifests()
        for text in manifests:
            self.scheduler.submit(AnalysisRun.model_validate_json(text))
        return len(manifests)

    async def claim(self, batch: int = 100) -> int:
        """Claim free runs (unowned, or a dead replica's with an expired lease) and resume them."""
        claimed = 0
        while self.scheduler is not None:
            runs = await self._leases.claim_runs(batch)
            for run in runs:
                # A stale local copy (we lost the run and got it back): the stored status wins.
                self.scheduler.forget(run.namespace, run.name)
                try:
                    self.scheduler.submit(AnalysisRun.model_validate_json(run.manifest))
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
            if self.scheduler is not None:
                self.scheduler.forget(namespace, name)
        return lost

    async def release_orphans(self) -> int:
        """Runs we hold that the scheduler no longer runs (an observer error stopped them,
        e.g. the database was away): release them so a claim resumes them from the store,
        instead of renewing a lease on a run nobody runs."""
        if self.scheduler is None:
            return 0
        scheduler = self.scheduler
        orphans = [k for k in self._leases.held_leases() if not scheduler.is_active(*k)]
        if not orphans:
            return 0
        released = await self._leases.release_runs(orphans)
        log.warning("released stopped runs", runs=released)
        return released

    def _lease_lost(self, namespace: str, name: str) -> None:
        self._leases.forget_lease(namespace, name)
        if self.scheduler is not None:
            self.scheduler.forget(namespace, name)

    def loop_problems(self) -> dict[str, str]:
        """The long-lived loops that are dead or failing, by name (for /readyz)."""
        return problems(self._loops)

    async def _lease_loop(self) -> None:
        period = self.settings.lease_duration / 3
        wait = period
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
                wait = min(period, self._lease_health.failed(exc))
            else:
                self._lease_health.succeeded()
                wait = period

    async def collect_expired(self, now: datetime | None = None) -> int:
        """Delete completed runs past their spec.ttlStrategy, as Argo's controller does."""
        moment = now if now is not None else datetime.now(UTC)
        deleted = 0
        for record in await self.store.completed_runs_with_ttl():
            raw_ttl = record.body.get("spec", {}).get("ttlStrategy")
            completed_at = (record.status or {}).get("completedAt")
            if not raw_ttl or not completed_at:
                continue
            finished = datetime.fromisoformat(str(completed_at).replace("Z", "+00:00"))
            if not ttl_expired(TTLStrategy.model_validate(raw_ttl), record.phase, finished, moment):
                continue
            if await self.store.delete_run(record.namespace, record.name):
                deleted += 1
                log.info("deleted after ttl", namespace=record.namespace, run=record.name)
        return deleted

    async def _ttl_loop(self) -> None:
        period = self.settings.ttl_check_interval
        wait = period
        while True:
            await asyncio.sleep(wait)
            try:
                await self.collect_expired()
            except Exception as exc:
                # The database may be away for a moment: try again, backing off up to a period.
                wait = min(period, self._ttl_health.failed(exc))
            else:
                self._ttl_health.succeeded()
                wait = period

    async def refresh_metrics(self) -> None:
        self.metrics.set_run_counts(await self.store.count_runs())
        counts = await self.store.outbox_counts()
        self.metrics.webhook_backlog.set(counts.get("pending", 0))
        if self.scheduler is not None:
            self.metrics.active_runs.set(self.scheduler.active_runs())
            self.metrics.set_active_by_namespace(self.scheduler.active_by_namespace())

    async def aclose(self) -> None:
        """Drain measurements within the grace period (HTTP still answers, /readyz says
        503 "draining", so a load balancer moves away instead of meeting refused
        connections), then stop accepting and close in order."""
        self._ready = False
        self._draining = True
        self._loops.clear()
        for task in (self._lease_task, self._ttl_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._lease_task = self._ttl_task = None
        if self.scheduler is not None:
            await self.scheduler.aclose(grace=self.settings.shutdown_grace)
            self.scheduler = None
            if self.leasing is not None:
                # Measurements in flight are written; hand the rest over at once.
                try:
                    released = await self.leasing.release_leases()
                    log.info("released leases", runs=released)
                except Exception as exc:  # they expire on their own after the lease
                    log.warning("release leases", error=repr(exc))
        if self.deliverer is not None:
            await self.deliverer.aclose()
            self.deliverer = None
            if self.leasing is not None:
                # Sends cut short by the stop: let the other replicas take them at once.
                with contextlib.suppress(Exception):
                    await self.leasing.release_deliveries()
        if self._site is not None:
            await self._site.stop()
            self._site = None
        if self._source is not None and self._given_source is None:
            await self._source.aclose()
        self._source = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.store.aclose()
        log.info("stopped")

    async def __aenter__(self) -> Daemon:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
