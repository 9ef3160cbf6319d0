"""Typed models of the Argo Rollouts v1alpha1 analysis kinds.

Field names are snake_case in Python and camelCase (as in the YAML) through
aliases; `model_dump(by_alias=True, exclude_none=True)` gives Argo-shaped JSON.
Provider blocks are kept as plain mappings: each provider parses its own block
(providers import nothing from analysisd), and kinds we do not run still load.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from analysisd import AnalysisdError, spec_build
from analysisd.durations import DurationError, parse_duration_ns
from analysisd.spec_types import INT32_MAX, INT32_MIN, Int32, IntOrString, scalar_to_string, shown

API_VERSION = "argoproj.io/v1alpha1"
KINDS = ("AnalysisTemplate", "ClusterAnalysisTemplate", "AnalysisRun")


# Provider kinds Argo Rollouts defines (all load); the ones analysisd runs.
ARGO_PROVIDER_KINDS: frozenset[str] = frozenset(
    {
        "prometheus",
        "kayenta",
        "web",
        "datadog",
        "wavefront",
        "newRelic",
        "job",
        "cloudWatch",
        "graphite",
        "influxdb",
        "skywalking",
        "plugin",
    }
)
RUN_PROVIDER_KINDS: frozenset[str] = frozenset(
    {"prometheus", "datadog", "cloudWatch", "web", "judge", "job"}
    | {"graphite", "influxdb", "newRelic", "wavefront", "skywalking"}
    | {"kayenta"}
)
KNOWN_PROVIDER_KINDS: frozenset[str] = ARGO_PROVIDER_KINDS | RUN_PROVIDER_KINDS

Phase = Literal["Pending", "Running", "Successful", "Failed", "Error", "Inconclusive"]
COMPLETED_PHASES: frozenset[str] = frozenset({"Successful", "Failed", "Error", "Inconclusive"})


def _no_items() -> list[Any]:
    """A new empty list: the default of every list field.

    `list` itself would do the same, but pydantic asks each default factory for its
    signature, and a builtin's is parsed from text with `tokenize` (~2 ms of every
    start-up, issue 21); this function's is read from its code.
    """
    return []


class Model(BaseModel):
    """Base for every spec model: camelCase aliases, unknown fields rejected."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")


# Models no AnalysisTemplate holds: built at import, or on first use (spec_build).
_RUN_ONLY = ConfigDict(defer_build=True) if spec_build.RUN_MODELS_ON_FIRST_USE else ConfigDict()
_ALL_FIELDS: dict[type[BaseModel], set[str]] = {}


_new = object.__new__
_set = object.__setattr__


def _fields_of(cls: type[BaseModel]) -> set[str]:
    """The one fields-set every record of `cls` shares (see StatusRecord)."""
    shared = _ALL_FIELDS.get(cls)
    if shared is None:
        shared = _ALL_FIELDS[cls] = set(cls.model_fields)
    return shared


def _unvalidated(cls: type[BaseModel], fields: dict[str, Any]) -> Any:
    """A record of `cls` holding `fields` (every field, by name) as model_construct would
    make it, without model_construct's generic work: for the `trusted` constructors."""
    record = _new(cls)
    _set(record, "__dict__", fields)
    _set(record, "__pydantic_fields_set__", _fields_of(cls))
    _set(record, "__pydantic_extra__", None)
    _set(record, "__pydantic_private__", None)
    return record


class StatusRecord(Model):
    """Status models, held by the thousand (a run keeps up to 10 measurements per metric).

    pydantic keeps a set of the fields each instance was given or assigned; with five or
    more names that set is 728 bytes, more than the record itself. Nothing here reads it
    (it only matters to ``exclude_unset``, which analysisd never uses), so every instance
    of a class shares one set holding all of its field names instead.
    """

    model_config = _RUN_ONLY

    def model_post_init(self, context: Any, /) -> None:
        _set(self, "__pydantic_fields_set__", _fields_of(type(self)))


class SecretKeyRef(Model):
    name: str
    key: str = ""


class FieldRef(Model):
    field_path: str = Field(alias="fieldPath")


class ValueFrom(Model):
    secret_key_ref: SecretKeyRef | None = Field(default=None, alias="secretKeyRef")
    field_ref: FieldRef | None = Field(default=None, alias="fieldRef")
    # "Stable" | "Latest": filled in by the Rollout controller before a run exists.
    pod_template_hash_value: str | None = Field(default=None, alias="podTemplateHashValue")


class Argument(Model):
    name: str
    value: Annotated[str | None, BeforeValidator(scalar_to_string)] = None
    value_from: ValueFrom | None = Field(default=None, alias="valueFrom")


