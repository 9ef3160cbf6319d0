"""The pure half of the outbox: which targets a run's change goes to, the CloudEvents
announcing it (one row per event and target, written with the change), HMAC signing, the
retry back-off, and the receiver (scheme://host:port) a target's queue belongs to. The
Deliverer (analysisd/outbox.py) is the I/O half."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from analysisd.config import Subscription
from analysisd.engine.observer import RunChange
from analysisd.spec import AnalysisRun
from analysisd.store.records import OutboxRow

CALLBACK_URL = "analysisd.io/callback-url"
CALLBACK_SECRET = "analysisd.io/callback-secret"
HMAC_KEY = "hmac-key"
SIGNATURE_HEADER = "X-Analysisd-Signature"
MEASUREMENT_EVENT = "io.analysisd.analysisrun.measurement"
COMPLETED_EVENT = "io.analysisd.analysisrun.completed"
CONTENT_TYPE = "application/cloudevents+json"
ERROR_EXCERPT = 300
# How much of a receiver's answer is read: enough for an error message, never a flood.
ANSWER_MAX_BYTES = 64 * 1024


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


def receiver_of(url: str) -> str:
    """scheme://host:port of a target URL: the unit a queue (and a failure) belongs to."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}:{port}" if port else f"{parts.scheme}://{host}"


def masked_url(url: str) -> str:
    """The URL with user info dropped and every query value masked (tokens live there)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    netloc = parts.netloc.rpartition("@")[2]
    query = "&".join(
        f"{name}=*****" if sep else name
        for name, sep, _ in (pair.partition("=") for pair in parts.query.split("&") if pair)
    )
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))
