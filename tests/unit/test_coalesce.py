"""Coalescer: single flight per key, result reuse for a window from the request's start."""

from __future__ import annotations

import asyncio

import pytest

from providers.coalesce import Coalescer


class Clock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Source:
    """Counts calls; each call waits for the gate, then answers or fails."""

    def __init__(self) -> None:
        self.calls = 0
        self.gate = asyncio.Event()
        self.fail = False

    async def __call__(self) -> str:
        self.calls += 1
        await self.gate.wait()
        if self.fail:
            raise RuntimeError(f"failure {self.calls}")
        return f"answer {self.calls}"


async def test_concurrent_identical_calls_share_one_request() -> None:
    source, coalescer = Source(), Coalescer[str](1.0, Clock(5.0))
    tasks = [asyncio.ensure_future(coalescer.run("q", source)) for _ in range(100)]
    await asyncio.sleep(0)
    source.gate.set()
    results = await asyncio.gather(*tasks)
    assert source.calls == 1
    assert {value for value, _ in results} == {"answer 1"}
    assert sum(shared for _, shared in results) == 99


async def test_result_is_reused_within_the_window_and_refreshed_after() -> None:
    clock = Clock(10.2)
    source, coalescer = Source(), Coalescer[str](1.0, clock)
    source.gate.set()
    assert await coalescer.run("q", source) == ("answer 1", False)
    clock.now = 11.1  # across a whole second, still within 1 s of the request
    assert await coalescer.run("q", source) == ("answer 1", True)
    clock.now = 11.2  # the window has passed
    assert await coalescer.run("q", source) == ("answer 2", False)
    clock.now = 12.1
    assert await coalescer.run("q", source) == ("answer 2", True)


async def test_distinct_keys_are_not_merged() -> None:
    source, coalescer = Source(), Coalescer[str](1.0, Clock())
    source.gate.set()
    await asyncio.gather(*(coalescer.run(f"q{i % 3}", source) for i in range(30)))
    assert source.calls == 3


async def test_failure_is_shared_with_waiters_but_never_cached() -> None:
    source, coalescer = Source(), Coalescer[str](1.0, Clock())
    source.fail = True
    tasks = [asyncio.ensure_future(coalescer.run("q", source)) for _ in range(5)]
    await asyncio.sleep(0)
    source.gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert source.calls == 1
    assert all(isinstance(r, RuntimeError) for r in results)
    source.fail = False
    assert await coalescer.run("q", source) == ("answer 2", False)  # within the window, asked again


async def test_one_cancelled_waiter_does_not_cancel_the_shared_request() -> None:
    source, coalescer = Source(), Coalescer[str](1.0, Clock())
    first = asyncio.ensure_future(coalescer.run("q", source))
    second = asyncio.ensure_future(coalescer.run("q", source))
    third = asyncio.ensure_future(coalescer.run("q", source))
    await asyncio.sleep(0)
    second.cancel()  # a waiter, not the leader
    await asyncio.sleep(0)
    source.gate.set()
    assert await first == ("answer 1", False)
    assert await third == ("answer 1", True)
    assert source.calls == 1
    with pytest.raises(asyncio.CancelledError):
        await second


async def test_waiters_ask_again_when_the_leader_is_cancelled() -> None:
    # The leader sends the request in its own task; cancelling it (its run was
    # terminated) cancels that request, and the waiters do not fail: one of them
    # sends it again, the rest share that answer.
    source, coalescer = Source(), Coalescer[str](1.0, Clock())
    leader = asyncio.ensure_future(coalescer.run("q", source))
    await asyncio.sleep(0)
    waiters = [asyncio.ensure_future(coalescer.run("q", source)) for _ in range(3)]
    await asyncio.sleep(0)
    leader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leader
    source.gate.set()
    results = await asyncio.gather(*waiters)
    assert source.calls == 2
    assert {value for value, _ in results} == {"answer 2"}
    assert sorted(shared for _, shared in results) == [False, True, True]


async def test_request_is_cancelled_when_every_waiter_left() -> None:
    source, coalescer = Source(), Coalescer[str](1.0, Clock())
    only = asyncio.ensure_future(coalescer.run("q", source))
    await asyncio.sleep(0)
    only.cancel()
    with pytest.raises(asyncio.CancelledError):
        await only
    source.gate.set()
    assert await coalescer.run("q", source) == ("answer 2", False)


async def test_zero_window_is_single_flight_only() -> None:
    source, coalescer = Source(), Coalescer[str](0.0, Clock())
    source.gate.set()
    assert (await coalescer.run("q", source))[0] == "answer 1"
    assert (await coalescer.run("q", source))[0] == "answer 2"
    assert coalescer.pending() == 0


async def test_finished_entries_past_their_window_are_dropped() -> None:
    clock = Clock()
    source, coalescer = Source(), Coalescer[str](1.0, clock)
    source.gate.set()
    for second in range(50):
        clock.now = float(second)
        await coalescer.run(f"q{second}", source)
    assert coalescer.pending() <= 2
