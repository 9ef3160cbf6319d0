"""Due measurements waiting for a worker: round-robin across namespaces, rate-limited.

One process serves many teams. When every worker is busy, due measurements
wait; a single FIFO would make one team's burst (9,900 runs falling due
together) everyone's wait. `FairQueue` keeps one FIFO per namespace and hands
out one measurement per namespace in turn, so a small team's measurement waits
for at most one measurement of each other busy team, not for the whole backlog.
With one namespace it is a FIFO.

Turns alone still make a small team wait for a worker to come free (at
saturation, every worker is busy with the big team). So while several
namespaces have runs (`share(limit, namespaces)`), a namespace holding its fair
share of the `limit` workers (limit / namespaces) or more may take another only
while `headroom` workers (a tenth) stay free for the others; below its fair
share it takes one whenever one is free. The big team then holds
`limit - headroom - (what the others use)`: however many workers a small team
uses, a tenth more stay free for its next measurement, which finds one at once
as it would alone (a fixed cap would leave it exactly a tenth, and its bursts
would wait for the big team's measurements to finish). Off with one namespace.
`cap`, when set, is a plain ceiling per namespace on top of that.

The event loop is shared too: every measurement's bookkeeping (parse, judge,
record) runs on it, so a big team's completions can make a small team's timers
late even with workers to spare. `throttle(n)` lowers what namespaces over their
fair share may fill (never below their fair share); the scheduler sets it from
the loop's lag.

A namespace with a `measurementsPerSecond` quota takes a token from its own
bucket per measurement; when the bucket is empty the namespace is parked until
its next token, its measurements kept in order (delayed, never dropped), and
the other namespaces go on.

Pure: time comes in as an argument (the scheduler passes its loop's clock).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["FairQueue", "TokenBucket"]

T = TypeVar("T")


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up (default: one second's worth)."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, now: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        self.rate = rate
        self.burst = max(1.0, burst if burst is not None else rate)
        self.tokens = self.burst
        self.stamp = now

    def take(self, now: float) -> float:
        """Take a token: 0.0 when taken, else the seconds until one is there (none taken)."""
        if now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class FairQueue(Generic[T]):
    """Per-namespace FIFOs served in turn; see the module docstring.

    `rate_of(namespace)` is the namespace's measurementsPerSecond (None: unlimited),
    asked once per namespace. `skip(item)` drops an item at the head of its queue
    without spending a token (a run that finished or was handed over meanwhile).
    """

    def __init__(
        self,
        rate_of: Callable[[str], float | None] = lambda namespace: None,
        skip: Callable[[T], bool] = lambda item: False,
    ) -> None:
        self._rate_of = rate_of
        self._skip = skip
        self._queues: dict[str, deque[T]] = {}
        self._ready: deque[str] = deque()  # namespaces with items and a token, in turn order
        self._parked: dict[str, float] = {}  # namespace -> when its next token is there
        self._buckets: dict[str, TokenBucket | None] = {}
        self._unpark_at = math.inf  # the earliest of _parked's times
        # Items taken and not yet finished, per namespace; namespaces at the cap wait.
        self._in_flight: dict[str, int] = {}
        self._total = 0  # items taken and not finished, every namespace together
        self._blocked: set[str] = set()
        self._cap: int | None = None
        # Fair share (see share()): None while one namespace has the process to itself.
        self._limit: int | None = None
        self._fair = 0
        self._headroom = 0
        self._throttle: int | None = None  # see throttle()
        self.runnable = 0  # items in namespaces that are not parked

    def __len__(self) -> int:
        return sum(len(queue) for queue in self._queues.values())

    def waiting(self, namespace: str) -> int:
        """Items of one namespace waiting (parked or not)."""
        queue = self._queues.get(namespace)
        return len(queue) if queue is not None else 0

    @property
    def cap(self) -> int | None:
        return self._cap

    @cap.setter
    def cap(self, cap: int | None) -> None:
        """Most items one namespace may have taken and not finished (None: no limit)."""
        self._cap = cap
        self._recheck()

    def share(self, limit: int | None, namespaces: int = 1) -> None:
        """`limit` workers shared by `namespaces` namespaces with runs (None: no sharing).

        A namespace at or over limit / namespaces may take an item only while more than
        a tenth of the limit stays free; under it, whenever the limit allows.
        """
        if limit is None or namespaces < 2 or limit < 2:
            self._limit = None
        else:
            self._limit = limit
            self._fair = max(1, limit // namespaces)
            self._headroom = max(1, limit // 10)
        self._recheck()

    def throttle(self, limit: int | None) -> None:
        """While sharing, namespaces over their fair share fill up to `limit` items in
        flight (all namespaces together) instead of the whole limit (None: no throttle).

        The scheduler lowers it while its event loop runs late: the loop is one more
        queue every namespace shares, and a big team's bookkeeping must not fill it."""
        self._throttle = limit
        self._recheck()

    def _may_take(self, namespace: str) -> bool:
        held = self._in_flight.get(namespace, 0)
        cap = self._cap
        if cap is not None and held >= cap:
            return False
        limit = self._limit
        if limit is None or held < self._fair:
            return True
        throttle = self._throttle
        if throttle is not None and throttle < limit:
            limit = throttle
        return self._total + self._headroom < limit

    def _recheck(self) -> None:
        for namespace in list(self._blocked):
            if self._may_take(namespace):
                self._unblock(namespace)

    def push(self, namespace: str, item: T) -> None:
        queue = self._queues.get(namespace)
        held = namespace in self._parked or namespace in self._blocked
        if queue is None:
            queue = self._queues[namespace] = deque()
            if not held:
                self._ready.append(namespace)
        queue.append(item)
        if not held:
            self.runnable += 1

    def finished(self, namespace: str) -> None:
        """An item of `namespace` taken by pop() is done: its worker is free."""
        left = self._in_flight.get(namespace, 1) - 1
        if left:
            self._in_flight[namespace] = left
        else:
            self._in_flight.pop(namespace, None)
        self._total = max(0, self._total - 1)
        if self._blocked:
            self._recheck()

    def _unblock(self, namespace: str) -> None:
        self._blocked.discard(namespace)
        queue = self._queues.get(namespace)
        if queue and namespace not in self._parked:
            self._ready.append(namespace)
            self.runnable += len(queue)

    def pop(self, now: float) -> T | None:
        """The next item in turn, or None when every namespace is empty or parked."""
        if self._parked and now >= self._unpark_at:
            self.unpark(now)
        ready = self._ready
        queues = self._queues
        skip = self._skip
        while ready:
            namespace = ready.popleft()
            queue = queues[namespace]
            while queue and skip(queue[0]):
                queue.popleft()
                self.runnable -= 1
            if not queue:
                del queues[namespace]
                continue
            if not self._may_take(namespace):
                self._blocked.add(namespace)  # back in turn when an item finishes
                self.runnable -= len(queue)
                continue
            bucket = self._bucket(namespace, now)
            if bucket is not None:
                wait = bucket.take(now)
                if wait > 0.0:
                    self._parked[namespace] = now + wait
                    self._unpark_at = min(self._unpark_at, now + wait)
                    self.runnable -= len(queue)
                    continue
            item = queue.popleft()
            self.runnable -= 1
            self._in_flight[namespace] = self._in_flight.get(namespace, 0) + 1
            self._total += 1
            if queue:
                ready.append(namespace)
            else:
                del queues[namespace]
            return item
        return None

    def next_unpark(self) -> float | None:
        """When the earliest parked namespace gets its token (None: none parked)."""
        return self._unpark_at if self._parked else None

    def unpark(self, now: float) -> int:
        """Put namespaces whose token is due back in turn; the number of items freed."""
        freed = 0
        for namespace, at in list(self._parked.items()):
            if at > now:
                continue
            del self._parked[namespace]
            queue = self._queues.get(namespace)
            if queue and namespace not in self._blocked:
                self._ready.append(namespace)
                freed += len(queue)
        self.runnable += freed
        self._unpark_at = min(self._parked.values(), default=math.inf)
        return freed

    def clear(self) -> None:
        self._queues.clear()
        self._ready.clear()
        self._parked.clear()
        self._blocked.clear()
        self._unpark_at = math.inf
        self.runnable = 0

    def _bucket(self, namespace: str, now: float) -> TokenBucket | None:
        try:
            return self._buckets[namespace]
        except KeyError:
            rate = self._rate_of(namespace)
            bucket = TokenBucket(rate, now) if rate else None
            self._buckets[namespace] = bucket
            return bucket
