"""Request limits for providers: token buckets, per-address concurrency, backoff.

The arithmetic is pure and takes "now" as an argument (tested with an injected
clock); the registry owns the instances and does the sleeping.

- A token bucket per (kind, address) caps the request rate: `rate` tokens per
  second, at most `burst` saved up. A 429/503 with Retry-After pauses the bucket,
  so every caller of that address waits, not only the one that was refused.
- A semaphore per pool key caps requests in flight to one address.
- Backoff for a refused request: Retry-After when the server gave it, else
  exponential with full jitter, both capped.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_RATE = 100.0  # requests per second per (kind, address)
DEFAULT_BURST = 200.0
DEFAULT_CONCURRENCY = 64  # requests in flight per pool key
DEFAULT_COALESCE_WINDOW_S = 1.0


@dataclass(frozen=True, slots=True)
class KindLimits:
    """Overrides for one provider kind (None keeps the default)."""

    rate: float | None = None
    burst: float | None = None
    concurrency: int | None = None
    # Rate-limit per credentials (the pool key) instead of per address: for APIs whose
    # budget belongs to an account, e.g. Datadog's per organisation.
    per_credentials: bool | None = None


# Kinds whose rate budget is per account unless configured otherwise.
PER_CREDENTIALS_KINDS = frozenset({"datadog"})


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    """How hard analysisd may press each provider; every field has a safe default.

    `per_kind` overrides rate/burst/concurrency for one kind, e.g. Datadog's
    per-organisation budget: ``{"datadog": KindLimits(rate=5, burst=10)}``.
    A rate of 0 or less disables rate limiting.
    """

    rate: float = DEFAULT_RATE
    burst: float = DEFAULT_BURST
    concurrency: int = DEFAULT_CONCURRENCY
    per_kind: Mapping[str, KindLimits] = field(default_factory=dict)
    coalesce_window: float = DEFAULT_COALESCE_WINDOW_S  # 0 disables result reuse
    max_attempts: int = 4  # tries per request when rate limited (1 = no retry)
    backoff_base: float = 0.5  # seconds, doubled per attempt when no Retry-After
    backoff_max: float = 30.0  # cap on one wait, Retry-After included

    def __post_init__(self) -> None:
        if self.burst < 1 and self.rate > 0:
            raise ValueError(f"limits: burst must be >= 1, got {self.burst}")
        if self.concurrency < 1:
            raise ValueError(f"limits: concurrency must be >= 1, got {self.concurrency}")
        if self.max_attempts < 1:
            raise ValueError(f"limits: max_attempts must be >= 1, got {self.max_attempts}")
        if self.coalesce_window < 0 or self.backoff_base < 0 or self.backoff_max < 0:
            raise ValueError("limits: coalesce_window, backoff_base and backoff_max must be >= 0")

    def for_kind(self, kind: str) -> tuple[float, float, int]:
        """(rate, burst, concurrency) for one kind, overrides applied."""
        override = self.per_kind.get(kind, KindLimits())
        rate = self.rate if override.rate is None else override.rate
        burst = self.burst if override.burst is None else override.burst
        concurrency = self.concurrency if override.concurrency is None else override.concurrency
        return rate, burst, concurrency

    def per_credentials(self, kind: str) -> bool:
        """Whether `kind`'s token bucket is keyed by credentials rather than address."""
        override = self.per_kind.get(kind)
        if override is not None and override.per_credentials is not None:
            return override.per_credentials
        return kind in PER_CREDENTIALS_KINDS

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> LimitsConfig:
        """Build from a config file section (camelCase keys, as documented)."""
        per_kind: dict[str, KindLimits] = {}
        raw_kinds = data.get("perKind") or {}
        if not isinstance(raw_kinds, Mapping):
            raise ValueError("limits.perKind must be a mapping of kind -> limits")
        for kind, raw in raw_kinds.items():
            if not isinstance(raw, Mapping):
                raise ValueError(f"limits.perKind.{kind} must be a mapping")
            per_kind[str(kind)] = KindLimits(
                rate=_opt_float(raw.get("rate")),
                burst=_opt_float(raw.get("burst")),
                concurrency=_opt_int(raw.get("concurrency")),
                per_credentials=_opt_bool(raw.get("perCredentials")),
            )
        defaults = cls()
        return cls(
            rate=_float(data.get("rate"), defaults.rate),
            burst=_float(data.get("burst"), defaults.burst),
            concurrency=int(str(data.get("concurrency", defaults.concurrency))),
            per_kind=per_kind,
            coalesce_window=_float(data.get("coalesceWindowSeconds"), defaults.coalesce_window),
            max_attempts=int(str(data.get("maxAttempts", defaults.max_attempts))),
            backoff_base=_float(data.get("backoffBaseSeconds"), defaults.backoff_base),
            backoff_max=_float(data.get("backoffMaxSeconds"), defaults.backoff_max),
        )


