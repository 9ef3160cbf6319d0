"""Durable verdict delivery: CloudEvents built from run changes, signed, retried.

The pure half (`events_for_change`, `sign`, `backoff`) turns a run change into
outbox rows; the store writes them in the same transaction as the change. The
`Deliverer` is the I/O half: it POSTs due rows, records every attempt, and
backs off exponentially with jitter until a 2xx or the row's max age (dead).
Rows are delivered at least once; `id` is stable across retries, so receivers
de-duplicate on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import random
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import structlog

from analysisd.config import Subscription
from analysisd.engine.observer import RunChange
from analysisd.loops import LoopHealth
from analysisd.spec import AnalysisRun
from analysisd.store.records import OutboxRow

CALLBACK_URL = "analysisd.io/callback-url"
CALLBACK_SECRET = "analysisd.io/callback-secret"
HMAC_KEY = "hmac-key"
SIGNATURE_HEADER = "X-Analysisd-Signature"
MEASUREMENT_EVENT = "io.analysisd.analysisrun.measurement"
COMPLETED_EVENT = "io.analysisd.analysisrun.completed"
CONTENT_TYPE = "application/cloudevents+json"
_ERROR_EXCERPT = 300

log = structlog.get_logger(__name__)


class SecretLookup(Protocol):
    def get(self, name: str, key: str) -> str | None: ...


class OutboxStore(Protocol):
    async def due_deliveries(self, now: float, limit: int = 100) -> list[OutboxRow]: ...

    async def next_delivery_at(self) -> float | None: ...

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
class Target:
    url: str
    secret_name: str | None
    types: tuple[str, ...] = ()

    def wants(self, event_type: str) -> bool:
        return not self.types or event_type in self.types


def targets_for(run: AnalysisRun, subscriptions: Iterable[Subscription]) -> list[Target]:
    """The run's own callback (annotations) plus every daemon-wide subscription."""
    out = []
    annotations = run.metadata.annotations
    url = annotations.get(CALLBACK_URL)
    if url:
        out.append(Target(url, annotations.get(CALLBACK_SECRET) or None))
    out.extend(Target(s.url, s.secret, s.types) for s in subscriptions)
    return out


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def cloudevent(
    event_type: str, run: AnalysisRun, data: Any, *, now: float, source: str, **extensions: str
) -> tuple[str, str]:
    """(id, body) of a CloudEvents 1.0 structured-mode JSON event."""
    event_id = str(uuid.uuid4())
    namespace = run.metadata.namespace or "default"
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id,
        "type": event_type,
        "source": source,
        "subject": f"{namespace}/{run.metadata.name}",
        "time": _iso(now),
        "datacontenttype": "application/json",
        **extensions,
        "data": data,
    }
    return event_id, json.dumps(event, separators=(",", ":"))


def events_for_change(
    run: AnalysisRun,
    change: RunChange,
    targets: Iterable[Target],
    *,
    now: float,
    source: str,
) -> list[OutboxRow]:
    """Outbox rows announcing one change: each new measurement, then completion."""
    targets = list(targets)
    if not targets:
        return []
    events: list[tuple[str, str, str]] = []
    for new in change.measurements:
        data = new.measurement.model_dump(mode="json", by_alias=True, exclude_none=True)
        event_id, body = cloudevent(
            MEASUREMENT_EVENT,
            run,
            data,
            now=now,
            source=source,
            # CloudEvents extension attributes: lowercase alphanumerics only.
            metricname=new.metric,
            dryrun="true" if new.dry_run else "false",
        )
        events.append((event_id, MEASUREMENT_EVENT, body))
    if change.completed and run.status is not None:
        data = run.status.model_dump(mode="json", by_alias=True, exclude_none=True)
        event_id, body = cloudevent(COMPLETED_EVENT, run, data, now=now, source=source)
        events.append((event_id, COMPLETED_EVENT, body))
    namespace = run.metadata.namespace or "default"
    return [
        OutboxRow(
            event_id=event_id,
            target=t.url,
            secret_name=t.secret_name,
            namespace=namespace,
            name=run.metadata.name,
            event_type=event_type,
            body=body,
            created_at=now,
            next_attempt_at=now,
        )
        for event_id, event_type, body in events
        for t in targets
        if t.wants(event_type)
    ]


