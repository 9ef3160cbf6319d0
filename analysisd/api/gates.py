"""What the gate front doors (Argo web-provider verdicts, Flagger webhooks) share.

A gate is asked the same question many times ("is this canary good?"); the first
call starts one ordinary run from a template, later calls read it. The run's name is
derived from the caller's key, so a retried or concurrent first call finds the same
run instead of starting a second one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from analysisd.api.context import ApiContext
from analysisd.api.errors import ApiError
from analysisd.api.runs import from_templates, start_run
from analysisd.store import RunRecord

FRONT_DOOR_LABEL = "analysisd.io/front-door"
FAILING_PHASES = frozenset({"Failed", "Error", "Inconclusive"})
_NOT_NAME = re.compile(r"[^a-z0-9-]+")


def gate_run_name(prefix: str, *parts: str) -> str:
    """A DNS-1123 name (≤ 63 characters) readable from `parts`, unique by their hash."""
    digest = hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:12]
    readable = _NOT_NAME.sub("-", "-".join(parts).lower()).strip("-")[:40].strip("-")
    return f"{prefix}-{readable}-{digest}" if readable else f"{prefix}-{digest}"


def template_refs(template: str | None, cluster_template: str | None) -> list[dict[str, Any]]:
    refs: list[dict[str, Any]] = []
    if template:
        refs.append({"templateName": template})
    if cluster_template:
        refs.append({"templateName": cluster_template, "clusterScope": True})
    return refs


async def ensure_run(
    ctx: ApiContext,
    namespace: str,
    name: str,
    *,
    templates: list[dict[str, Any]],
    args: Mapping[str, str],
    annotations: Mapping[str, str],
    door: str,
) -> tuple[RunRecord, bool]:
    """The run named `name`, started from `templates` with `args` if it does not exist yet.

    Returns (record, created). Two first calls at once: one creates, the other meets
    the 409 of the store's unique name and reads what the first stored.
    """
    record = await ctx.store.get_run(namespace, name)
    if record is not None:
        return record, False
    data = {
        "metadata": {
            "name": name,
            "labels": {FRONT_DOOR_LABEL: door},
            "annotations": dict(annotations),
        },
        "templates": templates,
        "args": [{"name": key, "value": value} for key, value in args.items()],
    }
    run = await from_templates(ctx, namespace, data)
    created = True
    try:
        await start_run(ctx, namespace, run)
    except ApiError as exc:
        if exc.status != 409:
            raise
        created = False  # a concurrent first call won the name
    record = await ctx.store.get_run(namespace, name)
    if record is None:  # deleted between the two statements
        raise ApiError(409, f'AnalysisRun "{name}" was deleted as it started; retry')
    return record, created


def reason(record: RunRecord) -> str:
    """One sentence: the run's message, else the first failing metric's, else its phase."""
    status = record.status or {}
    if status.get("message"):
        return str(status["message"])
    for result in status.get("metricResults") or []:
        if result.get("phase") in FAILING_PHASES:
            why = result.get("message") or _last_message(result)
            return f"metric {result.get('name')} is {result.get('phase')}" + (
                f": {why}" if why else ""
            )
    return f"run is {record.phase}"


def _last_message(result: Mapping[str, Any]) -> str:
    for measurement in reversed(result.get("measurements") or []):
        if measurement.get("message"):
            return str(measurement["message"])
    return ""


def metric_summary(record: RunRecord) -> dict[str, dict[str, Any]]:
    """Per metric: its phase and latest value, as the verdict body shows them."""
    out: dict[str, dict[str, Any]] = {}
    for result in (record.status or {}).get("metricResults") or []:
        measurements = result.get("measurements") or []
        latest = measurements[-1] if measurements else {}
        out[str(result.get("name"))] = {
            "phase": result.get("phase"),
            "value": latest.get("value"),
            "count": result.get("count", 0),
        }
    return out
