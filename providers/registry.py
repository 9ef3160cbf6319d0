"""ProviderRegistry: provider kind -> pooled instance, with limits around every call.

The engine's MeasurementSource and the judge's SeriesSource. For each call:

    coalesce (same kind, pool key and request key within the reuse window -> one request)
      └─ retry while rate limited (Retry-After honoured, else backoff + jitter)
           └─ token bucket per (kind, address)   (waits, never refuses)
                └─ semaphore per pool key          (requests in flight per address)
                     └─ provider.measure / provider.series   (timed, counted)

Provider classes are imported lazily by dotted path, so a broken optional module
(or a missing dependency of one) is a clear ProviderUnsupported for the metrics
that use it, not a crash of the daemon. One instance per (kind, pool_key) holds
the connection pool; `aclose()` closes them all.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import random
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping
from datetime import datetime
from typing import Any, TypeVar, cast

from prometheus_client import CollectorRegistry

from providers.base import (
    Provider,
    ProviderClass,
    ProviderError,
    ProviderRateLimited,
    ProviderUnsupported,
    Reading,
    SecretLookup,
)
from providers.coalesce import Coalescer
from providers.limits import (
    ConcurrencyLimiter,
    LimitsConfig,
    RateLimiters,
    backoff_delay,
)
from providers.metrics import ProviderMetrics

__all__ = ["PROVIDER_CLASSES", "UNSUPPORTED_KINDS", "LimitsConfig", "ProviderRegistry"]

T = TypeVar("T")

# Argo kind -> "module:Class". Imported on first use only.
PROVIDER_CLASSES: Mapping[str, str] = {
    "web": "providers.web:WebProvider",
    "prometheus": "providers.prometheus:PrometheusProvider",
    "datadog": "providers.datadog:DatadogProvider",
    "cloudWatch": "providers.cloudwatch:CloudWatchProvider",
}
# Argo kinds we know of and do not run (named so the message can say so plainly).
UNSUPPORTED_KINDS = frozenset(
    {"newRelic", "wavefront", "graphite", "influxdb", "skywalking", "job", "plugin", "kayenta"}
)


def _supported() -> str:
    return ", ".join(sorted(PROVIDER_CLASSES))


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
    ) -> None:
        self._secrets = secrets
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
        path = self._class_paths.get(kind)
        if path is None:
            known = "an Argo provider analysisd does not run" if kind in UNSUPPORTED_KINDS else ""
            detail = f" ({known})" if known else ""
            raise ProviderUnsupported(
                f"provider kind {kind!r} is not supported by analysisd{detail}; "
                f"supported: {_supported()}",
                provider=kind,
            )
        module_name, _, attr = path.partition(":")
        try:
            module = importlib.import_module(module_name)
            cls = cast(ProviderClass, getattr(module, attr))
        except (ImportError, AttributeError) as exc:
            raise ProviderUnsupported(
                f"provider kind {kind!r} is unavailable: cannot load {path} "
                f"({type(exc).__name__}: {exc})",
                provider=kind,
            ) from exc
        self._classes[kind] = cls
        return cls

    def _instance(
        self, kind: str, cls: ProviderClass, config: Mapping[str, Any], pool_key: Hashable
    ) -> Provider:
        key = (kind, pool_key)
        found = self._instances.get(key)
        if found is None:
            found = cls.create(config, self._secrets)
            self._instances[key] = found
        return found

    def pooled(self) -> int:
        """How many provider instances (connection pools) are open."""
        return len(self._instances)

    # -- calls ----------------------------------------------------------------

    async def measure(self, kind: str, config: Mapping[str, Any]) -> Reading:
        """One instant measurement through coalescing, limits and retries."""
        self._check_open()
        cls = self.provider_class(kind)
        pool_key = cls.pool_key(config, self._secrets)
        pool = _hashable(pool_key)
        instance = self._instance(kind, cls, config, pool)
        request = ("measure", kind, pool, _hashable(cls.request_key(config)))
        address = self._limit_key(kind, cls, config, pool_key)

        async def call() -> Reading:
            return await instance.measure(config)

        reading: Reading = await self._coalesced(kind, request, address, pool_key, call)
        return reading

    async def series(
        self,
        kind: str,
        config: Mapping[str, Any],
        query: str,
        start: datetime,
        end: datetime,
        step: float,
    ) -> list[float]:
        """Range data for the judge, with the same coalescing and limits as measure."""
        self._check_open()
        cls = self.provider_class(kind)
        pool_key = cls.pool_key(config, self._secrets)
        pool = _hashable(pool_key)
        instance = self._instance(kind, cls, config, pool)
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
        )
        address = self._limit_key(kind, cls, config, pool_key)

        async def call() -> list[float]:
            return await instance.series(config, query, start, end, step)

        values: list[float] = await self._coalesced(kind, request, address, pool_key, call)
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

    async def _coalesced(
        self,
        kind: str,
        request: Hashable,
        address: str,
        pool_key: tuple[Any, ...],
        call: Callable[[], Awaitable[T]],
    ) -> T:
        async def limited() -> T:
            return await self._with_retries(kind, address, pool_key, call)

        result, shared = await self._coalescer.run(request, limited)
        if shared:
            self.metrics.coalesced.labels(kind).inc()
        return cast(T, result)

    async def _with_retries(
        self,
        kind: str,
        address: str,
        pool_key: tuple[Any, ...],
        call: Callable[[], Awaitable[T]],
    ) -> T:
        attempt = 1
        while True:
            try:
                return await self._once(kind, address, pool_key, call)
            except ProviderRateLimited as err:
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
                self._rates.bucket(kind, address, self._clock()).pause(self._clock(), delay)
                attempt += 1

    async def _once(
        self,
        kind: str,
        address: str,
        pool_key: tuple[Any, ...],
        call: Callable[[], Awaitable[T]],
    ) -> T:
        now = self._clock()
        wait = self._rates.bucket(kind, address, now).reserve(now)
        if wait > 0:
            self.metrics.rate_limit_waits.labels(kind).inc()
            self.metrics.rate_limit_wait_seconds.labels(kind).observe(wait)
            await self._sleep(wait)
        _, _, concurrency = self.limits.for_kind(kind)
        semaphore = self._concurrency.semaphore((kind, _hashable(pool_key)), concurrency)
        async with semaphore:
            self.metrics.requests.labels(kind).inc()
            started = time.perf_counter()
            try:
                return await call()
            except ProviderError as err:
                self.metrics.errors.labels(kind, type(err).__name__).inc()
                raise
            except Exception as err:
                self.metrics.errors.labels(kind, type(err).__name__).inc()
                raise
            finally:
                self.metrics.request_seconds.labels(kind).observe(time.perf_counter() - started)

    def in_flight(self, kind: str, pool_key: tuple[Any, ...]) -> int:
        """Requests in flight for one pool (for tests and diagnostics)."""
        return self._concurrency.in_flight((kind, _hashable(pool_key)))
