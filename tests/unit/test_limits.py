"""Token bucket, backoff and per-address concurrency, on an injected clock (no real sleeping)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from providers.base import ProviderError, ProviderRateLimited, Reading, SecretLookup
from providers.limits import (
    KindLimits,
    LimitsConfig,
    Slots,
    TokenBucket,
    backoff_delay,
)
from providers.registry import ProviderRegistry

# -- token bucket -------------------------------------------------------------------


def test_burst_is_served_at_once_then_callers_queue_at_the_rate() -> None:
    bucket = TokenBucket(rate=10.0, burst=3.0, now=100.0)
    waits = [bucket.reserve(100.0) for _ in range(6)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3:] == pytest.approx([0.1, 0.2, 0.3])


def test_tokens_refill_with_time_up_to_burst() -> None:
    bucket = TokenBucket(rate=2.0, burst=4.0, now=0.0)
    for _ in range(4):
        assert bucket.reserve(0.0) == 0.0
    assert bucket.available(1.0) == pytest.approx(2.0)
    assert bucket.available(1000.0) == pytest.approx(4.0)  # never above burst


def test_reservation_after_refill_does_not_wait() -> None:
    bucket = TokenBucket(rate=1.0, burst=1.0, now=0.0)
    assert bucket.reserve(0.0) == 0.0
    assert bucket.reserve(0.0) == pytest.approx(1.0)
    assert bucket.reserve(5.0) == 0.0


def test_pause_holds_every_caller_until_retry_after() -> None:
    bucket = TokenBucket(rate=100.0, burst=100.0, now=0.0)
    bucket.pause(10.0, 5.0)
    assert bucket.reserve(11.0) == pytest.approx(4.0)
    assert bucket.reserve(15.0) == 0.0


def test_zero_rate_means_unlimited() -> None:
    bucket = TokenBucket(rate=0.0, burst=1.0, now=0.0)
    assert all(bucket.reserve(0.0) == 0.0 for _ in range(1000))


# -- backoff ------------------------------------------------------------------------


def test_backoff_honours_retry_after_with_small_jitter_and_cap() -> None:
    rng = random.Random(7)
    for _ in range(100):
        delay = backoff_delay(1, 3.0, base=0.5, cap=30.0, rng=rng)
        assert 3.0 <= delay <= 3.3
    assert backoff_delay(1, 600.0, base=0.5, cap=30.0, rng=rng) == 30.0


def test_backoff_without_retry_after_grows_exponentially_with_jitter() -> None:
    rng = random.Random(1)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (10, 30.0)]:
        delay = backoff_delay(attempt, None, base=0.5, cap=30.0, rng=rng)
        assert ceiling / 2 <= delay <= ceiling


# -- config -------------------------------------------------------------------------


def test_per_kind_overrides_apply_only_to_that_kind() -> None:
    config = LimitsConfig(rate=50, burst=60, per_kind={"datadog": KindLimits(rate=5, burst=10)})
    assert config.for_kind("datadog") == (5, 10, config.concurrency)
    assert config.for_kind("prometheus") == (50, 60, config.concurrency)


def test_limits_from_mapping_reads_documented_keys() -> None:
    config = LimitsConfig.from_mapping(
        {
            "rate": 20,
            "burst": 40,
            "concurrency": 8,
            "coalesceWindowSeconds": 2,
            "maxAttempts": 2,
            "perKind": {"datadog": {"rate": 1, "concurrency": 2}},
        }
    )
    assert config.for_kind("datadog") == (1.0, 40.0, 2)
    assert config.coalesce_window == 2.0 and config.max_attempts == 2


def test_invalid_limits_are_rejected_with_the_field_named() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        LimitsConfig(concurrency=0)
    with pytest.raises(ValueError, match="max_attempts"):
        LimitsConfig(max_attempts=0)


# -- through the registry -------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


class BlockingProvider:
    """Measures block on a shared gate; counts what is in flight per address."""

    kind: ClassVar[str] = "blocking"
    gate: ClassVar[asyncio.Event]
    in_flight: ClassVar[dict[str, int]] = {}
    peak: ClassVar[dict[str, int]] = {}
    entered: ClassVar[asyncio.Queue[str]]
    refusals: ClassVar[int] = 0

    def __init__(self, address: str) -> None:
        self.address = address

    @classmethod
    def reset(cls) -> None:
        cls.gate = asyncio.Event()
        cls.in_flight = {}
        cls.peak = {}
        cls.entered = asyncio.Queue()
        cls.refusals = 0

    @classmethod
    def pool_key(cls, config: Mapping[str, Any], secrets: SecretLookup) -> tuple[Any, ...]:
        return ("blocking", str(config["address"]), str(config.get("account", "")))

    @classmethod
    def create(cls, config: Mapping[str, Any], secrets: SecretLookup) -> BlockingProvider:
        return cls(str(config["address"]))

    @classmethod
    def request_key(cls, config: Mapping[str, Any]) -> tuple[Any, ...]:
        return (config["query"],)

    async def measure(self, config: Mapping[str, Any]) -> Reading:
        cls = type(self)
        if cls.refusals > 0:
            cls.refusals -= 1
            raise ProviderRateLimited("slow down", retry_after=4.0)
        cls.in_flight[self.address] = cls.in_flight.get(self.address, 0) + 1
        cls.peak[self.address] = max(cls.peak.get(self.address, 0), cls.in_flight[self.address])
        cls.entered.put_nowait(self.address)
        try:
            await cls.gate.wait()
        finally:
            cls.in_flight[self.address] -= 1
        return Reading(result=1.0, value="1")

    async def series(
        self, config: Mapping[str, Any], query: str, start: datetime, end: datetime, step: float
    ) -> list[float]:
        return []

    async def aclose(self) -> None:
        pass


CLASSES = {"blocking": f"{__name__}:BlockingProvider"}


def _registry(limits: LimitsConfig, clock: FakeClock | None = None) -> ProviderRegistry:
    clock = clock or FakeClock()
    return ProviderRegistry(
        secrets=lambda n, k: None,
        limits=limits,
        metrics_registry=CollectorRegistry(),
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(0),
        classes=CLASSES,
    )


async def test_concurrency_per_address_is_capped_and_addresses_are_independent() -> None:
    BlockingProvider.reset()
    registry = _registry(LimitsConfig(concurrency=3, rate=0))
    calls = [
        registry.measure("blocking", {"address": address, "query": f"q{i}"})
        for address in ("http://a", "http://b")
        for i in range(10)
    ]
    tasks = [asyncio.ensure_future(call) for call in calls]
    for _ in range(6):  # three from each address get in ...
        await BlockingProvider.entered.get()
    for _ in range(20):  # ... and, however long we let the loop run, no more
        await asyncio.sleep(0)
    assert BlockingProvider.in_flight == {"http://a": 3, "http://b": 3}
    BlockingProvider.gate.set()
    await asyncio.gather(*tasks)
    assert BlockingProvider.peak == {"http://a": 3, "http://b": 3}
    await registry.aclose()


async def test_a_request_cancelled_as_its_slot_frees_is_cancelled_not_an_error() -> None:
    # Contention on one address: `queued` waits for the only slot. It is cancelled (a
    # measurement timeout, a terminated run) in the same instant the slot frees, so the
    # release skips it; it must end cancelled, never with an error an engine records.
    BlockingProvider.reset()
    limits = LimitsConfig(concurrency=1, rate=0, coalesce_window=0)
    async with _registry(limits) as registry:
        holder = asyncio.ensure_future(
            registry.measure("blocking", {"address": "http://a", "query": "q0"})
        )
        await BlockingProvider.entered.get()
        queued = asyncio.ensure_future(
            registry.measure("blocking", {"address": "http://a", "query": "q1"})
        )
        behind = asyncio.ensure_future(
            registry.measure("blocking", {"address": "http://a", "query": "q2"})
        )
        for _ in range(5):
            await asyncio.sleep(0)
        BlockingProvider.gate.set()  # the holder finishes and frees its slot ...
        queued.cancel()  # ... as the waiter next in line is cancelled
        with pytest.raises(asyncio.CancelledError):
            await queued
        await asyncio.gather(holder, behind)  # the slot reached the one behind it
        assert BlockingProvider.peak == {"http://a": 1}
        assert registry.in_flight("blocking", ("blocking", "http://a", "")) == 0
        # The slot is really free: the next request gets it at once.
        await registry.measure("blocking", {"address": "http://a", "query": "q3"})


async def test_rate_limit_spreads_a_burst_over_time_on_the_injected_clock() -> None:
    BlockingProvider.reset()
    BlockingProvider.gate.set()
    clock = FakeClock()
    limits = LimitsConfig(rate=10, burst=2, coalesce_window=0)
    async with _registry(limits, clock) as registry:
        for i in range(5):
            await registry.measure("blocking", {"address": "http://a", "query": f"q{i}"})
    # The clock only moves when the registry sleeps: two free tokens, then 1/rate each.
    assert clock.waits == pytest.approx([0.1, 0.1, 0.1])


async def test_per_kind_budget_applies_to_that_kind() -> None:
    BlockingProvider.reset()
    BlockingProvider.gate.set()
    clock = FakeClock()
    limits = LimitsConfig(rate=1000, burst=1000, per_kind={"blocking": KindLimits(rate=1, burst=1)})
    async with _registry(limits, clock) as registry:
        for i in range(3):
            await registry.measure("blocking", {"address": "http://a", "query": f"q{i}"})
    assert clock.waits == pytest.approx([1.0, 1.0])


async def test_retry_after_pauses_the_address_then_retries() -> None:
    BlockingProvider.reset()
    BlockingProvider.gate.set()
    BlockingProvider.refusals = 2
    clock = FakeClock()
    metrics = CollectorRegistry()
    registry = ProviderRegistry(
        secrets=lambda n, k: None,
        limits=LimitsConfig(rate=0),
        metrics_registry=metrics,
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(0),
        classes=CLASSES,
    )
    reading = await registry.measure("blocking", {"address": "http://a", "query": "q"})
    assert reading.value == "1"
    assert len(clock.waits) == 2 and all(4.0 <= w <= 4.4 for w in clock.waits)
    labels = {"provider": "blocking"}
    assert metrics.get_sample_value("analysisd_provider_requests_total", labels) == 3
    errors = {"provider": "blocking", "kind": "ProviderRateLimited"}
    assert metrics.get_sample_value("analysisd_provider_errors_total", errors) == 2
    assert metrics.get_sample_value("analysisd_provider_rate_limit_waits_total", labels) == 2
    await registry.aclose()


async def test_per_credentials_budget_gives_each_account_its_own_bucket() -> None:
    BlockingProvider.reset()
    BlockingProvider.gate.set()
    for per_credentials, expected in [(True, []), (False, [1.0])]:
        clock = FakeClock()
        per_kind = {"blocking": KindLimits(per_credentials=per_credentials)}
        async with _registry(LimitsConfig(rate=1, burst=1, per_kind=per_kind), clock) as registry:
            for account in ("team-a", "team-b"):  # same address, two accounts
                config = {"address": "http://a", "account": account, "query": "q"}
                await registry.measure("blocking", config)
        assert clock.waits == pytest.approx(expected)


def test_datadog_budget_is_per_credentials_by_default_and_overridable() -> None:
    assert LimitsConfig().per_credentials("datadog") is True
    assert LimitsConfig().per_credentials("prometheus") is False
    config = LimitsConfig.from_mapping({"perKind": {"datadog": {"perCredentials": False}}})
    assert config.per_credentials("datadog") is False


async def test_slots_hand_a_freed_slot_to_the_longest_waiter() -> None:
    slots = Slots(1)
    assert slots.try_acquire()
    order: list[str] = []

    async def wait(name: str) -> None:
        await slots.acquire()
        order.append(name)

    first, second = asyncio.ensure_future(wait("first")), asyncio.ensure_future(wait("second"))
    await asyncio.sleep(0)
    assert not slots.try_acquire()  # full, and others queue ahead of a newcomer
    slots.release()
    await asyncio.sleep(0)
    assert order == ["first"] and slots.in_use == 1
    slots.release()
    await asyncio.gather(first, second)
    assert order == ["first", "second"]
    slots.release()
    assert slots.in_use == 0


async def test_slots_a_cancelled_waiter_passes_its_slot_on() -> None:
    slots = Slots(1)
    assert slots.try_acquire()
    doomed = asyncio.ensure_future(slots.acquire())
    patient = asyncio.ensure_future(slots.acquire())
    await asyncio.sleep(0)
    slots.release()  # handed to `doomed` ...
    doomed.cancel()  # ... which is cancelled before it runs: the slot goes on to `patient`
    with pytest.raises(asyncio.CancelledError):
        await doomed
    await asyncio.wait_for(patient, 1)
    assert slots.in_use == 1


async def test_slots_a_waiter_cancelled_then_skipped_by_release_raises_cancelled_error() -> None:
    # The waiter's future is cancelled, then release() runs before the waiter does and
    # skips it: the waiter must still see CancelledError (it once saw ValueError).
    slots = Slots(1)
    assert slots.try_acquire()
    doomed = asyncio.ensure_future(slots.acquire())
    await asyncio.sleep(0)
    doomed.cancel()
    slots.release()
    with pytest.raises(asyncio.CancelledError):
        await doomed
    assert slots.in_use == 0
    assert slots.try_acquire()


async def test_slots_a_skipped_cancelled_waiter_does_not_hold_up_the_next_one() -> None:
    slots = Slots(1)
    assert slots.try_acquire()
    doomed = asyncio.ensure_future(slots.acquire())
    patient = asyncio.ensure_future(slots.acquire())
    await asyncio.sleep(0)
    doomed.cancel()
    slots.release()  # skips `doomed`, hands the slot to `patient`
    with pytest.raises(asyncio.CancelledError):
        await doomed
    await asyncio.wait_for(patient, 1)
    assert slots.in_use == 1
    slots.release()
    assert slots.in_use == 0


async def test_slots_a_timeout_while_release_skips_the_waiter_is_a_timeout() -> None:
    # What the registry sees: asyncio.timeout turns the cancellation into TimeoutError.
    slots = Slots(1)
    assert slots.try_acquire()

    async def acquire_within_timeout() -> None:
        async with asyncio.timeout(0):
            await slots.acquire()

    waiting = asyncio.ensure_future(acquire_within_timeout())
    await asyncio.sleep(0)  # queued; the timeout's callback is now due
    await asyncio.sleep(0)  # the timeout cancelled the waiter's future
    slots.release()  # before the waiter runs its cancellation
    with pytest.raises(TimeoutError):
        await waiting
    assert slots.in_use == 0


# Where a waiter is cancelled, relative to the release() that frees a slot for it.
CANCEL_POINTS = (
    "before it first runs",
    "queued, no release",
    "queued, cancelled, then released before it runs",
    "queued, released to it, then cancelled before it runs",
)


@pytest.mark.parametrize("point", CANCEL_POINTS)
async def test_slots_a_cancelled_waiter_gets_cancelled_error_and_leaks_no_slot(
    point: str,
) -> None:
    slots = Slots(1)
    assert slots.try_acquire()
    doomed = asyncio.ensure_future(slots.acquire())
    patient = asyncio.ensure_future(slots.acquire())
    if point == "before it first runs":
        doomed.cancel()
        await asyncio.sleep(0)
        slots.release()
    else:
        await asyncio.sleep(0)
        if point == "queued, no release":
            doomed.cancel()
            await asyncio.sleep(0)
            slots.release()
        elif point == "queued, cancelled, then released before it runs":
            doomed.cancel()
            slots.release()
        else:
            slots.release()
            doomed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await doomed
    await asyncio.wait_for(patient, 1)  # the freed slot reached the next waiter
    assert slots.in_use == 1
    slots.release()
    assert slots.in_use == 0
    assert slots.try_acquire()


# One step of a script run against Slots: start a waiter, cancel waiter i, free one
# held slot, let the loop run once, or let it run until nothing is ready.
_slot_ops = st.one_of(
    st.just(("spawn", 0)),
    st.tuples(st.just("cancel"), st.integers(0, 40)),
    st.just(("release", 0)),
    st.just(("step", 0)),
    st.just(("drain", 0)),
)


async def _drain() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def _run_slots_script(limit: int, script: list[tuple[str, int]]) -> None:
    slots = Slots(limit)
    tasks: list[asyncio.Task[None]] = []
    acquired: list[asyncio.Task[None]] = []  # in the order they got their slot
    released = 0  # slots the script gave back

    async def waiter() -> None:
        await slots.acquire()
        acquired.append(asyncio.current_task())  # type: ignore[arg-type]

    def check_quiet() -> None:
        waiting = [t for t in tasks if not t.done()]
        assert 0 <= slots.in_use <= limit
        assert slots.in_use == len(acquired) - released
        # No idle slot while someone waits (nobody starves behind a dead waiter).
        assert not (waiting and slots.in_use < limit)

    for op, arg in script:
        if op == "spawn":
            tasks.append(asyncio.ensure_future(waiter()))
        elif op == "cancel" and tasks:
            tasks[arg % len(tasks)].cancel()
        elif op == "release" and len(acquired) > released:
            released += 1
            slots.release()
        elif op == "step":
            await asyncio.sleep(0)
        elif op == "drain":
            await _drain()
            check_quiet()
        assert slots.in_use >= 0
    await _drain()
    check_quiet()
    # Free every slot until every waiter that was not cancelled got one, in turn.
    while len(acquired) > released or not all(t.done() for t in tasks):
        assert len(acquired) > released, "a waiter is waiting with every slot free"
        released += 1
        slots.release()
        await _drain()
    assert slots.in_use == 0
    for task in tasks:
        if task in acquired:
            assert task.exception() is None
        else:
            assert task.cancelled(), f"a cancelled waiter ended with {task.exception()!r}"


@settings(max_examples=300, deadline=None)
@given(limit=st.integers(1, 3), script=st.lists(_slot_ops, max_size=60))
def test_slots_never_leak_never_go_negative_and_cancelled_waiters_see_cancelled_error(
    limit: int, script: list[tuple[str, int]]
) -> None:
    asyncio.run(_run_slots_script(limit, script))


class CountingProvider(BlockingProvider):
    """BlockingProvider whose pool_key calls are counted; keys from the config alone."""

    pool_keys: ClassVar[int] = 0
    STATIC_KEYS: ClassVar[bool] = True

    @classmethod
    def pool_key(cls, config: Mapping[str, Any], secrets: SecretLookup) -> tuple[Any, ...]:
        CountingProvider.pool_keys += 1  # one count for both classes
        return super().pool_key(config, secrets)


class SecretKeyedProvider(CountingProvider):
    """Keys that read secrets (as Datadog's do): never worked out once for good."""

    STATIC_KEYS: ClassVar[bool] = False


async def test_a_binding_works_out_keys_once_unless_they_read_secrets() -> None:
    BlockingProvider.reset()
    BlockingProvider.gate.set()
    classes = {
        "static": f"{__name__}:CountingProvider",
        "secret": f"{__name__}:SecretKeyedProvider",
    }
    registry = ProviderRegistry(
        secrets=lambda n, k: None, limits=LimitsConfig(rate=0, coalesce_window=0), classes=classes
    )
    config = {"address": "http://a", "query": "q"}
    for kind in ("static", "secret"):
        CountingProvider.pool_keys = 0
        bound = registry.bind(kind, config)
        for _ in range(3):
            assert (await bound.measure()).value == "1"
        # static: the bind only; secret-keyed: the bind, then again for every measurement
        assert CountingProvider.pool_keys == (1 if kind == "static" else 4)
    await registry.aclose()
    with pytest.raises(ProviderError, match="closed"):
        await bound.measure()
