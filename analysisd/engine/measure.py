"""Glue between a run and the outside world: set a run up, take one measurement.

`prepare_run` does what Argo's reconcile does before measuring (resolve arguments,
validate, match dryRun / measurementRetention rules) and turns each failure into
the run-level Error message Argo writes. `take_measurement` asks the provider (or
the judge) for a reading under a timeout, applies the conditions, and builds the
Argo `Measurement`, with every secret value redacted from its message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, cast

from analysisd import AnalysisdError
from analysisd.spec import AnalysisRunSpec, Measurement, Metric, ObjectMeta, Phase
from providers.base import ProviderError, Reading

SPEC_INVALID = "Analysis spec invalid: "
ARGS_UNRESOLVED = "Unable to resolve metric arguments: "
REDACTED = "*****"
# Metadata key with which a provider decides a measurement's phase itself (providers.web).
PROVIDER_PHASE_KEY = "analysisd.io/phase"
_MEASUREMENT_PHASES = frozenset({"Successful", "Failed", "Inconclusive", "Error"})


class MeasurementSource(Protocol):
    """Anything that takes one instant measurement for a provider block (ProviderRegistry)."""

    async def measure(self, kind: str, config: Mapping[str, Any]) -> Reading: ...


class BoundSource(Protocol):
    """One metric's provider block bound once (ProviderRegistry.bind): measure() re-reads it."""

    async def measure(self) -> Reading: ...


class BindingSource(MeasurementSource, Protocol):
    """A source that can bind a provider block once per metric (ProviderRegistry)."""

    def bind(self, kind: str, config: Mapping[str, Any]) -> BoundSource: ...


class SecretLookupSource(Protocol):
    def get(self, name: str, key: str) -> str | None: ...


class Verdict(Protocol):
    @property
    def phase(self) -> str: ...

    @property
    def message(self) -> str: ...


# (successCondition, failureCondition, result) -> verdict; analysisd.expr.decide by default.
Decide = Callable[[str, str, Any], Verdict]


class RunSetupError(AnalysisdError):
    """The run cannot start; str() is the message Argo puts in status.message."""

    phase: Phase = "Error"


@dataclass(frozen=True, slots=True)
class PreparedRun:
    """A run's metrics with arguments resolved, and the rules that apply to them."""

    metrics: tuple[Metric, ...]
    dry_run: frozenset[str]
    retention: Mapping[str, int]
    secret_values: frozenset[str]
    # Metric name -> its provider block bound by the source (bind_metrics, at the run's
    # start; a block that could not be bound then is bound at its first measurement).
    bindings: dict[str, BoundSource] = field(default_factory=dict, compare=False)


# (spec, secrets, the run's metadata for fieldRef arguments) -> prepared run
Prepare = Callable[[AnalysisRunSpec, SecretLookupSource, ObjectMeta | None], PreparedRun]


class NoSecrets:
    def get(self, name: str, key: str) -> str | None:
        return None


def prepare_run(
    spec: AnalysisRunSpec, secrets: SecretLookupSource, meta: ObjectMeta | None = None
) -> PreparedRun:
    """Resolve and validate a run's spec in Argo's order; raise RunSetupError with its message."""
    from analysisd.args import ArgsError, resolve_metrics
    from analysisd.rules import dry_run_metrics, retention_limits
    from analysisd.spec import validate_metrics

    try:
        resolved = resolve_metrics(spec, secrets, meta=meta)
    except ArgsError as exc:
        text = str(exc)
        message = text if text.startswith(ARGS_UNRESOLVED) else ARGS_UNRESOLVED + text
        raise RunSetupError(message) from exc
    metrics = list(resolved.metrics)
    try:
        validate_metrics(metrics)
        dry_run = frozenset(dry_run_metrics(spec.dry_run, metrics))
        retention = dict(retention_limits(spec.measurement_retention, metrics))
    except AnalysisdError as exc:
        raise RunSetupError(SPEC_INVALID + str(exc)) from exc
    return PreparedRun(tuple(metrics), dry_run, retention, frozenset(resolved.secret_values))


