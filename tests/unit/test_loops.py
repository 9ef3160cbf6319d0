"""LoopHealth: backoff per consecutive failure, when a loop counts as failing or dead."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from analysisd.loops import LoopHealth, problems


def test_backoff_doubles_per_consecutive_failure_up_to_the_cap() -> None:
    health = LoopHealth("l", backoff_base=1.0, backoff_max=5.0, rand=lambda: 1.0)
    waits = [health.failed(RuntimeError("x")) for _ in range(5)]
    assert waits == [1.0, 2.0, 4.0, 5.0, 5.0]
    health.succeeded()
    assert health.failed(RuntimeError("x")) == 1.0  # a success starts the count again


def test_backoff_jitter_stays_within_half_to_full_ceiling() -> None:
    low = LoopHealth("l", backoff_base=2.0, rand=lambda: 0.0)
    assert low.failed(RuntimeError("x")) == 1.0


def test_a_loop_is_failing_after_enough_consecutive_failures_until_one_pass_works() -> None:
    health = LoopHealth("deliverer", failing_after=3)
    for _ in range(2):
        health.failed(OSError("database is locked"))
    assert health.problem is None
    health.failed(OSError("database is locked"))
    assert health.problem is not None and health.problem.startswith("failing: 3")
    assert "locked" not in health.problem  # the error text is for the log only
    assert problems([health, LoopHealth("other")]) == {"deliverer": health.problem}
    health.succeeded()
    assert health.problem is None and problems([health]) == {}


def test_every_failure_is_logged_with_its_exception() -> None:
    health = LoopHealth("ttl-collector")
    error = OSError("database is locked")
    with capture_logs() as logs:
        health.failed(error)
        health.succeeded()
    assert logs[0]["event"] == "loop pass failed"
    assert logs[0]["log_level"] == "error"
    assert logs[0]["loop"] == "ttl-collector" and logs[0]["failures"] == 1
    assert logs[0]["exc_info"] is error
    assert logs[1]["event"] == "loop recovered"


async def test_a_task_that_ends_is_dead_but_a_cancelled_one_is_not() -> None:
    crashed, stopped = LoopHealth("crashed"), LoopHealth("stopped")

    async def crash() -> None:
        raise KeyError("escaped")

    with capture_logs() as logs:
        task = crashed.watch(asyncio.ensure_future(crash()))
        with pytest.raises(KeyError):
            await task
        cancelled = stopped.watch(asyncio.ensure_future(asyncio.sleep(3600)))
        await asyncio.sleep(0)
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        await asyncio.sleep(0)  # done callbacks run
    assert crashed.dead and crashed.problem is not None
    assert crashed.problem.startswith("dead")
    assert not stopped.dead and stopped.problem is None
    died = [e for e in logs if e["event"] == "loop died"]
    assert [e["loop"] for e in died] == ["crashed"]
    assert isinstance(died[0]["exc_info"], KeyError)