def _opt_float(value: object) -> float | None:
    return None if value is None else float(str(value))


def _opt_bool(value: object) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise ValueError(f"limits: perCredentials must be true or false, got {value!r}")


def _opt_int(value: object) -> int | None:
    return None if value is None else int(str(value))


def _float(value: object, default: float) -> float:
    return default if value is None else float(str(value))


class TokenBucket:
    """Classic token bucket over an external clock; `reserve` never sleeps itself."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._updated = now
        self._paused_until = now

    @property
    def unlimited(self) -> bool:
        return self.rate <= 0 or math.isinf(self.rate)

    def _refill(self, now: float) -> None:
        if now > self._updated:
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now

    def reserve(self, now: float) -> float:
        """Take one token; return how long the caller must wait before sending (0 = now).

        Tokens may go negative: each reservation queues behind the earlier ones,
        so N callers arriving together are spread out at `rate`, in order.
        """
        pause = max(self._paused_until - now, 0.0)
        if self.unlimited:
            return pause
        self._refill(now)
        self._tokens -= 1.0
        wait = 0.0 if self._tokens >= 0 else -self._tokens / self.rate
        return max(wait, pause)

    def pause(self, now: float, seconds: float) -> None:
        """Hold every caller until now + seconds (the server said Retry-After)."""
        self._paused_until = max(self._paused_until, now + max(seconds, 0.0))

    def available(self, now: float) -> float:
        """Tokens available at `now` (for tests and metrics)."""
        self._refill(now)
        return self._tokens


def backoff_delay(
    attempt: int,
    retry_after: float | None,
    *,
    base: float,
    cap: float,
    rng: random.Random,
) -> float:
    """Seconds to wait before retry number `attempt` (1-based) of a refused request.

    The server's Retry-After wins (plus up to 10% jitter so a herd of callers does
    not return in the same millisecond); otherwise full jitter over base * 2^(n-1).
    """
    if retry_after is not None:
        return min(retry_after * (1.0 + 0.1 * rng.random()), cap)
    ceiling = min(base * (2.0 ** (attempt - 1)), cap)
    return rng.uniform(ceiling / 2, ceiling)


class Slots:
    """A counting limit on requests in flight, FIFO for waiters.

    Not asyncio.Semaphore: taking a free slot here costs no coroutine, and a release
    wakes exactly one waiter (CPython 3.11's semaphore scans every waiter per release,
    which with thousands queued on one address is O(waiters) each time).
    """

    __slots__ = ("_waiters", "in_use", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.in_use = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    def try_acquire(self) -> bool:
        if self.in_use < self.limit and not self._waiters:
            self.in_use += 1
            return True
        return False

    async def acquire(self) -> None:
        """Wait for a slot, in arrival order; the slot is held on return."""
        if self.try_acquire():
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot just as it was cancelled: pass it on
            else:
                # release() may have popped and skipped this cancelled waiter already
                # (it ran between the cancellation and now); then there is nothing to
                # remove, and the cancellation must still reach the caller as such.
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        # A freed slot goes straight to the longest waiter (in_use stays the same).
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.in_use -= 1


class ConcurrencyLimiter:
    """Slots per key, created on first use, with in-flight counts for metrics."""

    def __init__(self) -> None:
        self._slots: dict[object, Slots] = {}

    def slots(self, key: object, limit: int) -> Slots:
        found = self._slots.get(key)
        if found is None:
            found = Slots(limit)
            self._slots[key] = found
        return found

    def in_flight(self, key: object) -> int:
        found = self._slots.get(key)
        return 0 if found is None else found.in_use


class RateLimiters:
    """Token buckets per (kind, address), built from a LimitsConfig on first use."""

    def __init__(self, config: LimitsConfig) -> None:
        self._config = config
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    def bucket(self, kind: str, address: str, now: float) -> TokenBucket:
        key = (kind, address)
        found = self._buckets.get(key)
        if found is None:
            rate, burst, _ = self._config.for_kind(kind)
            found = TokenBucket(rate, burst, now)
            self._buckets[key] = found
        return found
