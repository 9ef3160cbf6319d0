"""Durable verdict delivery: CloudEvents built from run changes, signed, retried.

The pure half (`events_for_change`, `sign`, `backoff`) turns a run change into
outbox rows; the store writes them in the same transaction as the change. The
`Deliverer` is the I/O half: it POSTs due rows, records every attempt, and
backs off exponentially with jitter until a 2xx or the row's max age (dead).
Rows are delivered at least once; `id` is stable across retries, so receivers
de-duplicate on it.

Per-target queues: due rows are handed to a queue per receiver (scheme://host:port),
each sending at most `per_target` rows at once, so a dead or hanging receiver holds
only its own slots. When a receiver fails, the rest of its queue is deferred to its
retry time (recorded as such) instead of waiting behind the failure, which keeps
its backlog out of the rows due for everyone else. That retry time is the
receiver's own back-off (growing with its failures in a row, reset by a success),
and a full queue's rows wait as long as its oldest send has been open: a dead
receiver's backlog comes due ever more rarely instead of being fetched and
deferred again every poll ahead of other receivers' rows (bench/
bench_fair_share_webhooks.py); deferred rows are spread over as long again, so a
backlog comes due a little at a time. Deferrals are written together, one commit.
While a receiver is in back-off (or its queue is full) the store leaves its rows out of
the fetch (`due_deliveries(skip=...)`, by scheme://netloc) and, once a period, makes its
due backlog due at the end of that period in one statement (`postpone_deliveries`), so
fetches neither return nor step over a dead receiver's rows ahead of other receivers'.
A receiver's bookkeeping is `outbox_receivers.Receiver`; one row's POST (signed, routed
by its namespace, answer capped) is `outbox_send.post_row`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import structlog

from analysisd.loops import LoopHealth
from analysisd.outbox_events import (
    ANSWER_MAX_BYTES,
    CALLBACK_SECRET,
    CALLBACK_URL,
    COMPLETED_EVENT,
    CONTENT_TYPE,
    HMAC_KEY,
    MEASUREMENT_EVENT,
    SIGNATURE_HEADER,
    Target,
    backoff,
    cloudevent,
    events_for_change,
    masked_url,
    receiver_of,
    sign,
    targets_for,
    verify,
)
from analysisd.outbox_receivers import Receiver
from analysisd.outbox_send import WEBHOOK_POLICY, Routing, SecretLookup, post_row, webhook_session
from analysisd.store.records import OutboxRow

# The pure half lives in analysisd/outbox_events.py, one row's POST in outbox_send.py;
# their names are re-exported here.
__all__ = [
    "ANSWER_MAX_BYTES",
    "CALLBACK_SECRET",
    "CALLBACK_URL",
    "COMPLETED_EVENT",
    "CONTENT_TYPE",
    "HMAC_KEY",
    "MEASUREMENT_EVENT",
    "SIGNATURE_HEADER",
    "WEBHOOK_POLICY",
    "Deliverer",
    "DeliveryPolicy",
    "Routing",
    "Target",
    "backoff",
    "cloudevent",
    "events_for_change",
    "masked_url",
    "public_rows",
    "receiver_of",
    "sign",
    "targets_for",
    "verify",
]

log = structlog.get_logger(__name__)


class OutboxStore(Protocol):
    async def due_deliveries(
        self, now: float, limit: int = 100, *, skip: Collection[str] = ()
    ) -> list[OutboxRow]: ...

    async def next_delivery_at(self) -> float | None: ...

    async def postpone_deliveries(self, skip: Collection[str], until: float) -> int: ...

    async def record_attempt(
        self,
        row: OutboxRow,
        *,
        state: str,
        at: float,
        next_attempt_at: float,
        status: int | None,
        error: str | None,
    ) -> None: ...


class DeliveryTelemetry(Protocol):
    def delivery(self, outcome: str) -> None: ...


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    timeout: float = 10.0
    max_age: float = 24 * 3600.0
    backoff_base: float = 1.0
    backoff_max: float = 300.0
    poll_interval: float = 1.0
    concurrency: int = 64  # rows in flight, all receivers together
    per_target: int = 4  # rows in flight to one receiver (scheme://host:port)
    queue_per_target: int = 64  # rows held in memory per receiver; more wait in the store
    batch: int = 200


class Deliverer:
    """POSTs due outbox rows until acknowledged or dead; owns its HTTP session and tasks."""

    def __init__(
        self,
        store: OutboxStore,
        secrets: SecretLookup,
        *,
        policy: DeliveryPolicy | None = None,
        telemetry: DeliveryTelemetry | None = None,
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
        route: Callable[[OutboxRow], Routing] | None = None,
    ) -> None:
        self._store = store
        self._secrets = secrets
        self._policy = policy or DeliveryPolicy()
        self._telemetry = telemetry
        self._clock = clock
        self._rand = rand
        self._route = route or (lambda row: Routing(self._secrets))
        self._wake = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._limit = asyncio.Semaphore(self._policy.concurrency)
        self._receivers: dict[str, Receiver] = {}
        self._held: set[tuple[str, str]] = set()  # (event id, target) queued or in flight
        self._sending: set[asyncio.Task[None]] = set()
        self._skipped_until: float | None = None
        # Store errors back off from the poll interval up to half a minute.
        self.health = LoopHealth(
            "outbox-deliverer",
            backoff_base=self._policy.poll_interval,
            backoff_max=max(30.0, self._policy.poll_interval),
            rand=rand,
        )

    async def start(self) -> None:
        self._session = webhook_session(self._policy.timeout)
        self._task = self.health.watch(asyncio.get_running_loop().create_task(self._loop()))

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        sending = list(self._sending)
        for task in sending:
            task.cancel()
        await asyncio.gather(*sending, return_exceptions=True)
        self._sending.clear()
        self._receivers.clear()
        self._held.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Deliverer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def notify(self) -> None:
        """New rows were committed: look now instead of at the next poll."""
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            try:
                wait = await self._pass()
            except Exception as exc:
                # The store hiccuped (locked, disk full, connection lost): every row is
                # still in the outbox, so pause (backing off) and go on delivering.
                await asyncio.sleep(self.health.failed(exc))
                continue
            self.health.succeeded()
            if wait is None:
                continue
            # Not asyncio.wait_for: on Python 3.11 it swallows a cancellation that
            # arrives just after the wake-up, and the loop would outlive aclose().
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    async def _pass(self) -> float | None:
        """Queue what is due: None to look again at once, else how long to wait."""
        if await self.deliver_due():
            return None
        self._wake.clear()
        wait = self._policy.poll_interval
        next_at = await self._store.next_delivery_at()
        if next_at is not None:
            wait = max(0.0, min(wait, next_at - self._clock()))
        if self._skipped_until is not None:
            # Due rows were left for receivers in back-off or full: they are not news.
            wait = max(wait, min(self._policy.poll_interval, self._skipped_until - self._clock()))
        return wait

    async def deliver_due(self) -> int:
        """Hand the due rows to their receivers' queues; the number newly queued.

        Rows already queued or in flight are due too (they are recorded when sent), so
        the fetch asks for that many more. The store leaves out the rows of receivers in
        back-off (or with a full queue): a dead receiver's backlog is not read, nor
        skipped, ahead of other receivers' rows, and stays untouched in the store until
        its receiver takes rows again. Rows of such a receiver that the fetch returns
        all the same (a target not seen before; on PostgreSQL, rows this replica claimed
        already) are left in the store too, and deferred there when the fetch came
        back full.
        """
        now = self._clock()
        self._skipped_until = None
        skip: set[str] = set()
        for resting in self._receivers.values():
            until = resting.resting_until(
                now, self._policy.queue_per_target, self._policy.poll_interval
            )
            if until is None or not resting.prefixes:
                continue
            skip |= resting.prefixes
            self._skip(until)
            if resting.postponed_until <= now:
                # Its due backlog is made due when it may take rows again, in one
                # statement, once a period: fetches need not step over it meanwhile.
                await self._store.postpone_deliveries(resting.prefixes, until)
                resting.postponed_until = until
        # Rows held when the fetch starts are skipped even if their send is recorded
        # while the fetch runs: the store may hand back its pre-record copy (PostgreSQL
        # re-claims our own rows), and sending that again would duplicate the event.
        held_at_fetch = set(self._held)
        limit = self._policy.batch + len(held_at_fetch)
        rows = await self._store.due_deliveries(now, limit, skip=skip)
        full = len(rows) >= limit
        queued = 0
        deferred: list[tuple[OutboxRow, Receiver]] = []
        busy: list[tuple[OutboxRow, Receiver]] = []
        for row in rows:
            key = (row.event_id, row.target)
            if key in self._held or key in held_at_fetch:
                continue
            receiver = self._receivers.get(receiver_of(row.target))
            if receiver is None:
                receiver = Receiver(receiver_of(row.target))
                self._receivers[receiver.key] = receiver
            receiver.note_target(row.target)
            if receiver.retry_at > now:
                deferred.append((row, receiver))
                self._skip(receiver.retry_at)
                continue
            if len(receiver.waiting) >= self._policy.queue_per_target:
                busy.append((row, receiver))
                self._skip(now + self._policy.poll_interval)
                continue
            self._held.add(key)
            receiver.waiting.append(row)
            queued += 1
            self._pump(receiver)
        if full and deferred:
            await self._defer(deferred, now)
        if full and busy:
            await self._defer(busy, now, "busy (its queue is full)")
        return queued

    def _skip(self, until: float) -> None:
        if self._skipped_until is None or until < self._skipped_until:
            self._skipped_until = until

    def _pump(self, receiver: Receiver) -> None:
        """Start sends for `receiver` up to its share of slots."""
        while receiver.waiting and receiver.in_flight < self._policy.per_target:
            row = receiver.waiting.popleft()
            receiver.in_flight += 1
            receiver.sends[(row.event_id, row.target)] = self._clock()
            task = asyncio.get_running_loop().create_task(self._send(receiver, row))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, receiver: Receiver, row: OutboxRow) -> None:
        retry_at: float | None = None
        sent = False
        try:
            retry_at = await self._deliver(row)
            sent = retry_at is None
        except Exception as exc:
            # Recording failed (the store): the row is still pending there and comes back.
            self.health.failed(exc)
        finally:
            receiver.in_flight -= 1
            receiver.sends.pop((row.event_id, row.target), None)
            self._held.discard((row.event_id, row.target))
        if sent:
            receiver.failures = 0
        if retry_at is not None:
            # The receiver failed: what waits for it waits for its retry, in the store.
            receiver.failures += 1
            own = self._clock() + backoff(
                receiver.failures,
                base=self._policy.backoff_base,
                cap=self._policy.backoff_max,
                rand=self._rand,
            )
            receiver.retry_at = max(receiver.retry_at, retry_at, own)
            for waiting in receiver.waiting:
                self._held.discard((waiting.event_id, waiting.target))
            receiver.waiting.clear()
        self._pump(receiver)
        if not receiver.in_flight and not receiver.waiting:
            if receiver.retry_at <= self._clock() and not receiver.failures:
                self._receivers.pop(receiver.key, None)
            self._wake.set()  # rows of this receiver may be waiting in the store

    async def _defer(
        self, rows: list[tuple[OutboxRow, Receiver]], now: float, reason: str = "failing"
    ) -> None:
        """Rows of a receiver that failed (or has a full queue) wait in the store until
        its retry time, or (full) until it may have room: no sooner than its oldest send
        in flight has lasted, so a hanging receiver's backlog is not fetched and deferred
        again every poll, ahead of every other receiver's rows. Recorded together (the
        store commits them in one go), not one commit after another."""
        writes = []
        outcomes = []
        for row, receiver in rows:
            retry_at = receiver.room_at(now, self._policy.poll_interval)
            # Spread over as long again: a backlog comes back a little at a time, never
            # all at once ahead of everyone's rows (nor all at a receiver that recovered).
            retry_at += (retry_at - now) * self._rand()
            if now - row.created_at >= self._policy.max_age:
                state, retry_at = "dead", now
            else:
                state = "pending"
            writes.append(
                self._store.record_attempt(
                    row,
                    state=state,
                    at=now,
                    next_attempt_at=retry_at,
                    status=None,
                    error=f"not sent yet: {masked_url(receiver.key)} is {reason}; deferred",
                )
            )
            outcomes.append("dead" if state == "dead" else "deferred")
        await asyncio.gather(*writes)
        if self._telemetry is not None:
            for outcome in outcomes:
                self._telemetry.delivery(outcome)

    async def _deliver(self, row: OutboxRow) -> float | None:
        """Send one row and record it; the receiver's retry time when it failed, else None."""
        async with self._limit:
            assert self._session is not None, "Deliverer.start() was not awaited"
            status, error = await post_row(
                self._session, row, self._route(row), self._policy.timeout
            )
        now = self._clock()
        retry_at: float | None = None
        if status is not None and 200 <= status < 300:
            state, outcome = "delivered", "delivered"
            next_at = now
        elif now - row.created_at >= self._policy.max_age:
            state, outcome = "dead", "dead"
            next_at = now
        else:
            state, outcome = "pending", "failed"
            delay = backoff(
                row.attempts,
                base=self._policy.backoff_base,
                cap=self._policy.backoff_max,
                rand=self._rand,
            )
            next_at = retry_at = now + delay
        await self._store.record_attempt(
            row, state=state, at=now, next_attempt_at=next_at, status=status, error=error
        )
        if self._telemetry is not None:
            self._telemetry.delivery(outcome)
        log.info(
            "webhook delivery",
            namespace=row.namespace,
            run=row.name,
            event_id=row.event_id,
            # Webhook URLs often carry a token in the query (Slack, Teams): never log it.
            target=masked_url(row.target),
            outcome=outcome,
            status=status,
            error=error,
        )
        return retry_at


def public_rows(rows: Iterable[OutboxRow]) -> list[Mapping[str, Any]]:
    """Delivery status for the API: target URLs with query values masked."""
    out: list[Mapping[str, Any]] = []
    for row in rows:
        public = row.public()
        shown = masked_url(row.target)
        public["target"] = shown
        if public.get("lastError"):
            public["lastError"] = str(public["lastError"]).replace(row.target, shown)
        out.append(public)
    return out
