"""Typed models of the Argo Rollouts v1alpha1 analysis kinds.

Field names are snake_case in Python and camelCase (as in the YAML) through
aliases; `model_dump(by_alias=True, exclude_none=True)` gives Argo-shaped JSON.
Provider blocks are kept as plain mappings: each provider parses its own block
(providers import nothing from analysisd), and kinds we do not run still load.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

API_VERSION = "argoproj.io/v1alpha1"
KINDS = ("AnalysisTemplate", "ClusterAnalysisTemplate", "AnalysisRun")

# Argo's intstr.IntOrString: an int, or a string that may hold "{{args.x}}".
IntOrString = int | str

Phase = Literal["Pending", "Running", "Successful", "Failed", "Error", "Inconclusive"]
COMPLETED_PHASES: frozenset[str] = frozenset({"Successful", "Failed", "Error", "Inconclusive"})


class Model(BaseModel):
    """Base for every spec model: camelCase aliases, unknown fields rejected."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")


class SecretKeyRef(Model):
    name: str
    key: str


class FieldRef(Model):
    field_path: str = Field(alias="fieldPath")


class ValueFrom(Model):
    secret_key_ref: SecretKeyRef | None = Field(default=None, alias="secretKeyRef")
    field_ref: FieldRef | None = Field(default=None, alias="fieldRef")


class Argument(Model):
    name: str
    value: str | None = None
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
    limit: int


class TemplateRef(Model):
    template_name: str = Field(alias="templateName")
    cluster_scope: bool = Field(default=False, alias="clusterScope")


class TTLStrategy(Model):
    seconds_after_completion: int | None = Field(default=None, alias="secondsAfterCompletion")
    seconds_after_failure: int | None = Field(default=None, alias="secondsAfterFailure")
    seconds_after_success: int | None = Field(default=None, alias="secondsAfterSuccess")


class AnalysisTemplateSpec(Model):
    metrics: list[Metric] = Field(default_factory=list)
    args: list[Argument] = Field(default_factory=list)
    dry_run: list[DryRun] = Field(default_factory=list, alias="dryRun")
    measurement_retention: list[MeasurementRetention] = Field(
        default_factory=list, alias="measurementRetention"
    )
    templates: list[TemplateRef] = Field(default_factory=list)


class AnalysisRunSpec(Model):
    metrics: list[Metric] = Field(default_factory=list)
    args: list[Argument] = Field(default_factory=list)
    terminate: bool = False
    dry_run: list[DryRun] = Field(default_factory=list, alias="dryRun")
    measurement_retention: list[MeasurementRetention] = Field(
        default_factory=list, alias="measurementRetention"
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


class Measurement(Model):
    phase: Phase
    message: str = ""
    started_at: datetime | None = Field(default=None, alias="startedAt")
    finished_at: datetime | None = Field(default=None, alias="finishedAt")
    value: str = ""
    metadata: dict[str, str] = Field(default_factory=dict)
    resume_at: datetime | None = Field(default=None, alias="resumeAt")


class MetricResult(Model):
    name: str
    phase: Phase = "Pending"
    measurements: list[Measurement] = Field(default_factory=list)
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


class RunSummary(Model):
    count: int = 0
    successful: int = 0
    failed: int = 0
    inconclusive: int = 0
    error: int = 0


class AnalysisRunStatus(Model):
    phase: Phase = "Pending"
    message: str = ""
    metric_results: list[MetricResult] = Field(default_factory=list, alias="metricResults")
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
    api_version: str = Field(default=API_VERSION, alias="apiVersion")
    kind: Literal["ClusterAnalysisTemplate"] = "ClusterAnalysisTemplate"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: AnalysisTemplateSpec


class AnalysisRun(Model):
    api_version: str = Field(default=API_VERSION, alias="apiVersion")
    kind: Literal["AnalysisRun"] = "AnalysisRun"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: AnalysisRunSpec
    status: AnalysisRunStatus | None = None


AnyTemplate = AnalysisTemplate | ClusterAnalysisTemplate
AnyObject = AnalysisTemplate | ClusterAnalysisTemplate | AnalysisRun