def prepare_plain(
    spec: AnalysisRunSpec, secrets: SecretLookupSource, meta: ObjectMeta | None = None
) -> PreparedRun:
    """A spec taken as written (no arguments, no rules): for tests and already-resolved runs."""
    dry = frozenset(rule.metric_name for rule in spec.dry_run)
    keep = {rule.metric_name: rule.limit for rule in spec.measurement_retention}
    return PreparedRun(tuple(spec.metrics), dry, keep, frozenset())


def default_decide(success: str, failure: str, result: Any) -> Verdict:
    global _expr_decide
    if _expr_decide is None:
        # Imported on first use (the condition language is not needed to import this
        # module), then kept: an import statement per measurement is not free.
        from analysisd.expr import decide

        _expr_decide = decide
    return _expr_decide(success, failure, result)


_expr_decide: Decide | None = None


def redact(text: str, secret_values: frozenset[str]) -> str:
    # Longest first: a secret that contains another must not be left half shown.
    for secret in sorted(secret_values, key=len, reverse=True):
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def provider_block(metric: Metric) -> tuple[str, Mapping[str, Any]]:
    if len(metric.provider) != 1:
        raise ProviderError(f"metric {metric.name!r}: exactly one provider must be specified")
    ((kind, config),) = metric.provider.items()
    return kind, config if isinstance(config, Mapping) else {}


async def read(
    source: MeasurementSource,
    kind: str,
    config: Mapping[str, Any],
    bindings: dict[str, BoundSource] | None = None,
    name: str = "",
    clock: Callable[[], datetime] | None = None,
) -> Reading:
    """One reading; kind "judge" goes to the Kayenta-style judge over the source's series.

    With `bindings`, a source that can bind (ProviderRegistry) binds the block once, by
    metric name; a block that cannot be bound raises here and is tried again next time.
    `clock` is the caller's: the judge's lookback window ends at its "now".
    """
    if bindings is not None and kind != "judge" and hasattr(source, "bind"):
        bound = bindings.get(name)
        if bound is None:
            bound = cast(BindingSource, source).bind(kind, config)
            bindings[name] = bound
        return await bound.measure()
    if kind == "judge":
        from analysisd.judge.metric import JudgeMetric, SeriesSource

        if not hasattr(source, "series"):
            raise ProviderError("judge metrics need a measurement source with range queries")
        series = cast(SeriesSource, source)
        judge = JudgeMetric(series) if clock is None else JudgeMetric(series, clock=clock)
        reading: Reading = await judge.measure(config)
        return reading
    return await source.measure(kind, config)


def bind_metrics(source: MeasurementSource, prepared: PreparedRun) -> None:
    """Bind every metric's provider block once, when the run starts (a source that binds).

    Binding is per-run work (validating the block, parsing its URL, working out its
    pool and rate-limit keys), so it is done with the rest of the run's preparation
    rather than by its first measurement. A block that cannot be bound is left
    unbound: its measurement binds it again, and the error becomes that
    measurement's Error, exactly as if it had not been tried here.
    """
    if not hasattr(source, "bind"):
        return
    binder = cast(BindingSource, source)
    for metric in prepared.metrics:
        if metric.name in prepared.bindings or len(metric.provider) != 1:
            continue
        kind, config = provider_block(metric)
        if kind == "judge":
            continue
        try:
            prepared.bindings[metric.name] = binder.bind(kind, config)
        except Exception:  # reported by the measurement, which binds it again
            continue


def judge_verdict(result: Any) -> str:
    """A judge metric without conditions: the score against its pass/marginal thresholds."""
    from analysisd.judge.metric import verdict_for_score

    return verdict_for_score(result)


