"""ProviderRegistry: provider kind -> pooled instance, with limits around every call.

The engine's MeasurementSource and the judge's SeriesSource. For each call:

    coalesce (same kind, pool key and request key within the reuse window -> one request;
              not for a class with COALESCE = False, whose every measurement is an action)
      └─ retry while rate limited (Retry-After honoured, else backoff + jitter)
           └─ token bucket per (kind, address)   (waits, never refuses)
                └─ semaphore per pool key          (requests in flight per address)
                     └─ provider.measure / provider.series   (timed, counted)

A namespace's calls go through `for_namespace(ns)`: a view whose secret lookup and
RequestPolicy (egress, response cap; providers.http) are that namespace's, from the
`scopes` callable the daemon passes in. The policy is in force for the duration of
each call and is part of the request key, so requests coalesce only between
namespaces held to the same policy.

Provider classes are imported lazily by dotted path, so a broken optional module
(or a missing dependency of one) is a clear ProviderUnsupported for the metrics
that use it, not a crash of the daemon. One instance per (kind, pool_key) holds
the connection pool; `aclose()` closes them all.
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, cast

from prometheus_client import CollectorRegistry

from providers.base import (
    NO_CONTEXT,
    MeasurementContext,
    Provider,
    ProviderClass,
    ProviderError,
    ProviderRateLimited,
    Reading,
    SecretLookup,
)
from providers.bound import BoundMeasurement, Route
from providers.coalesce import Coalescer
from providers.kinds import PROVIDER_CLASSES, UNSUPPORTED_KINDS, check_block, load_provider_class
from providers.limits import (
    ConcurrencyLimiter,
    LimitsConfig,
    RateLimiters,
    backoff_delay,
)
from providers.metrics import ProviderMetrics
from providers.policy import DEFAULT_POLICY, RequestPolicy, using_policy

__all__ = [
    "PROVIDER_CLASSES",
    "UNSUPPORTED_KINDS",
    "BoundMeasurement",
    "LimitsConfig",
    "ProviderRegistry",
    "Scope",
    "ScopedRegistry",
    "check_block",
    "load_provider_class",
]

T = TypeVar("T")
_Call = Callable[[], Awaitable[Reading]]  # a bound provider call: one reading per call


def _hashable(value: Any) -> Hashable:
    """Pool/request keys may carry lists or dicts from YAML; make them hashable."""
    try:
        hash(value)
        return cast(Hashable, value)
    except TypeError:
        return json.dumps(value, sort_keys=True, default=repr)


def address_for(cls: ProviderClass, config: Mapping[str, Any], pool_key: tuple[Any, ...]) -> str:
    """The address a rate limit applies to: the class's own notion, else a URL in the key."""
    own = getattr(cls, "limit_address", None)
    if callable(own):
        return str(own(config))
    for part in pool_key:
        if isinstance(part, str) and "://" in part:
            return part
    return repr(pool_key)


@dataclass(frozen=True, slots=True, eq=False)
class Scope:
    """What one namespace's calls use: its secrets and its request policy."""

    namespace: str
    secrets: SecretLookup
    policy: RequestPolicy = DEFAULT_POLICY


