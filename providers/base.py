"""The Provider protocol, the Reading it returns, and provider errors.

Error tree (one root; every message says what was asked, of whom, what came back)::

    ProviderError
    ├── ProviderConfigError      the provider block is unusable (missing query, bad address)
    ├── ProviderUnsupported      a provider kind analysisd does not run
    ├── ProviderTimeout          no answer within the timeout
    ├── ProviderConnectionError  refused, reset, DNS failure
    ├── ProviderHTTPError        non-2xx answer (status and truncated body kept)
    │   └── ProviderRateLimited  429 / 503 with Retry-After (retry_after seconds kept)
    ├── ProviderAuthError        credentials missing or rejected
    └── ProviderBadBody          2xx, but the body is not what the API promises

This package imports nothing from ``analysisd``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, ClassVar, NamedTuple, Protocol, runtime_checkable

# (secret name, key) -> value, or None when absent. Supplied by the daemon.
SecretLookup = Callable[[str, str], str | None]

# Argo's DefaultMeasurementHistoryLimit: measurements (and Jobs) kept per metric.
DEFAULT_MEASUREMENT_HISTORY_LIMIT = 10

BODY_EXCERPT_LIMIT = 512


def fingerprint(*parts: str) -> str:
    """A short, stable stand-in for credentials in pool and coalescing keys: the secret
    itself never sits in a key (16 hex digits of SHA-256 over the parts joined by NUL)."""
    import hashlib  # here: OpenSSL's binding is ~1.5 ms of every start-up (issue 21)

    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def excerpt(body: str | bytes, limit: int = BODY_EXCERPT_LIMIT) -> str:
    """A body shortened for an error message."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    if len(text) <= limit:
        return text
    return text[:limit] + f"... ({len(text) - limit} more characters)"


# A Reading without metadata shares this one (read-only) mapping.
NO_METADATA: Mapping[str, str] = MappingProxyType({})


class Reading(NamedTuple):
    """One measurement's raw outcome: `result` as conditions see it, `value` as stored.

    `go_type` names the Go type Argo's provider hands to EvalCondition for `result`, after
    Argo's valueFromPointer (a nil pointer is "<nil>", a non-nil one its element type):
    "[]float64" for a Prometheus vector even when empty, "interface {}"-typed JSON values
    by their dynamic type, "[]types.MetricDataResult" for CloudWatch. The condition checker
    types conditions against it as expr-lang does; "" means "infer it from the value".

    A NamedTuple (immutable) rather than a frozen dataclass: one is made for every
    measurement, and a frozen dataclass's __init__ costs three times as much.
    """

    result: Any
    value: str
    metadata: Mapping[str, str] = NO_METADATA
    go_type: str = ""


@dataclass(frozen=True, slots=True)
class MeasurementContext:
    """The run and metric a binding measures for; made once per run and metric.

    What Argo hands its providers with every call (the AnalysisRun and the Metric),
    reduced to what they read: the run's identity, the metric's name, how many of the
    metric's measurements the run's status held when it was bound (Argo's
    ``res.Count + res.Error``: measurements that finished, Errors included) and how
    many of them the run keeps (``measurementRetention``, else Argo's
    DefaultMeasurementHistoryLimit). A run with no uid (``analysisd run`` from a file)
    has ``run_uid`` "", a run with no namespace ``run_namespace`` "".
    """

    run_uid: str = ""
    run_name: str = ""
    run_namespace: str = ""
    metric_name: str = ""
    taken: int = 0
    history_limit: int = DEFAULT_MEASUREMENT_HISTORY_LIMIT


# A binding made outside any run (ProviderRegistry.measure, tests).
NO_CONTEXT = MeasurementContext()