class Metric(Model):
    name: str
    interval: str | None = None
    initial_delay: str | None = Field(default=None, alias="initialDelay")
    count: IntOrString | None = None
    success_condition: str = Field(default="", alias="successCondition")
    failure_condition: str = Field(default="", alias="failureCondition")
    failure_limit: IntOrString | None = Field(default=None, alias="failureLimit")
    inconclusive_limit: IntOrString | None = Field(default=None, alias="inconclusiveLimit")
    consecutive_error_limit: IntOrString | None = Field(default=None, alias="consecutiveErrorLimit")
    consecutive_success_limit: IntOrString | None = Field(
        default=None, alias="consecutiveSuccessLimit"
    )
    # {"prometheus": {...}} etc.; exactly one key once validated.
    provider: dict[str, Any] = Field(default_factory=dict)


class DryRun(Model):
    metric_name: str = Field(alias="metricName")


class MeasurementRetention(Model):
    metric_name: str = Field(alias="metricName")
    limit: Int32 = 0


class TemplateRef(Model):
    template_name: str = Field(alias="templateName")
    cluster_scope: bool = Field(default=False, alias="clusterScope")


class TTLStrategy(Model):
    model_config = _RUN_ONLY
    seconds_after_completion: Int32 | None = Field(default=None, alias="secondsAfterCompletion")
    seconds_after_failure: Int32 | None = Field(default=None, alias="secondsAfterFailure")
    seconds_after_success: Int32 | None = Field(default=None, alias="secondsAfterSuccess")


class AnalysisTemplateSpec(Model):
    metrics: list[Metric] = Field(default_factory=_no_items)
    args: list[Argument] = Field(default_factory=_no_items)
    dry_run: list[DryRun] = Field(default_factory=_no_items, alias="dryRun")
    measurement_retention: list[MeasurementRetention] = Field(
        default_factory=_no_items, alias="measurementRetention"
    )
    templates: list[TemplateRef] = Field(default_factory=_no_items)


class AnalysisRunSpec(Model):
    model_config = _RUN_ONLY
    metrics: list[Metric] = Field(default_factory=_no_items)
    args: list[Argument] = Field(default_factory=_no_items)
    terminate: bool = False
    dry_run: list[DryRun] = Field(default_factory=_no_items, alias="dryRun")
    measurement_retention: list[MeasurementRetention] = Field(
        default_factory=_no_items, alias="measurementRetention"
    )
    ttl_strategy: TTLStrategy | None = Field(default=None, alias="ttlStrategy")


class ObjectMeta(Model):
    model_config = ConfigDict(populate_by_name=True, extra="allow")

    name: str = ""
    generate_name: str | None = Field(default=None, alias="generateName")
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    uid: str | None = None
    creation_timestamp: datetime | None = Field(default=None, alias="creationTimestamp")


# ---- status (as the Argo controller writes it) ----


class Measurement(StatusRecord):
    phase: Phase
    message: str = ""
    started_at: datetime | None = Field(default=None, alias="startedAt")
    finished_at: datetime | None = Field(default=None, alias="finishedAt")
    value: str = ""
    metadata: dict[str, str] = Field(default_factory=dict)
    resume_at: datetime | None = Field(default=None, alias="resumeAt")

    @classmethod
    def trusted(
        cls,
        phase: Phase,
        *,
        message: str = "",
        started_at: datetime | None = None,
        finished_at: datetime | None = None,
        value: str = "",
        metadata: dict[str, str] | None = None,
    ) -> Measurement:
        """A Measurement of values the engine made itself, built without validation.

        Twice per measurement of every run; validating values of the right types
        costs more than the rest of recording them. Equal, field for field, to the
        validated model (tests/unit/test_status_records.py); anything read from
        outside goes through the validating constructor.
        """
        record: Measurement = _unvalidated(
            cls,
            {
                "phase": phase,
                "message": message,
                "started_at": started_at,
                "finished_at": finished_at,
                "value": value,
                "metadata": {} if metadata is None else metadata,
                "resume_at": None,
            },
        )
        return record


