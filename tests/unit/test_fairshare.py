"""FairQueue: namespaces served in turn, per-namespace token buckets (time passed in)."""

from __future__ import annotations

import pytest

from analysisd.engine.fairshare import FairQueue, TokenBucket


def drain(queue: FairQueue[str], now: float = 0.0) -> list[str]:
    out = []
    while (item := queue.pop(now)) is not None:
        out.append(item)
    return out


def test_one_namespace_is_a_fifo() -> None:
    queue: FairQueue[str] = FairQueue()
    for i in range(5):
        queue.push("a", f"a{i}")
    assert queue.runnable == 5
    assert drain(queue) == ["a0", "a1", "a2", "a3", "a4"]
    assert queue.runnable == 0 and len(queue) == 0


def test_a_small_namespace_waits_one_turn_not_the_big_ones_backlog() -> None:
    queue: FairQueue[str] = FairQueue()
    for i in range(1000):
        queue.push("big", f"big{i}")
    queue.push("small", "small0")
    queue.push("small", "small1")
    order = drain(queue)
    assert order[:4] == ["big0", "small0", "big1", "small1"]
    assert len(order) == 1002


def test_namespaces_take_turns_in_arrival_order() -> None:
    queue: FairQueue[str] = FairQueue()
    for ns in ("a", "b", "c"):
        for i in range(2):
            queue.push(ns, f"{ns}{i}")
    assert drain(queue) == ["a0", "b0", "c0", "a1", "b1", "c1"]


def test_skipped_items_are_dropped_without_taking_a_turn_or_a_token() -> None:
    queue: FairQueue[str] = FairQueue(rate_of=lambda ns: 1.0, skip=lambda item: "gone" in item)
    queue.push("a", "gone1")
    queue.push("a", "gone2")
    queue.push("a", "a0")
    assert queue.pop(0.0) == "a0"  # the bucket's one token was not spent on the gone ones
    assert queue.runnable == 0


def test_a_namespace_over_its_rate_is_parked_delayed_never_dropped() -> None:
    queue: FairQueue[str] = FairQueue(rate_of=lambda ns: 2.0 if ns == "slow" else None)
    for i in range(5):
        queue.push("slow", f"s{i}")
        queue.push("fast", f"f{i}")
    # Burst of one second's worth (2), then parked; the other namespace goes on.
    assert drain(queue, now=0.0) == ["s0", "f0", "s1", "f1", "f2", "f3", "f4"]
    assert queue.waiting("slow") == 3 and queue.runnable == 0
    assert queue.next_unpark() == pytest.approx(0.5)
    assert queue.pop(0.4) is None
    assert queue.pop(0.5) == "s2"  # due: unparked by the pop itself
    assert queue.pop(0.5) is None
    assert queue.next_unpark() == pytest.approx(1.0)
    assert queue.unpark(1.0) == 2
    assert drain(queue, now=1.0) == ["s3"]
    assert drain(queue, now=1.5) == ["s4"]
    assert len(queue) == 0


def test_items_pushed_to_a_parked_namespace_wait_for_it() -> None:
    queue: FairQueue[str] = FairQueue(rate_of=lambda ns: 1.0)
    queue.push("a", "a0")
    queue.push("a", "a1")
    assert drain(queue, 0.0) == ["a0"]
    queue.push("a", "a2")
    assert queue.runnable == 0 and queue.waiting("a") == 2
    assert drain(queue, 1.0) == ["a1"]
    assert drain(queue, 2.0) == ["a2"]


@pytest.mark.parametrize(
    ("rate", "times", "taken"),
    [
        (1.0, [0.0, 0.0, 1.0, 1.5, 2.0], [True, False, True, False, True]),
        (10.0, [0.0] * 11, [True] * 10 + [False]),
        (0.5, [0.0, 1.0, 2.0], [True, False, True]),
    ],
)
def test_token_bucket_refills_at_its_rate(
    rate: float, times: list[float], taken: list[bool]
) -> None:
    bucket = TokenBucket(rate, now=0.0)
    assert [bucket.take(t) == 0.0 for t in times] == taken


def test_token_bucket_says_how_long_until_the_next_token() -> None:
    bucket = TokenBucket(4.0, now=0.0)
    for _ in range(4):
        assert bucket.take(0.0) == 0.0
    assert bucket.take(0.0) == pytest.approx(0.25)
    assert bucket.take(0.1) == pytest.approx(0.15)


def test_a_namespace_at_the_cap_waits_until_one_of_its_items_finishes() -> None:
    queue: FairQueue[str] = FairQueue()
    queue.cap = 2
    for i in range(4):
        queue.push("big", f"big{i}")
    assert drain(queue) == ["big0", "big1"]  # two taken, not finished: big waits
    queue.push("small", "small0")
    assert drain(queue) == ["small0"]  # the workers kept back serve the small one
    queue.finished("big")
    assert drain(queue) == ["big2"]
    queue.cap = None  # one namespace again: no cap
    assert drain(queue) == ["big3"]


def test_lifting_the_cap_frees_blocked_namespaces() -> None:
    queue: FairQueue[str] = FairQueue()
    queue.cap = 1
    queue.push("a", "a0")
    queue.push("a", "a1")
    assert drain(queue) == ["a0"]
    assert queue.runnable == 0
    queue.cap = 5
    assert queue.runnable == 1
    assert drain(queue) == ["a1"]


def test_a_namespace_over_its_fair_share_leaves_a_tenth_free_beyond_what_others_use() -> None:
    queue: FairQueue[str] = FairQueue()
    queue.share(20, namespaces=2)  # fair share 10 each, headroom 2
    for i in range(30):
        queue.push("big", f"big{i}")
    assert len(drain(queue)) == 18  # 20 - headroom: two stay free
    for i in range(5):
        queue.push("small", f"small{i}")
    # Under its fair share, small takes the free workers (the scheduler's limit stops
    # it at 20 in all); big, over its share, takes none while fewer than 2 are free.
    assert drain(queue) == [f"small{i}" for i in range(5)]
    queue.finished("big")
    assert drain(queue) == []  # 22 taken, 1 finished: still not 2 free beyond the others
    for _ in range(5):
        queue.finished("small")
    # 17 taken (all big): big may go back up to 18 (20 - headroom), no further.
    assert drain(queue) == ["big18"]


def test_sharing_off_lets_one_namespace_take_everything() -> None:
    queue: FairQueue[str] = FairQueue()
    queue.share(4, namespaces=2)  # fair 2, headroom 1: big may hold 3
    for i in range(5):
        queue.push("big", f"big{i}")
    assert drain(queue) == ["big0", "big1", "big2"]
    queue.share(None)
    assert queue.runnable == 2
    assert drain(queue) == ["big3", "big4"]
