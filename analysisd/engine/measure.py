"""A run's measurements as pure functions: set a run up, judge a reading, record it.

`prepare_run` does what Argo's reconcile does before measuring (resolve arguments,
validate, match dryRun / measurementRetention rules) and turns each failure into
the run-level Error message Argo writes; it also compiles every metric's conditions
once, for the life of the run. `judge_reading` applies them to a provider's
reading and `recorded` builds the Argo `Measurement`, with every secret value
redacted. The I/O (binding providers, asking them) is engine.dispatch's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypedDict

from analysisd import AnalysisdError
from analysisd.engine.assess import history_limit
from analysisd.expr import Conditions, compile_conditions
from analysisd.spec import (
    AnalysisRunSpec,
    AnalysisRunStatus,
    Measurement,
    Metric,
    ObjectMeta,
    Phase,
)
from providers.base import (
    MeasurementContext,
    ProviderError,
    Reading,
)

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
    """One metric's provider block bound once (ProviderRegistry.bind): measure() re-reads it.

    `timed` False: the measurement ends on its own terms (a Job), so the scheduler's
    measurement timeout does not apply to it.
    """

    timed: bool

    async def measure(self) -> Reading: ...


class BindingSource(MeasurementSource, Protocol):
    """A source that can bind a provider block once per metric (ProviderRegistry)."""

    def bind(
        self, kind: str, config: Mapping[str, Any], context: MeasurementContext
    ) -> BoundSource:
        """`context` (passed by keyword; ProviderRegistry.bind's third parameter is its
        scope): the run and metric the block is bound for (measurement_contexts)."""
        ...


class SecretLookupSource(Protocol):
    def get(self, name: str, key: str) -> str | None: ...


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
    # Metric name -> its successCondition and failureCondition, compiled once.
    conditions: Mapping[str, Conditions] = field(default_factory=dict, compare=False)
    # Metric name -> its provider block bound by the source (bind_metrics, at the run's
    # start; a block that could not be bound then is bound at its first measurement).
    bindings: dict[str, BoundSource] = field(default_factory=dict, compare=False)
    # The run's namespace: its providers use that namespace's secrets, egress and caps.
    namespace: str = ""
    # The run's name and uid (metadata), for the providers' MeasurementContext.
    name: str = ""
    uid: str = ""
    # Metric name -> the run and metric its binding is for (measurement_contexts, made
    # when the run is set up from the status it resumes; bind_metrics fills it).
    contexts: dict[str, MeasurementContext] = field(default_factory=dict, compare=False)

    def context(self, metric: str) -> MeasurementContext:
        """The context `metric` was set up with; one from scratch if it was not."""
        found = self.contexts.get(metric)
        if found is None:
            found = self.contexts[metric] = measurement_context(self, metric, 0)
        return found


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
    conditions = {
        metric.name: compile_conditions(metric.success_condition, metric.failure_condition)
        for metric in metrics
    }
    for compiled in conditions.values():
        # Most providers' readings are Go float64s: checked here, with the compiling,
        # not by each distinct condition's first measurement.
        compiled.check_ahead("float64")
    return PreparedRun(
        tuple(metrics),
        dry_run,
        retention,
        frozenset(resolved.secret_values),
        conditions,
        **run_identity(meta),
    )


class RunIdentity(TypedDict):
    namespace: str
    name: str
    uid: str


def run_identity(meta: ObjectMeta | None) -> RunIdentity:
    """PreparedRun's namespace, name and uid for a run of `meta` ("" each for no run)."""
    if meta is None:
        return {"namespace": "", "name": "", "uid": ""}
    return {"namespace": meta.namespace or "", "name": meta.name, "uid": meta.uid or ""}


def measurement_context(prepared: PreparedRun, metric: str, taken: int) -> MeasurementContext:
    """What a provider bound for `metric` of this run is told (providers.base)."""
    return MeasurementContext(
        run_uid=prepared.uid,
        run_name=prepared.name,
        run_namespace=prepared.namespace,
        metric_name=metric,
        taken=taken,
        history_limit=history_limit(prepared.retention, metric),
    )


def measurement_contexts(
    prepared: PreparedRun, status: AnalysisRunStatus | None
) -> dict[str, MeasurementContext]:
    """Each metric's context, with the measurements its result in `status` counts
    (Argo's Count + Error: the next Job is that plus one); once per run set up."""
    taken: dict[str, int] = {}
    if status is not None:
        for result in status.metric_results:
            taken[result.name] = result.count + result.error
    return {
        metric.name: measurement_context(prepared, metric.name, taken.get(metric.name, 0))
        for metric in prepared.metrics
    }


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


def judge_verdict(result: Any) -> str:
    """A judge metric without conditions: the score against its pass/marginal thresholds."""
    from analysisd.judge.metric import verdict_for_score

    return verdict_for_score(result)


def judge_reading(
    metric: Metric, kind: str, reading: Reading, conditions: Conditions | None
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
        if conditions is None:  # a metric the run was not prepared with: compile it now
            conditions = compile_conditions(metric.success_condition, metric.failure_condition)
        verdict = conditions.decide(reading.result, reading.go_type)
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
    """The Error measurement of one cut off at its deadline (by the scheduler's watchdog)."""
    return Measurement.trusted(
        "Error",
        message=timeout_message(metric, timeout_seconds),
        started_at=started,
        finished_at=finished,
    )
