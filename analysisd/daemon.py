"""The composition root: store, providers, scheduler, API, outbox deliverer and telemetry.

`start_engine` is the measuring half, used by both `analysisd serve` (through
`Daemon`) and `analysisd run`: the provider registry with the settings' provider
limits, and the scheduler with the settings' concurrency, timeout and quotas.

`Daemon` owns every piece, entered into one AsyncExitStack in start-up order so
that they stop in the reverse order. Start: open the store, start the deliverer,
build providers and scheduler, resume every unfinished run from its stored status
(or, with replicas, claim runs and start the lease loop: analysisd/replicas.py),
start the TTL collector (analysisd/ttl.py), then accept HTTP. Stop (SIGTERM):
/readyz says 503 "draining" at once, the loops stop, the scheduler finishes
in-flight measurements within the grace period (each persisted by the observer,
analysisd/recorder.py, as it lands), the providers close, run leases are released,
the deliverer stops (its claims released), then the HTTP listener and the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from analysisd.api.context import ApiContext, EventHub
from analysisd.config import ConfigError, Settings
from analysisd.engine.measure import MeasurementSource
from analysisd.engine.observer import RunObserver
from analysisd.engine.scheduler import Scheduler
from analysisd.loops import LoopHealth, problems
from analysisd.outbox import Deliverer, DeliveryPolicy
from analysisd.recorder import StoreObserver
from analysisd.replicas import Replicas
from analysisd.secrets import SecretSource
from analysisd.spec import AnalysisRun
from analysisd.store import Leasing, Store, leasing_of, open_store
from analysisd.teams import Teams
from analysisd.telemetry import DaemonMetrics
from analysisd.ttl import TtlCollector


def _app(ctx: ApiContext) -> web.Application:
    """The API app, imported only by `serve`: the API pulls in the judge (numpy, scipy)
    and the pages, which `analysisd run` composing the same engine does not need."""
    from analysisd.api.app import build_app

    return build_app(ctx)


__all__ = [
    "Daemon",
    "StoreObserver",
    "build_secrets",
    "check_exposure",
    "default_source",
    "start_engine",
]

log = structlog.get_logger(__name__)


def build_secrets(settings: Settings) -> SecretSource:
    """The daemon's secrets: DIR/<namespace>/<secret>/<key>, env secrets where granted."""
    return Teams(settings).secrets


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


