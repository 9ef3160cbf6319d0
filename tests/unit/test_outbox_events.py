"""The pure half of the outbox: events from run changes, signatures, backoff."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from analysisd.config import Subscription
from analysisd.engine.observer import NewMeasurement, RunChange
from analysisd.outbox import (
    CALLBACK_SECRET,
    CALLBACK_URL,
    COMPLETED_EVENT,
    MEASUREMENT_EVENT,
    backoff,
    events_for_change,
    sign,
    targets_for,
    verify,
)
from analysisd.spec import AnalysisRun, AnalysisRunStatus, Measurement

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _run(annotations: dict[str, str] | None = None) -> AnalysisRun:
    return AnalysisRun.model_validate(
        {
            "metadata": {"name": "r", "namespace": "ns", "annotations": annotations or {}},
            "spec": {"metrics": [{"name": "m", "provider": {"web": {}}}]},
            "status": AnalysisRunStatus(phase="Successful").model_dump(by_alias=True),
        }
    )


def _change(completed: bool) -> RunChange:
    measurement = Measurement(phase="Successful", value="1", startedAt=T0, finishedAt=T0)
    return RunChange(
        measurements=(NewMeasurement("m", measurement),),
        previous_phase="Running",
        phase="Successful" if completed else "Running",
        completed=completed,
    )


def test_signature_is_hex_hmac_sha256_of_the_raw_body() -> None:
    body = b'{"a":1}'
    expected = hmac.new(b"key", body, hashlib.sha256).hexdigest()
    assert sign(body, "key") == f"sha256={expected}"
    assert verify(body, "key", f"sha256={expected}")
    assert not verify(body + b" ", "key", f"sha256={expected}")


def test_completed_change_yields_measurement_then_completed_event_per_target() -> None:
    run = _run({CALLBACK_URL: "http://127.0.0.1:1/a", CALLBACK_SECRET: "s"})
    subs = [Subscription("http://127.0.0.1:1/b")]
    rows = events_for_change(
        run, _change(True), targets_for(run, subs), now=1000.0, source="analysisd://x"
    )
    assert [(r.event_type, r.target) for r in rows] == [
        (MEASUREMENT_EVENT, "http://127.0.0.1:1/a"),
        (MEASUREMENT_EVENT, "http://127.0.0.1:1/b"),
        (COMPLETED_EVENT, "http://127.0.0.1:1/a"),
        (COMPLETED_EVENT, "http://127.0.0.1:1/b"),
    ]
    assert rows[0].secret_name == "s" and rows[1].secret_name is None
    assert rows[0].event_id == rows[1].event_id != rows[2].event_id  # one id per event
    event = json.loads(rows[2].body)
    assert event["specversion"] == "1.0"
    assert event["subject"] == "ns/r"
    assert event["source"] == "analysisd://x"
    assert event["time"] == "1970-01-01T00:16:40Z"
    assert event["data"]["phase"] == "Successful"


def test_run_without_callbacks_or_subscriptions_yields_no_rows() -> None:
    run = _run()
    assert events_for_change(run, _change(True), targets_for(run, []), now=0, source="x") == []


def test_subscription_type_filter_drops_other_events() -> None:
    run = _run()
    subs = [Subscription("http://127.0.0.1:1/b", types=(COMPLETED_EVENT,))]
    rows = events_for_change(run, _change(True), targets_for(run, subs), now=0, source="x")
    assert [r.event_type for r in rows] == [COMPLETED_EVENT]


@given(st.integers(min_value=0, max_value=200), st.floats(min_value=0, max_value=1))
def test_backoff_grows_stays_under_the_cap_and_never_hits_zero(attempts: int, r: float) -> None:
    delay = backoff(attempts, base=1.0, cap=300.0, rand=lambda: r)
    assert 0.5 * min(300.0, 2.0**attempts) <= delay <= min(300.0, 2.0**attempts) + 1e-9


def test_a_full_receivers_rows_wait_as_long_as_its_oldest_send_has_lasted() -> None:
    from analysisd.outbox_receivers import Receiver as _Receiver

    receiver = _Receiver("http://127.0.0.1:1")
    assert receiver.room_at(100.0, floor=1.0) == 101.0  # nothing in flight: the poll floor
    receiver.sends[("e1", "t")] = 95.0  # open for 5 s (hanging): no room for 5 s more
    receiver.sends[("e2", "t")] = 99.5
    assert receiver.room_at(100.0, floor=1.0) == 105.0
    receiver.retry_at = 130.0  # failing: its back-off wins
    assert receiver.room_at(100.0, floor=1.0) == 130.0
