"""The job block and the Job object: what a block must hold, the Job Argo's newMetricJob
builds from it, the phase its conditions give, and the names and numbers of a run's Jobs.

No I/O; the provider (provider.py) asks the API server.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from providers.base import ProviderConfigError
from providers.job.cluster import PROVIDER

RUN_UID_LABEL = "analysisrun.argoproj.io/uid"
RUN_NAME_ANNOTATION = "analysisrun.argoproj.io/name"
METRIC_NAME_ANNOTATION = "analysisrun.argoproj.io/metric-name"
RESTART_POLICIES = ("Never", "OnFailure")


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ProviderConfigError(
            f"job: {where} must be a mapping, got {type(value).__name__}",
            provider=PROVIDER,
            field=where,
        )
    return value


def check(config: Mapping[str, Any]) -> None:
    """What every Job needs before the API is asked (the apiserver says the same, later)."""
    metadata = _mapping(config.get("metadata") or {}, "metadata")
    for key in ("labels", "annotations"):
        values = _mapping(metadata.get(key) or {}, f"metadata.{key}")
        for name, value in values.items():
            if not isinstance(value, str):
                raise ProviderConfigError(
                    f"job: metadata.{key}[{name!r}] must be a string, got {value!r}",
                    provider=PROVIDER,
                    field=f"metadata.{key}",
                )
    if config.get("spec") is None:
        raise ProviderConfigError("job: spec is required", provider=PROVIDER, field="spec")
    spec = _mapping(config["spec"], "spec")
    template = _mapping(spec.get("template"), "spec.template")
    pod = _mapping(template.get("spec"), "spec.template.spec")
    containers = pod.get("containers")
    if not isinstance(containers, list) or not containers:
        raise ProviderConfigError(
            "job: spec.template.spec.containers must list at least one container",
            provider=PROVIDER,
            field="spec.template.spec.containers",
        )
    policy = pod.get("restartPolicy")
    if policy not in RESTART_POLICIES:
        raise ProviderConfigError(
            f"job: spec.template.spec.restartPolicy must be Never or OnFailure for a Job, "
            f"got {policy!r}",
            provider=PROVIDER,
            field="spec.template.spec.restartPolicy",
        )


def job_manifest(
    config: Mapping[str, Any],
    name: str,
    namespace: str,
    run_uid: str,
    run_name: str = "",
    metric_name: str = "",
) -> dict[str, Any]:
    """The Job Argo's newMetricJob builds, minus the owner reference: the block's labels
    and annotations with the run's uid label and name / metric-name annotations over them."""
    metadata = config.get("metadata") or {}
    labels = {str(k): str(v) for k, v in (metadata.get("labels") or {}).items()}
    annotations = {str(k): str(v) for k, v in (metadata.get("annotations") or {}).items()}
    labels[RUN_UID_LABEL] = run_uid
    if run_name:
        annotations[RUN_NAME_ANNOTATION] = run_name
    if metric_name:
        annotations[METRIC_NAME_ANNOTATION] = metric_name
    manifest: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": json.loads(json.dumps(config["spec"])),  # a copy the client may keep
    }
    if annotations:
        manifest["metadata"]["annotations"] = annotations
    return manifest


def outcome(job: Mapping[str, Any]) -> str | None:
    """Argo's Resume: the phase the Job's conditions give (the last one that decides)."""
    phase = None
    status = job.get("status") or {}
    for condition in status.get("conditions") or ():
        kind = condition.get("type") if isinstance(condition, Mapping) else None
        if kind == "Complete":
            phase = "Successful"
        elif kind == "Failed":
            phase = "Failed"
    return phase


def resource_version(job: Mapping[str, Any]) -> str:
    return str((job.get("metadata") or {}).get("resourceVersion") or "")


def status_code(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def job_number(job: Mapping[str, Any], prefix: str) -> int | None:
    """n of a Job named <prefix><n>; None for any other name."""
    name = str((job.get("metadata") or {}).get("name", ""))
    rest = name[len(prefix) :] if name.startswith(prefix) else ""
    return int(rest) if rest.isdigit() else None


def created_order(job: Mapping[str, Any], prefix: str) -> tuple[str, int]:
    # creationTimestamp has whole seconds; our names end in the Job's number.
    created = str((job.get("metadata") or {}).get("creationTimestamp") or "")
    return created, job_number(job, prefix) or 0