class MetricResult(StatusRecord):
    name: str
    phase: Phase = "Pending"
    measurements: list[Measurement] = Field(default_factory=_no_items)
    message: str = ""
    count: int = 0
    successful: int = 0
    failed: int = 0
    inconclusive: int = 0
    error: int = 0
    consecutive_error: int = Field(default=0, alias="consecutiveError")
    consecutive_success: int = Field(default=0, alias="consecutiveSuccess")
    dry_run: bool = Field(default=False, alias="dryRun")
    metadata: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def trusted(cls, name: str, phase: Phase, *, dry_run: bool = False) -> MetricResult:
        """A new metric's result, built without validation (as Measurement.trusted)."""
        record: MetricResult = _unvalidated(
            cls,
            {
                "name": name,
                "phase": phase,
                "measurements": [],
                "message": "",
                "count": 0,
                "successful": 0,
                "failed": 0,
                "inconclusive": 0,
                "error": 0,
                "consecutive_error": 0,
                "consecutive_success": 0,
                "dry_run": dry_run,
                "metadata": {},
            },
        )
        return record


class RunSummary(StatusRecord):
    count: int = 0
    successful: int = 0
    failed: int = 0
    inconclusive: int = 0
    error: int = 0


class AnalysisRunStatus(StatusRecord):
    phase: Phase = "Pending"
    message: str = ""
    metric_results: list[MetricResult] = Field(default_factory=_no_items, alias="metricResults")
    started_at: datetime | None = Field(default=None, alias="startedAt")
    completed_at: datetime | None = Field(default=None, alias="completedAt")
    run_summary: RunSummary = Field(default_factory=RunSummary, alias="runSummary")
    dry_run_summary: RunSummary | None = Field(default=None, alias="dryRunSummary")


# ---- top-level kinds ----


class AnalysisTemplate(Model):
    api_version: str = Field(default=API_VERSION, alias="apiVersion")
    kind: Literal["AnalysisTemplate"] = "AnalysisTemplate"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: AnalysisTemplateSpec


class ClusterAnalysisTemplate(Model):
    model_config = _RUN_ONLY
    api_version: str = Field(default=API_VERSION, alias="apiVersion")
    kind: Literal["ClusterAnalysisTemplate"] = "ClusterAnalysisTemplate"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: AnalysisTemplateSpec


class AnalysisRun(Model):
    model_config = _RUN_ONLY
    api_version: str = Field(default=API_VERSION, alias="apiVersion")
    kind: Literal["AnalysisRun"] = "AnalysisRun"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: AnalysisRunSpec
    status: AnalysisRunStatus | None = None


AnyTemplate = AnalysisTemplate | ClusterAnalysisTemplate
AnyObject = AnalysisTemplate | ClusterAnalysisTemplate | AnalysisRun


# ---- validation (Argo's ValidateMetrics, message for message) ----


class SpecError(AnalysisdError, ValueError):
    """An invalid spec; str() is Argo's message, .field the YAML path below `spec`."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


def is_placeholder(value: object) -> bool:
    """True for a string still holding an unresolved `{{...}}` tag."""
    return isinstance(value, str) and "{{" in value


def int_value(value: int | str | None, field: str, default: int = 0) -> int:
    """An intstr field as an int; a string must parse as one (after argument resolution)."""
    if value is None:
        return default
    if isinstance(value, int):
        return value
    text = value.strip()
    if text.lstrip("+-").isdigit() and len(text) > 12:
        number = INT32_MAX + 1  # past int32 whatever it is (and maybe past int()'s limit)
    else:
        try:
            number = int(text, 10)
        except ValueError:
            if is_placeholder(text):
                raise SpecError(f"{field}: {value!r} is an unresolved argument", field) from None
            raise SpecError(f"{field}: {shown(value)} is not an integer", field) from None
    if not INT32_MIN <= number <= INT32_MAX:
        raise SpecError(f"{field}: {shown(value)} is out of range (a 32-bit integer)", field)
    return number


def validate_metrics(metrics: Sequence[Metric], *, allow_placeholders: bool = False) -> None:
    """Raise SpecError as Argo's ValidateMetrics would (the first problem, Argo's message).

    allow_placeholders (lint of a template before its arguments are known) skips the
    checks of int and duration fields that still hold a `{{...}}` tag.
    """
    if not metrics:
        raise SpecError("no metrics specified", "metrics")
    seen: set[str] = set()
    for index, metric in enumerate(metrics):
        prefix = f"metrics[{index}]"
        if metric.name in seen:
            raise SpecError(f"{prefix}: duplicate name '{metric.name}'", f"{prefix}.name")
        seen.add(metric.name)
        problems = metric_problems(metric, allow_placeholders=allow_placeholders)
        if problems:
            exc = problems[0]
            field = f"{prefix}.{exc.field}" if exc.field else prefix
            raise SpecError(f"{prefix}: {exc}", field)


def metric_problems(metric: Metric, *, allow_placeholders: bool = False) -> list[SpecError]:
    """Every problem of one metric, in the order Argo's ValidateMetric checks them."""
    problems: list[SpecError] = []
    checks = (_check_counts, _check_durations, _check_limits, _check_provider)
    for check in checks:
        try:
            check(metric, allow_placeholders)
        except SpecError as exc:
            # A bad intstr field fails every group that reads it; report it once.
            if all((p.field, str(p)) != (exc.field, str(exc)) for p in problems):
                problems.append(exc)
    return problems