def sign(body: bytes, key: str) -> str:
    """The X-Analysisd-Signature value: sha256=<hex HMAC-SHA256 of the raw body>."""
    return "sha256=" + hmac.new(key.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(body: bytes, key: str, header: str) -> bool:
    return hmac.compare_digest(sign(body, key), header)


def backoff(attempts: int, *, base: float, cap: float, rand: Callable[[], float]) -> float:
    """Seconds before the next try after `attempts` failures: full-range jitter on 2^n."""
    ceiling = min(cap, base * float(2 ** min(attempts, 32)))
    # Half fixed, half random: spreads a burst of retries without ever retrying at once.
    return float(ceiling * (0.5 + 0.5 * rand()))


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    timeout: float = 10.0
    max_age: float = 24 * 3600.0
    backoff_base: float = 1.0
    backoff_max: float = 300.0
    poll_interval: float = 1.0
    concurrency: int = 32
    batch: int = 200


class Deliverer:
    """POSTs due outbox rows until acknowledged or dead; owns its HTTP session and task."""

    def __init__(
        self,
        store: OutboxStore,
        secrets: SecretLookup,
        *,
        policy: DeliveryPolicy | None = None,
        telemetry: DeliveryTelemetry | None = None,
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._store = store
        self._secrets = secrets
        self._policy = policy or DeliveryPolicy()
        self._telemetry = telemetry
        self._clock = clock
        self._rand = rand
        self._wake = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._limit = asyncio.Semaphore(self._policy.concurrency)
        # Store errors back off from the poll interval up to half a minute.
        self.health = LoopHealth(
            "outbox-deliverer",
            backoff_base=self._policy.poll_interval,
            backoff_max=max(30.0, self._policy.poll_interval),
            rand=rand,
        )

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._policy.timeout)
        )
        self._task = self.health.watch(asyncio.get_running_loop().create_task(self._loop()))

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
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
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)

    async def _pass(self) -> float | None:
        """Deliver what is due: None to look again at once, else how long to wait."""
        if await self.deliver_due():
            return None
        self._wake.clear()
        wait = self._policy.poll_interval
        next_at = await self._store.next_delivery_at()
        if next_at is not None:
            wait = max(0.0, min(wait, next_at - self._clock()))
        return wait

    async def deliver_due(self) -> int:
        """One pass over the due rows; the number attempted."""
        rows = await self._store.due_deliveries(self._clock(), self._policy.batch)
        if rows:
            # Not a TaskGroup: one row's store error must not cancel the other rows'
            # writes half-way through their transactions; every row finishes, then the
            # errors are raised together (those rows stay pending and are sent again).
            results = await asyncio.gather(
                *(self._deliver(row) for row in rows), return_exceptions=True
            )
            errors = [r for r in results if isinstance(r, BaseException)]
            if errors:
                raise BaseExceptionGroup("outbox: recording deliveries failed", errors)
        return len(rows)

    async def _deliver(self, row: OutboxRow) -> None:
        async with self._limit:
            status, error = await self._post(row)
        now = self._clock()
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
            next_at = now + delay
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
            target=row.target.split("?", 1)[0],
            outcome=outcome,
            status=status,
            error=error,
        )

    async def _post(self, row: OutboxRow) -> tuple[int | None, str | None]:
        assert self._session is not None, "Deliverer.start() was not awaited"
        body = row.body.encode("utf-8")
        headers = {
            "Content-Type": CONTENT_TYPE,
            "Idempotency-Key": row.event_id,
            "Ce-Id": row.event_id,
        }
        if row.secret_name:
            key = self._secrets.get(row.secret_name, HMAC_KEY)
            if key is None:
                return None, f'secret "{row.secret_name}" has no key "{HMAC_KEY}"'
            headers[SIGNATURE_HEADER] = sign(body, key)
        try:
            async with asyncio.timeout(self._policy.timeout):
                async with self._session.post(row.target, data=body, headers=headers) as resp:
                    text = await resp.text(errors="replace")
                    if 200 <= resp.status < 300:
                        return resp.status, None
                    return resp.status, f"HTTP {resp.status}: {text[:_ERROR_EXCERPT]}"
        except TimeoutError:
            return None, f"no answer within {self._policy.timeout:g}s"
        except aiohttp.ClientError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:_ERROR_EXCERPT]


def public_rows(rows: Iterable[OutboxRow]) -> list[Mapping[str, Any]]:
    return [r.public() for r in rows]