class ProviderRegistry:
    """Pooled providers for every kind, with coalescing, limits, retries and metrics."""

    def __init__(
        self,
        *,
        secrets: SecretLookup,
        limits: LimitsConfig | None = None,
        metrics_registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        classes: Mapping[str, str] | None = None,
        scopes: Callable[[str], Scope] | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        self._secrets = secrets
        # The settings file's `providers` block, for classes with a `configured` hook.
        self._settings: Mapping[str, Any] = settings or {}
        # Calls outside any namespace (analysisd run, tests): the given secrets, default policy.
        self._default_scope = Scope("", secrets)
        self._scopes = scopes
        self._views: dict[str, ScopedRegistry] = {}
        self.limits = limits or LimitsConfig()
        self.metrics = ProviderMetrics(metrics_registry or CollectorRegistry())
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._class_paths = dict(PROVIDER_CLASSES if classes is None else classes)
        self._classes: dict[str, ProviderClass] = {}
        self._instances: dict[tuple[str, Hashable], Provider] = {}
        self._rates = RateLimiters(self.limits)
        self._concurrency = ConcurrencyLimiter()
        self._routes: dict[tuple[str, str, Hashable], Route] = {}
        self._coalescer: Coalescer[Any] = Coalescer(self.limits.coalesce_window, clock)
        self._closed = False

    async def __aenter__(self) -> ProviderRegistry:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every pooled client; later calls raise ProviderError."""
        self._closed = True
        instances = list(self._instances.values())
        self._instances.clear()
        results = await asyncio.gather(*(p.aclose() for p in instances), return_exceptions=True)
        del results  # a client that fails to close has nothing left to tell us

    # -- lookup ---------------------------------------------------------------

    def provider_class(self, kind: str) -> ProviderClass:
        """The class for an Argo provider kind, imported on first use."""
        found = self._classes.get(kind)
        if found is not None:
            return found
        cls = load_provider_class(kind, self._class_paths)
        configured = getattr(cls, "configured", None)
        if callable(configured):
            # A class that needs daemon settings (the job provider's cluster) gets them here.
            cls = cast(ProviderClass, configured(self._settings))
        self._classes[kind] = cls
        return cls

    def for_namespace(self, namespace: str) -> ScopedRegistry:
        """The registry as one namespace sees it (its secrets, egress and caps)."""
        found = self._views.get(namespace)
        if found is None:
            scope = (
                self._scopes(namespace)
                if self._scopes is not None
                else Scope(namespace, self._secrets)
            )
            found = self._views[namespace] = ScopedRegistry(self, scope)
        return found

    def _instance(
        self,
        kind: str,
        cls: ProviderClass,
        config: Mapping[str, Any],
        pool_key: Hashable,
        secrets: SecretLookup,
    ) -> Provider:
        key = (kind, pool_key)
        found = self._instances.get(key)
        if found is None:
            found = cls.create(config, secrets)
            self._instances[key] = found
        return found

    def pooled(self) -> int:
        """How many provider instances (connection pools) are open."""
        return len(self._instances)

    # -- calls ----------------------------------------------------------------

    async def measure(
        self, kind: str, config: Mapping[str, Any], scope: Scope | None = None
    ) -> Reading:
        """One instant measurement through coalescing, limits and retries."""
        return await self.bind(kind, config, scope).measure()

    def bind(
        self,
        kind: str,
        config: Mapping[str, Any],
        scope: Scope | None = None,
        context: MeasurementContext = NO_CONTEXT,
    ) -> BoundMeasurement:
        """A metric's provider block bound to its pooled instance, keys worked out once.

        The engine binds each metric once per run and measures through the binding, so
        pool key, request key and rate-limit address are not recomputed per measurement.
        A class whose keys read secrets or the environment (STATIC_KEYS false or absent)
        is re-bound on every measurement, so a rotated credential takes effect at once.
        `context` (which run and metric) goes to the provider's own ``bind(config,
        context)`` when it has one, and is kept for those re-bindings.
        Raises ProviderError for an unknown kind or a config its keys cannot be made of.
        """
        self._check_open()
        scope = scope or self._default_scope
        cls = self.provider_class(kind)
        pool_key = cls.pool_key(config, scope.secrets)
        pool = _hashable(pool_key)
        instance = self._instance(kind, cls, config, pool, scope.secrets)
        address = self._limit_key(kind, cls, config, pool_key)
        # One shared copy of equal keys: thousands of bindings to one address hold one.
        route = self._route(kind, address, pool)
        static = bool(getattr(cls, "STATIC_KEYS", False))
        call: Callable[[], Awaitable[Reading]] | None = None
        binder = getattr(instance, "bind", None)
        if static and callable(binder):
            # The provider's own per-config work (validation, compiled paths), once;
            # a bound call that knows its request key saves working that out again.
            call = cast("_Call", binder(config, context))
        request: Hashable | None = None  # COALESCE false: neither shared nor reused
        if getattr(cls, "COALESCE", True):
            own_key = getattr(call, "request_key", None)
            request_key = own_key() if callable(own_key) else cls.request_key(config)
            request = ("measure", kind, route.pool, _hashable(request_key), scope.policy)
        timed = not getattr(cls, "OWN_DEADLINE", False)
        return BoundMeasurement(
            self, route, config, instance, request, static, call, scope, context, timed
        )

    async def series(
        self,
        kind: str,
        config: Mapping[str, Any],
        query: str,
        start: datetime,
        end: datetime,
        step: float,
        scope: Scope | None = None,
    ) -> list[float]:
        """Range data for the judge, with the same coalescing and limits as measure."""
        self._check_open()
        scope = scope or self._default_scope
        cls = self.provider_class(kind)
        pool_key = cls.pool_key(config, scope.secrets)
        pool = _hashable(pool_key)
        instance = self._instance(kind, cls, config, pool, scope.secrets)
        request = (
            "series",
            kind,
            pool,
            # Not request_key(): a source block for range data has no instant query of its own.
            _hashable(dict(config)),
            query,
            start.isoformat(),
            end.isoformat(),
            step,
            scope.policy,
        )
        route = self._route(kind, self._limit_key(kind, cls, config, pool_key), pool)
        policy = scope.policy

        async def call() -> list[float]:
            with using_policy(policy):
                return await instance.series(config, query, start, end, step)

        values: list[float] = await self._coalesced(route, request, call)
        return list(values)  # callers may mutate their copy

    def _limit_key(
        self, kind: str, cls: ProviderClass, config: Mapping[str, Any], pool_key: tuple[Any, ...]
    ) -> str:
        if self.limits.per_credentials(kind):
            return repr(pool_key)  # pool keys hold credential fingerprints, never secrets
        return address_for(cls, config, pool_key)

    def _check_open(self) -> None:
        if self._closed:
            raise ProviderError("provider registry is closed (daemon shutting down)")

    def _route(self, kind: str, address: str, pool: Hashable) -> Route:
        """The limits and metric series for one (kind, rate-limit address, pool), shared."""
        key = (kind, address, pool)
        found = self._routes.get(key)
        if found is None:
            _, _, concurrency = self.limits.for_kind(kind)
            found = Route(
                kind=kind,
                pool=pool,
                bucket=self._rates.bucket(kind, address, self._clock()),
                slots=self._concurrency.slots((kind, pool), concurrency),
                stats=self.metrics.request_stats(kind),
                coalesced=self.metrics.coalesced.labels(kind),
            )
            self._routes[key] = found
        return found

    async def _coalesced(
        self, route: Route, request: Hashable, call: Callable[[], Awaitable[T]]
    ) -> T:
        result, shared = await self._coalescer.run(
            request, functools.partial(self._send, route, call)
        )
        if shared:
            route.coalesced.inc()
        return cast(T, result)

    async def _send(self, route: Route, call: Callable[[], Awaitable[T]]) -> T:
        """Token bucket, then a slot of the pool, then the call; retried while rate limited."""
        attempt = 1
        while True:
            now = self._clock()
            wait = route.bucket.reserve(now)
            if wait > 0:
                self.metrics.rate_limit_waits.labels(route.kind).inc()
                self.metrics.rate_limit_wait_seconds.labels(route.kind).observe(wait)
                await self._sleep(wait)
            slots = route.slots
            if not slots.try_acquire():
                await slots.acquire()
            stats = route.stats
            stats.requests += 1
            started = time.perf_counter()
            try:
                return await call()
            except ProviderRateLimited as err:
                self.metrics.errors.labels(route.kind, type(err).__name__).inc()
                if attempt >= self.limits.max_attempts:
                    raise
                delay = backoff_delay(
                    attempt,
                    err.retry_after,
                    base=self.limits.backoff_base,
                    cap=self.limits.backoff_max,
                    rng=self._rng,
                )
                # Everyone queued for this address waits too: the server said so.
                route.bucket.pause(self._clock(), delay)
                attempt += 1
            except Exception as err:
                self.metrics.errors.labels(route.kind, type(err).__name__).inc()
                raise
            finally:
                slots.release()
                stats.observe(time.perf_counter() - started)

    def in_flight(self, kind: str, pool_key: tuple[Any, ...]) -> int:
        """Requests in flight for one pool (for tests and diagnostics)."""
        return self._concurrency.in_flight((kind, _hashable(pool_key)))


class ScopedRegistry:
    """ProviderRegistry.for_namespace: the same pools and limits, one namespace's scope."""

    __slots__ = ("registry", "scope")

    def __init__(self, registry: ProviderRegistry, scope: Scope) -> None:
        self.registry = registry
        self.scope = scope

    def bind(
        self, kind: str, config: Mapping[str, Any], context: MeasurementContext = NO_CONTEXT
    ) -> BoundMeasurement:
        return self.registry.bind(kind, config, self.scope, context)

    async def measure(self, kind: str, config: Mapping[str, Any]) -> Reading:
        return await self.registry.bind(kind, config, self.scope).measure()

    async def series(
        self,
        kind: str,
        config: Mapping[str, Any],
        query: str,
        start: datetime,
        end: datetime,
        step: float,
    ) -> list[float]:
        return await self.registry.series(kind, config, query, start, end, step, self.scope)