class ProviderError(Exception):
    """Root of provider failures; str(err) is a message a user can act on."""

    def __init__(self, message: str, *, provider: str = "", address: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.address = address


class ProviderConfigError(ProviderError):
    """The block is unusable; `field` is the path inside it ("url", "headers[1].value")."""

    def __init__(
        self, message: str, *, provider: str = "", address: str = "", field: str = ""
    ) -> None:
        super().__init__(message, provider=provider, address=address)
        self.field = field


class ProviderUnsupported(ProviderError):
    pass


class ProviderTimeout(ProviderError):
    pass


class ProviderConnectionError(ProviderError):
    pass


class ProviderHTTPError(ProviderError):
    def __init__(
        self,
        message: str,
        *,
        status: int,
        body: str = "",
        provider: str = "",
        address: str = "",
    ) -> None:
        super().__init__(message, provider=provider, address=address)
        self.status = status
        self.body = body


class ProviderRateLimited(ProviderHTTPError):
    def __init__(
        self,
        message: str,
        *,
        status: int = 429,
        body: str = "",
        retry_after: float | None = None,
        provider: str = "",
        address: str = "",
    ) -> None:
        super().__init__(message, status=status, body=body, provider=provider, address=address)
        self.retry_after = retry_after


class ProviderAuthError(ProviderError):
    pass


class ProviderBadBody(ProviderError):
    pass


@runtime_checkable
class Provider(Protocol):
    """One pooled client for one (kind, address, auth); serves many metrics.

    `config` is the metric's resolved provider sub-block, e.g. the mapping under
    `provider.prometheus` — arguments already substituted, secrets resolved.
    A provider may also have ``bind(config, context)`` (BindingProvider): the registry
    then measures a run's metric through what it returns, and `context`
    (MeasurementContext) says which run and metric that is.
    """

    kind: ClassVar[str]

    async def measure(self, config: Mapping[str, Any]) -> Reading:
        """Take one instant measurement; raise ProviderError on any failure."""
        ...

    async def series(
        self, config: Mapping[str, Any], query: str, start: datetime, end: datetime, step: float
    ) -> list[float]:
        """Range data for the judge: the values of `query` from start to end every step s."""
        ...

    async def aclose(self) -> None:
        """Release pooled connections."""
        ...


class BindingProvider(Provider, Protocol):
    """A Provider that also binds a block once per run and metric (optional).

    The registry calls ``bind(config, context)`` of every provider that has it, once
    per run and metric, with that run's and metric's MeasurementContext (the same
    call for every kind); the callable it returns takes each measurement. A provider
    that needs nothing of the run ignores `context`.
    """

    def bind(
        self, config: Mapping[str, Any], context: MeasurementContext
    ) -> Callable[[], Awaitable[Reading]]:
        """measure(config) with the per-config work done once, for the run in `context`."""
        ...


class ProviderClass(Protocol):
    """What the registry needs of a provider class (one line in registry.py each).

    Optional class attributes: ``STATIC_KEYS = True`` (keys from the block alone: bound
    once per run, not per measurement); ``COALESCE = False`` (each measurement is an
    action of its own, a Job: never coalesced with another nor reused); ``OWN_DEADLINE =
    True`` (a measurement ends on its own terms, as a Job does when it completes, fails
    or reaches its activeDeadlineSeconds: the daemon's measurementTimeout does not cut
    it off; terminating the run or stopping the daemon still does)."""

    kind: ClassVar[str]

    @classmethod
    def pool_key(cls, config: Mapping[str, Any], secrets: SecretLookup) -> tuple[Any, ...]:
        """Metrics whose configs give the same key share one instance (one pool)."""
        ...

    @classmethod
    def create(cls, config: Mapping[str, Any], secrets: SecretLookup) -> Provider:
        """Build the pooled instance for that key (no I/O; connect lazily)."""
        ...

    @classmethod
    def request_key(cls, config: Mapping[str, Any]) -> tuple[Any, ...]:
        """Identity of one instant query, for coalescing (same key -> one request)."""
        ...

    @classmethod
    def check(cls, config: Mapping[str, Any]) -> None:
        """Raise ProviderConfigError (with `field`) for a block that can never be measured.

        Static: no I/O, no secrets, no pool; the same parsing bind/create/measure do, so
        a block that passes here fails later only for reasons of the outside world.
        """
        ...