async def start_engine(
    stack: contextlib.AsyncExitStack,
    settings: Settings,
    observer: RunObserver,
    *,
    secrets: SecretSource,
    source: MeasurementSource | None = None,
    scopes: Callable[[str], Any] | None = None,
    metrics_registry: CollectorRegistry | None = None,
) -> tuple[MeasurementSource, Scheduler]:
    """Providers and scheduler as `serve` and `run` both run them, entered into `stack`.

    The provider registry gets the settings' provider limits (`providers.limits`) and
    closes when the stack does, unless `source` is given (tests: then it is the
    caller's). The scheduler gets the settings' concurrency, measurement timeout and
    per-namespace measurementsPerSecond quotas; on exit it drains within
    `shutdown_grace`, before the providers close.
    """
    if source is None:
        registry = default_source(
            secrets,
            metrics_registry if metrics_registry is not None else CollectorRegistry(),
            settings,
            scopes,
        )
        source = await stack.enter_async_context(registry)
    assert source is not None
    scheduler = Scheduler(
        source,
        observer,
        secrets=secrets,
        max_concurrency=settings.max_concurrency,
        measurement_timeout=settings.measurement_timeout,
        long_measurement_timeout=settings.long_measurement_timeout,
        rate_of=lambda namespace: settings.namespace(namespace).quota.measurements_per_second,
    )
    await scheduler.start()
    stack.push_async_callback(scheduler.aclose, settings.shutdown_grace)
    return source, scheduler


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
        # A given store (tests wrap one to inject faults) is used as it is.
        self.store = (
            store
            if store is not None
            else open_store(
                settings.store, owner=self.instance, lease_seconds=settings.lease_duration
            )
        )
        # Runs leased among replicas (PostgreSQL), or None: this daemon holds every run.
        self.leasing: Leasing | None = leasing_of(self.store)
        self.replicas: Replicas | None = (
            Replicas(self.leasing, lambda: self.scheduler, lease_duration=settings.lease_duration)
            if self.leasing is not None
            else None
        )
        self.ttl = TtlCollector(self.store, settings.ttl_check_interval)
        self._loops: list[LoopHealth] = []  # the loops running now, for /readyz
        self._given_source = source
        self._source: Any = None
        self.scheduler: Scheduler | None = None
        self.deliverer: Deliverer | None = None
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._stack = contextlib.AsyncExitStack()
        self._closing: asyncio.Future[None] | None = None
        self._ready = False
        self._draining = False
        self.resumed = 0
        self.port: int = settings.port

    async def start(self) -> None:
        check_exposure(self.settings)
        try:
            await self._start(self._stack)
        except BaseException:
            await self.aclose()
            raise

    async def _start(self, stack: contextlib.AsyncExitStack) -> None:
        # Entered in start-up order; the stack stops them in the reverse order.
        s = self.settings
        await self.store.open()
        stack.push_async_callback(self.store.aclose)
        stack.push_async_callback(self._stop_http)  # after the drain: /readyz answers it
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
        if self.replicas is not None:
            stack.push_async_callback(self.replicas.release_deliveries)
        await stack.enter_async_context(self.deliverer)
        self._loops.append(self.deliverer.health)
        stack.push_async_callback(self._scheduler_stopped)
        observer = StoreObserver(
            self.store,
            subscriptions=s.subscriptions,
            source=f"analysisd://{self.instance}",
            hub=self.hub,
            metrics=self.metrics,
            on_committed=self.deliverer.notify,
            on_lease_lost=self._lease_lost,
        )
        self._source, self.scheduler = await start_engine(
            stack,
            s,
            observer,
            secrets=self.secrets,
            source=self._given_source,
            scopes=self.teams.scope,
            metrics_registry=self.registry,
        )
        if self.replicas is not None:
            self.resumed = await self.replicas.claim()
            self.replicas.start()
            stack.push_async_callback(self.replicas.stop)
            self._loops.append(self.replicas.health)
        else:
            self.resumed = await self.resume()
        if s.ttl_check_interval > 0:
            self.ttl.start()
            stack.push_async_callback(self.ttl.stop)
            self._loops.append(self.ttl.health)
        stack.callback(self._drain)  # the first thing a stop does
        await self._start_http(s)
        self._ready = True
        log.info(
            "serving",
            host=s.host,
            port=self.port,
            store=s.store.split("?")[0],
            resumed=self.resumed,
        )

    async def _start_http(self, s: Settings) -> None:
        assert self.scheduler is not None
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
            _app(ctx), handle_signals=False, access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, s.host, s.port)
        await self._site.start()
        addresses = self._runner.addresses
        if addresses:
            self.port = int(addresses[0][1])  # the real port when 0 was asked for
        for address in addresses:
            self.teams.listening(str(address[0]), int(address[1]))

    def _drain(self) -> None:
        """Stopping: /readyz answers 503 "draining" while measurements drain."""
        self._ready = False
        self._draining = True
        self._loops.clear()

    async def _scheduler_stopped(self) -> None:
        """The scheduler drained and the providers closed: hand our runs over at once."""
        self.scheduler = None
        self._source = None
        if self.replicas is not None:
            await self.replicas.release()

    async def _stop_http(self) -> None:
        if self._site is not None:
            await self._site.stop()
            self._site = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def resume(self) -> int:
        """Hand every unfinished stored run back to the scheduler, exactly where it was."""
        assert self.scheduler is not None
        manifests = await self.store.unfinished_manifests()
        for text in manifests:
            self.scheduler.submit(AnalysisRun.model_validate_json(text))
        return len(manifests)

    async def claim(self, batch: int = 100) -> int:
        """Claim free runs and resume them (replicas only; see analysisd/replicas.py)."""
        assert self.replicas is not None, "only a leasing store has leases"
        return await self.replicas.claim(batch)

    async def renew(self) -> list[tuple[str, str]]:
        assert self.replicas is not None, "only a leasing store has leases"
        return await self.replicas.renew()

    async def release_orphans(self) -> int:
        assert self.replicas is not None, "only a leasing store has leases"
        return await self.replicas.release_orphans()

    async def collect_expired(self, now: datetime | None = None) -> int:
        """Delete completed runs past their spec.ttlStrategy, as Argo's controller does."""
        return await self.ttl.collect_expired(now)

    def _lease_lost(self, namespace: str, name: str) -> None:
        if self.replicas is not None:
            self.replicas.lost(namespace, name)

    def loop_problems(self) -> dict[str, str]:
        """The long-lived loops that are dead or failing, by name (for /readyz)."""
        return problems(self._loops)

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
        connections), then stop accepting and close in order. Called twice (or while
        it runs), it waits for the one stop."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        self._drain()
        await self._stack.aclose()
        log.info("stopped")

    async def __aenter__(self) -> Daemon:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
