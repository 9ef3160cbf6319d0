"""Taking one measurement: the only path, for the scheduler and every test alike.

`bind_metrics` binds each metric's provider block once, when its run is set up.
`take_measurement` asks the bound provider (or the judge) for a reading, applies
the run's compiled conditions (engine.measure.judge_reading) and returns the
Argo `Measurement` with every secret redacted. Any failure, a provider that
cannot even be constructed included, becomes an Error measurement, as in Argo;
the run's limits decide what it means.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, cast

import structlog

from analysisd.engine.measure import (
    BindingSource,
    BoundSource,
    MeasurementSource,
    PreparedRun,
    failure,
    judge_reading,
    measurement_contexts,
    provider_block,
    recorded,
    redact,
)
from analysisd.spec import AnalysisRunStatus, Measurement, Metric
from providers.base import NO_CONTEXT, MeasurementContext, ProviderError, Reading

__all__ = ["MAX_STORED_BYTES", "bind_metrics", "capped", "log_error", "read", "take_measurement"]

# A stored measurement's value (and message) is at most this many bytes of UTF-8: the
# full reading is what the conditions saw; the store, API, events and logs get a head.
MAX_STORED_BYTES = 4096

log = structlog.get_logger(__name__)


def bind_metrics(
    source: MeasurementSource, prepared: PreparedRun, status: AnalysisRunStatus | None = None
) -> None:
    """Bind every metric's provider block once, when the run starts (a source that binds).

    Binding is per-run work (validating the block, parsing its URL, working out its
    pool and rate-limit keys), so it is done with the rest of the run's preparation
    rather than by its first measurement. Each block is bound with its metric's
    MeasurementContext (the run's identity, and the measurements `status`, the status
    the run starts or resumes from, counts for it); the contexts are kept in
    `prepared` for a block bound later. A block that cannot be bound is left
    unbound: its measurement binds it again, and the error becomes that
    measurement's Error, exactly as if it had not been tried here.
    """
    source = _scoped(source, prepared)
    if not hasattr(source, "bind"):
        return
    binder = cast(BindingSource, source)
    contexts = prepared.contexts
    contexts.update(measurement_contexts(prepared, status))
    for metric in prepared.metrics:
        if metric.name in prepared.bindings or len(metric.provider) != 1:
            continue
        kind, config = provider_block(metric)
        if kind == "judge":
            continue
        try:
            prepared.bindings[metric.name] = binder.bind(
                kind, config, context=contexts[metric.name]
            )
        except Exception:  # reported by the measurement, which binds it again
            continue


async def read(
    source: MeasurementSource,
    kind: str,
    config: Mapping[str, Any],
    bindings: dict[str, BoundSource],
    name: str,
    clock: Callable[[], datetime],
    context: MeasurementContext | None = None,
) -> Reading:
    """One reading; kind "judge" goes to the Kayenta-style judge over the source's series.

    A source that can bind (ProviderRegistry) binds the block once, by metric name,
    with `context` (the run's and metric's, as bind_metrics would have bound it);
    a block that cannot be bound raises here and is tried again next time. `clock` is
    the scheduler's: the judge's lookback window ends at its "now".
    """
    if kind == "judge":
        from analysisd.engine.judging import JudgeMetric, SeriesSource

        if not hasattr(source, "series"):
            raise ProviderError("judge metrics need a measurement source with range queries")
        judge = JudgeMetric(cast(SeriesSource, source), clock=clock)
        reading: Reading = await judge.measure(config)
        return reading
    if hasattr(source, "bind"):
        bound = cast(BindingSource, source).bind(kind, config, context=context or NO_CONTEXT)
        bindings[name] = bound
        return await bound.measure()
    return await source.measure(kind, config)


async def take_measurement(
    source: MeasurementSource,
    prepared: PreparedRun,
    metric: Metric,
    *,
    clock: Callable[[], datetime],
    started: datetime,
    timeout_seconds: float | None = None,
) -> Measurement:
    """Measure `metric` of a prepared run once; every failure becomes an Error measurement.

    `timeout_seconds` None: the caller enforces the deadline (the Scheduler does, with
    one watchdog for every measurement in flight, by cancelling this coroutine).
    """
    name = metric.name
    bound = prepared.bindings.get(name)
    if bound is None:
        source = _scoped(source, prepared)  # a bound block is scoped already
    try:
        if bound is not None:
            kind = ""  # a bound block is a provider's, never the judge's
            if timeout_seconds is None:
                reading = await bound.measure()
            else:
                async with asyncio.timeout(timeout_seconds):
                    reading = await bound.measure()
        else:
            kind, config = provider_block(metric)
            context = prepared.context(name)
            if timeout_seconds is None:
                reading = await read(source, kind, config, prepared.bindings, name, clock, context)
            else:
                async with asyncio.timeout(timeout_seconds):
                    reading = await read(
                        source, kind, config, prepared.bindings, name, clock, context
                    )
        phase, message, value, metadata = judge_reading(
            metric, kind, reading, prepared.conditions.get(name)
        )
    except Exception as exc:
        phase, message = failure(metric, exc, timeout_seconds)
        value, metadata = "", None
        if not isinstance(exc, TimeoutError | ProviderError):
            _log_bug(metric, exc, prepared.secret_values)
    secrets = prepared.secret_values
    if metadata and secrets:
        metadata = {key: redact(text, secrets) for key, text in metadata.items()}
    # Redacted before it is cut, so no secret is left half shown at the cut.
    if len(value) > MAX_STORED_BYTES // 4:
        value = capped(redact(value, secrets) if secrets else value)
    if len(message) > MAX_STORED_BYTES // 4:
        message = capped(redact(message, secrets) if secrets else message)
    return recorded(phase, message, value, metadata, started, clock(), secrets)


def capped(text: str, limit: int = MAX_STORED_BYTES) -> str:
    """`text` if it fits in `limit` bytes of UTF-8, else its head and a marker with the size."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    marker = f"... [truncated: {len(data)} bytes in full]"
    head = data[: limit - len(marker.encode())].decode("utf-8", "ignore")
    return head + marker


def _scoped(source: MeasurementSource, prepared: PreparedRun) -> MeasurementSource:
    """The source as the run's namespace sees it (ProviderRegistry.for_namespace)."""
    view = getattr(source, "for_namespace", None)
    if prepared.namespace and callable(view):
        return cast(MeasurementSource, view(prepared.namespace))
    return source


def _log_bug(metric: Metric, exc: Exception, secret_values: frozenset[str]) -> None:
    """A reading that failed with something other than a provider error is a bug (ours or a
    provider's): the measurement is an Error as in Argo, and the log gets the traceback."""
    log_error("measurement bug", exc, secret_values, metric=metric.name)


def log_error(event: str, exc: BaseException, secret_values: frozenset[str], **bound: Any) -> None:
    """`event` at error level with the exception and its traceback, secrets redacted like a
    measurement's message (a run's secrets: its exception may quote a request or body)."""
    text = "".join(traceback.format_exception(exc))
    log.error(
        event,
        **bound,
        error=redact(f"{type(exc).__name__}: {exc}", secret_values),
        traceback=redact(text, secret_values),
    )
