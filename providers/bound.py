"""A metric's provider block bound once per run (ProviderRegistry.bind), and its route.

`BoundMeasurement.measure()` is the registry's per-measurement hot path: the
namespace's policy put in force, then coalescing (unless the class says COALESCE =
False), then the registry's retries, rate limit and concurrency slot around the
provider's own bound call. It is part of the registry (it uses the registry's
coalescer and send step directly, without a coroutine in between per measurement),
kept in a module of its own for size.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from prometheus_client import Counter

from providers.base import NO_CONTEXT, MeasurementContext, Provider, Reading
from providers.limits import Slots, TokenBucket
from providers.metrics import RequestStats
from providers.policy import DEFAULT_POLICY, POLICY

if TYPE_CHECKING:
    from providers.registry import ProviderRegistry, Scope

__all__ = ["BoundMeasurement", "Route"]

_Call = Callable[[], Awaitable[Reading]]  # a bound provider call: one reading per call


@dataclass(frozen=True, slots=True, eq=False)
class Route:
    """Where a request goes, as far as limits and metrics care; one per (kind, address, pool)."""

    kind: str
    pool: Hashable  # the pool key, hashable
    bucket: TokenBucket
    slots: Slots
    stats: RequestStats  # requests sent and their latency
    coalesced: Counter


class BoundMeasurement:
    """One metric's instant query, bound by ProviderRegistry.bind; measure() takes one reading."""

    __slots__ = (
        "_call",
        "_config",
        "_context",
        "_instance",
        "_registry",
        "_request",
        "_scope",
        "_static",
        "route",
        "timed",
    )

    def __init__(
        self,
        registry: ProviderRegistry,
        route: Route,
        config: Mapping[str, Any],
        instance: Provider,
        request: Hashable | None,
        static: bool,
        call: Callable[[], Awaitable[Reading]] | None = None,
        scope: Scope | None = None,
        context: MeasurementContext = NO_CONTEXT,
        timed: bool = True,
    ) -> None:
        self._registry = registry
        self._scope = scope
        self._context = context
        self.route = route
        self._config = config
        self._instance = instance
        self._request = request
        self._static = static
        self._call = call
        # False for a class with OWN_DEADLINE: its measurement ends on its own terms (a
        # Job ends when it completes, fails or reaches its activeDeadlineSeconds), so
        # the daemon's measurementTimeout does not cut it off.
        self.timed = timed

    @property
    def kind(self) -> str:
        return self.route.kind

    async def measure(self) -> Reading:
        registry = self._registry
        bound = self
        if self._static:
            registry._check_open()
        else:
            # Reads secrets; the run's context is the one it was bound with.
            bound = registry.bind(self.route.kind, self._config, self._scope, self._context)
        call = bound._call
        if call is None:
            call = bound._call = bound._make_call()
        # The namespace's policy is in force for the whole call (using_policy's body,
        # without a context manager object or a wrapping coroutine per measurement).
        # Set only when another is in force: each set makes a new context mapping, and
        # every timer aiohttp arms during the call copies the context and keeps that
        # mapping alive for the garbage collector to walk until the timer is dropped.
        scope = bound._scope
        policy = scope.policy if scope is not None else DEFAULT_POLICY
        token = POLICY.set(policy) if POLICY.get() is not policy else None
        try:
            key = bound._request
            if key is None:  # each measurement an action of its own (a Job): never shared
                return await registry._send(bound.route, call)
            coalescer = registry._coalescer
            if not coalescer.idle(key):
                # Someone's request for this key is in flight or reusable: the full protocol.
                reading, shared = await coalescer.run(key, bound._start)
                if shared:
                    bound.route.coalesced.inc()
                return cast(Reading, reading)
            # The leader, as Coalescer.run would do it but without its coroutine in
            # between: this path runs for every measurement, and almost none are shared.
            flight = coalescer.lead(key)
            try:
                answer: Reading = await registry._send(bound.route, call)
            except BaseException as exc:
                coalescer.crash(key, flight, exc)
                raise
            coalescer.land(key, flight, answer)
            return answer
        finally:
            if token is not None:
                POLICY.reset(token)

    def _start(self) -> Awaitable[Reading]:
        assert self._call is not None
        return self._registry._send(self.route, self._call)

    def _make_call(self) -> _Call:
        # Called inside measure(), which puts the namespace's policy in force.
        return functools.partial(self._instance.measure, self._config)