async def take_measurement(
    source: MeasurementSource,
    metric: Metric,
    *,
    secret_values: frozenset[str],
    clock: Callable[[], datetime],
    timeout_seconds: float | None,
    decide: Decide = default_decide,
    bindings: dict[str, BoundSource] | None = None,
    started: datetime | None = None,
) -> Measurement:
    """Measure once and judge the reading; every failure becomes an Error measurement.

    `bindings` (PreparedRun.bindings) lets the source bind each metric's block once.
    `timeout_seconds` None: the caller enforces the deadline itself (the Scheduler
    does, with one timer for all measurements in flight; see timed_out()). The
    Scheduler takes its measurements with the same parts (judge_reading, failure,
    recorded), without this coroutine in between.
    """
    if started is None:
        started = clock()
    try:
        bound = bindings.get(metric.name) if bindings is not None else None
        if bound is not None:
            # Bound when the run started (bind_metrics): straight to the source.
            kind = ""  # a bound block is a provider's, never the judge's
            if timeout_seconds is None:
                reading = await bound.measure()
            else:
                async with asyncio.timeout(timeout_seconds):
                    reading = await bound.measure()
        else:
            kind, config = provider_block(metric)
            if timeout_seconds is None:
                reading = await read(source, kind, config, bindings, metric.name, clock)
            else:
                async with asyncio.timeout(timeout_seconds):
                    reading = await read(source, kind, config, bindings, metric.name, clock)
        phase, message, value, metadata = judge_reading(metric, kind, reading, decide)
    except Exception as exc:
        phase, message = failure(metric, exc, timeout_seconds)
        value, metadata = "", None
    return recorded(phase, message, value, metadata, started, clock(), secret_values)


def judge_reading(
    metric: Metric, kind: str, reading: Reading, decide: Decide
) -> tuple[str, str, str, dict[str, str] | None]:
    """(phase, message, value, metadata) of a reading under the metric's conditions."""
    metadata: dict[str, str] | None = None
    if reading.metadata:
        metadata = {str(k): str(v) for k, v in reading.metadata.items()}
        decided = reading.metadata.get(PROVIDER_PHASE_KEY)
        if decided in _MEASUREMENT_PHASES:
            # The provider decided without conditions (e.g. web nonJSONBody: successful).
            return str(decided), "", reading.value, metadata
    if metric.success_condition or metric.failure_condition:
        verdict = decide(metric.success_condition, metric.failure_condition, reading.result)
        return verdict.phase, verdict.message, reading.value, metadata
    if kind == "judge":
        return judge_verdict(reading.result), "", reading.value, metadata
    return "Successful", "", reading.value, metadata


def failure(metric: Metric, exc: Exception, timeout_seconds: float | None) -> tuple[str, str]:
    """(phase, message) of a measurement whose reading or judging raised `exc`."""
    if isinstance(exc, TimeoutError):
        return "Error", timeout_message(metric, timeout_seconds)
    if isinstance(exc, ProviderError):
        return "Error", str(exc)
    # A provider bug must not take the scheduler down with it.
    return "Error", f"{type(exc).__name__}: {exc}"


def recorded(
    phase: str,
    message: str,
    value: str,
    metadata: dict[str, str] | None,
    started: datetime,
    finished: datetime,
    secret_values: frozenset[str],
) -> Measurement:
    """The Measurement: phase checked, every secret value redacted."""
    if phase not in _MEASUREMENT_PHASES:
        phase, message = "Error", f"unexpected measurement phase {phase!r}: {message}"
    if secret_values:
        message, value = redact(message, secret_values), redact(value, secret_values)
    return Measurement.trusted(
        phase,  # type: ignore[arg-type]  # checked against _MEASUREMENT_PHASES above
        message=message,
        started_at=started,
        finished_at=finished,
        value=value,
        metadata=metadata,
    )


def timeout_message(metric: Metric, timeout_seconds: float | None) -> str:
    if timeout_seconds is None:  # a provider's own timeout, not mapped to ProviderTimeout
        return f"{metric.name}: measurement timed out"
    return f"{metric.name}: measurement timed out after {timeout_seconds:g}s"


def timed_out(
    metric: Metric, started: datetime, finished: datetime, timeout_seconds: float
) -> Measurement:
    """The Error measurement of one cut off at its deadline (by take_measurement's caller)."""
    return Measurement.trusted(
        "Error",
        message=timeout_message(metric, timeout_seconds),
        started_at=started,
        finished_at=finished,
    )