def _limit(metric: Metric, attr: str, alias: str, lenient: bool) -> int | None:
    value = getattr(metric, attr)
    if lenient and is_placeholder(value):
        return None
    return int_value(value, alias)


def _check_counts(metric: Metric, lenient: bool) -> None:
    count = _limit(metric, "count", "count", lenient)
    failure = _limit(metric, "failure_limit", "failureLimit", lenient)
    inconclusive = _limit(metric, "inconclusive_limit", "inconclusiveLimit", lenient)
    successes = _limit(metric, "consecutive_success_limit", "consecutiveSuccessLimit", lenient)
    if count is None or count <= 0:
        return
    if failure is not None and successes is not None:
        if failure >= 0 and successes >= 0 and count < failure + successes:
            raise SpecError(
                f"count ({count}) must be >= failureLimit + consecutiveSuccessLimit "
                f"({failure} + {successes}) if both >= 0",
                "count",
            )
        if failure < 0 and count < successes:
            raise SpecError("count must be >= consecutiveSuccessLimit", "count")
        if successes < 0 and count < failure:
            raise SpecError("count must be >= failureLimit", "count")
    if inconclusive is not None and count < inconclusive:
        raise SpecError("count must be >= inconclusiveLimit", "count")


def _check_durations(metric: Metric, lenient: bool) -> None:
    try:
        count = _limit(metric, "count", "count", lenient)
    except SpecError:
        count = None  # reported by _check_counts
    if count is not None and count > 1 and not metric.interval:
        raise SpecError("interval must be specified when count > 1", "interval")
    _check_duration(metric.interval, "invalid interval string", "interval", lenient)
    _check_duration(metric.initial_delay, "invalid startDelay string", "initialDelay", lenient)


def _check_limits(metric: Metric, lenient: bool) -> None:
    # Argo master (utils/analysis/factory.go ValidateMetric and its TestValidateMetrics):
    # failureLimit -1 disables the failure rule, but not together with the success streak.
    failure = _limit(metric, "failure_limit", "failureLimit", lenient)
    inconclusive = _limit(metric, "inconclusive_limit", "inconclusiveLimit", lenient)
    errors = _limit(metric, "consecutive_error_limit", "consecutiveErrorLimit", lenient)
    successes = _limit(metric, "consecutive_success_limit", "consecutiveSuccessLimit", lenient)
    if failure is not None and failure < -1:
        raise SpecError("failureLimit must be >= 0, or -1 to be disabled", "failureLimit")
    if inconclusive is not None and inconclusive < 0:
        raise SpecError("inconclusiveLimit must be >= 0", "inconclusiveLimit")
    if errors is not None and errors < 0:
        raise SpecError("consecutiveErrorLimit must be >= 0", "consecutiveErrorLimit")
    if successes is not None and successes < 0:
        raise SpecError("consecutiveSuccessLimit must be >= 0", "consecutiveSuccessLimit")
    # An unset consecutiveSuccessLimit is 0 (off), as Go reads the nil pointer.
    if failure == -1 and successes == 0:
        raise SpecError(
            "failureLimit and consecutiveSuccessLimit cannot both be disabled", "failureLimit"
        )


def _check_duration(value: str | None, problem: str, field: str, lenient: bool) -> None:
    if not value or (lenient and is_placeholder(value)):
        return
    try:
        parse_duration_ns(value)
    except DurationError as exc:
        raise SpecError(f"{problem}: {exc}", field) from None


def _check_provider(metric: Metric, lenient: bool) -> None:
    # `prometheus: null` is an unset pointer in Argo: no provider at all.
    provider = {kind: config for kind, config in metric.provider.items() if config is not None}
    if not provider:
        raise SpecError("no provider specified", "provider")
    if len(provider) > 1:
        raise SpecError("multiple providers specified", "provider")
    ((kind, config),) = provider.items()
    if not isinstance(config, dict):
        name = type(config).__name__
        raise SpecError(f"provider.{kind} must be a mapping, got {name}", f"provider.{kind}")
    if kind not in KNOWN_PROVIDER_KINDS:
        known = ", ".join(sorted(KNOWN_PROVIDER_KINDS))
        raise SpecError(f"unknown provider kind '{kind}' (known: {known})", f"provider.{kind}")
