"""/kayenta/canary: one canary judgement (CanaryController), as Argo's kayenta provider
calls it, run as an ordinary AnalysisRun.

POST /kayenta/canary/{configId}?application=&metricsAccountName=&... with
`{"scopes": {name: {"controlScope": {scope, location|region, start, end, step,
extendedScopeParams}, "experimentScope": {...}}}, "thresholds": {pass, marginal}}`
starts a run in the application's namespace whose one metric is a `judge:` block:
series fetched from the metrics account's provider with the queries Kayenta's metrics
service would build (queries.py), judged by our NetflixACAJudge. The answer is
`{"canaryExecutionId": "<namespace>.<run>"}`. GET /kayenta/canary/{id} answers
Kayenta's CanaryExecutionStatusResponse from the run: `complete`, `status`,
`result.judgeResult` (Kayenta's CanaryJudgeResult with our explanation per metric)...
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from analysisd.api.context import ApiContext, context
from analysisd.api.errors import ApiError
from analysisd.api.gates import FRONT_DOOR_LABEL
from analysisd.api.kayenta import queries
from analysisd.api.kayenta.common import (
    ANNOTATION,
    DOOR,
    DOOR_KIND_LABEL,
    JUDGEMENT,
    SOURCE_KEYS,
    account,
    execution_id,
    find_run,
    instant,
    iso,
    namespace_for,
    number,
    obj,
    parse_time,
    read_json,
    stored_request,
    text,
    times,
)
from analysisd.api.kayenta.configs import check_config, find_config
from analysisd.api.runs import start_run
from analysisd.config import Account
from analysisd.engine.judge_block import parse_judge_block
from analysisd.judge.errors import ConfigError
from analysisd.loader import field_path
from analysisd.spec import AnalysisRun
from analysisd.store import RunRecord

DEFAULT_STEP = 60  # seconds (Kayenta's CanaryScope default)
ACCOUNT_PARAMS = ("metricsAccountName", "configurationAccountName", "storageAccountName")


@dataclass(frozen=True)
class Side:
    """One side of a scope pair: what its queries filter on and its window."""

    scope: str
    location: str
    start: datetime
    end: datetime
    step: float
    extended: Mapping[str, str] = field(default_factory=dict)


def parse_side(raw: Any, where: str) -> Side:
    data = obj(raw, where)
    extended = obj(data.get("extendedScopeParams"), f"{where}.extendedScopeParams", optional=True)
    for key, value in extended.items():
        if not isinstance(value, str):
            raise ApiError(
                400,
                f"{where}.extendedScopeParams.{key}: expected a string",
                field=f"{where}.extendedScopeParams.{key}",
            )
    start = instant(data.get("start"), f"{where}.start")
    end = instant(data.get("end"), f"{where}.end")
    assert start is not None and end is not None
    if end <= start:
        raise ApiError(400, f"{where}.end: must be after {where}.start", field=f"{where}.end")
    step = number(data.get("step"), f"{where}.step", default=DEFAULT_STEP) or DEFAULT_STEP
    # Argo's provider sends the location as `region` (its ScopeDetail); Kayenta's is `location`.
    location = data.get("location") if data.get("location") is not None else data.get("region")
    return Side(
        scope=text(data.get("scope"), f"{where}.scope"),
        location=text(location, f"{where}.location"),
        start=start,
        end=end,
        step=step,
        extended=dict(extended),
    )


def judge_block(
    config: Mapping[str, Any],
    metrics_account: Account,
    pairs: Mapping[str, tuple[Side, Side]],
    thresholds: tuple[float, float],
    where: str = "scopes",
    step_field: str | None = None,
) -> dict[str, Any]:
    """The `judge:` provider block judging `config` over `pairs` (scope name -> (control,
    experiment)): queries per metric and side from queries.py, one window for all."""
    sides = [side for pair in pairs.values() for side in pair]
    if not sides:
        raise ApiError(400, f"{where}: at least one scope", field=where)
    control, experiment = next(iter(pairs.values()))
    for name, (c, e) in pairs.items():
        if (e.start, e.end, e.step) != (experiment.start, experiment.end, experiment.step) or (
            c.start,
            c.end,
            c.step,
        ) != (control.start, control.end, control.step):
            raise ApiError(
                400,
                f"{where}.{name}: every scope must share one window and step"
                " (one judgement reads one window)",
                field=f"{where}.{name}",
            )
    first = f"{where}.{next(iter(pairs))}"
    if control.end - control.start != experiment.end - experiment.start:
        raise ApiError(
            400,
            f"{first}.controlScope: the control and experiment windows must be equally long",
            field=f"{first}.controlScope",
        )
    window = (experiment.end - experiment.start).total_seconds()
    if experiment.step > window:
        step_field = step_field or f"{first}.experimentScope.step"
        raise ApiError(
            400,
            f"{step_field}: {experiment.step:g}s is longer than the window ({window:g}s)",
            field=step_field,
        )
    offset = (experiment.start - control.start).total_seconds()
    if offset < 0:
        raise ApiError(
            400,
            f"{first}.controlScope.start: the control window may not be later than the"
            " experiment's",
            field=f"{first}.controlScope.start",
        )
    built: dict[str, dict[str, str]] = {}
    for index, metric in enumerate(config.get("metrics") or []):
        scope_name = str(metric.get("scopeName") or "default")
        if scope_name not in pairs:
            raise ApiError(
                400,
                f"{where}.{scope_name}: metric {metric.get('name')!r} reads scope"
                f" {scope_name!r}, which the request does not give",
                field=f"{where}.{scope_name}",
            )
        c, e = pairs[scope_name]
        try:
            built[str(metric.get("name"))] = {
                side_name: queries.build_query(
                    metrics_account.kind,
                    config,
                    metric,
                    queries.Scope(side.scope, side.location, side.extended),
                    int(side.step),
                )
                for side_name, side in (("baseline", c), ("canary", e))
            }
        except queries.QueryError as exc:
            where = f"canaryConfig.metrics[{index}].query"
            raise ApiError(400, f"{where}: {exc}", field=where) from None
    block: dict[str, Any] = {
        "source": {SOURCE_KEYS[metrics_account.kind]: dict(metrics_account.config)},
        "start": iso(experiment.start),
        "end": iso(experiment.end),
        "step": experiment.step,
        "queries": built,
        "canaryConfig": dict(config),
        "thresholds": {"pass": thresholds[0], "marginal": thresholds[1]},
    }
    if offset > 0:
        block["baselineOffset"] = offset
    try:
        parse_judge_block(block)
    except ConfigError as exc:  # what the checks above do not catch: the config's own
        raise ApiError(400, f"canaryConfig: {exc}", field="canaryConfig") from None
    return block


def thresholds_of(
    raw: Any, config: Mapping[str, Any], where: str = "thresholds"
) -> tuple[float, float]:
    """`thresholds` {pass, marginal}, else the config's classifier.scoreThresholds, else 95/75."""
    classifier = config.get("classifier") if isinstance(config.get("classifier"), dict) else {}
    fallback = classifier.get("scoreThresholds") if isinstance(classifier, dict) else None
    fallback = fallback if isinstance(fallback, dict) else {}
    data = obj(raw, where, optional=True)
    pass_t = number(data.get("pass", fallback.get("pass")), f"{where}.pass", default=95.0)
    marginal_t = number(
        data.get("marginal", fallback.get("marginal")), f"{where}.marginal", default=75.0
    )
    if pass_t > 100:
        raise ApiError(400, f"{where}.pass: at most 100", field=f"{where}.pass")
    if marginal_t > pass_t:
        raise ApiError(
            400,
            f"{where}.marginal ({marginal_t:g}) must not exceed pass ({pass_t:g})",
            field=f"{where}.marginal",
        )
    return pass_t, marginal_t


def account_params(request: web.Request) -> dict[str, str | None]:
    return {name: request.query.get(name) or None for name in ACCOUNT_PARAMS}


async def start_execution(
    ctx: ApiContext,
    request: web.Request,
    namespace: str,
    *,
    kind: str,
    metrics: list[dict[str, Any]],
    remembered: dict[str, Any],
) -> str:
    """Start the run for a Kayenta execution; its id."""
    manifest = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {
            "generateName": f"{DOOR}-{kind}-",
            "labels": {FRONT_DOOR_LABEL: DOOR, DOOR_KIND_LABEL: kind},
            "annotations": {ANNOTATION: json.dumps(remembered, separators=(",", ":"))},
        },
        "spec": {"metrics": metrics},
    }
    try:
        run = AnalysisRun.model_validate(manifest)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = field_path(first["loc"])
        raise ApiError(400, f"{where}: {first['msg']}", field=where) from None
    stored = await start_run(ctx, namespace, run)
    name = str(stored["metadata"]["name"])
    return execution_id(namespace, name)


async def post_canary(request: web.Request) -> web.Response:
    ctx = context(request)
    namespace = namespace_for(ctx, request, write=True)
    params = account_params(request)
    metrics_account = account(ctx, params["metricsAccountName"])
    body = obj(await read_json(request), "body")
    config_id = request.match_info["id"]
    _, config = await find_config(ctx, request, config_id, request.query.get("application"))
    check_config(config, "canaryConfig")
    raw_scopes = obj(body.get("scopes"), "scopes")
    pairs = {
        str(name): (
            parse_side(
                obj(pair, f"scopes.{name}").get("controlScope"), f"scopes.{name}.controlScope"
            ),
            parse_side(pair.get("experimentScope"), f"scopes.{name}.experimentScope"),
        )
        for name, pair in raw_scopes.items()
    }
    thresholds = thresholds_of(body.get("thresholds"), config)
    block = judge_block(config, metrics_account, pairs, thresholds)
    remembered = {
        "application": request.query.get("application") or None,
        "parentPipelineExecutionId": request.query.get("parentPipelineExecutionId") or None,
        "canaryConfigId": config_id,
        **params,
        "metricsAccountName": metrics_account.name,
        "canaryExecutionRequest": body,
    }
    the_id = await start_execution(
        ctx,
        request,
        namespace,
        kind="canary",
        metrics=[{"name": JUDGEMENT, "provider": {"judge": block}}],
        remembered=remembered,
    )
    return web.json_response({"canaryExecutionId": the_id})


def orca_status(record: RunRecord, failed: bool) -> str:
    """Orca's execution status, lower-cased as Kayenta answers it."""
    if not record.completed:
        return "running"
    if record.status and record.status.get("message") == "Run Terminated":
        return "canceled"
    return "terminal" if failed else "succeeded"


def judgement_of(result: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """(Kayenta CanaryJudgeResult, error message) of a judge metric's last measurement."""
    measurements = result.get("measurements") or []
    if not measurements:
        return None, None
    last = measurements[-1]
    raw = (last.get("metadata") or {}).get("judgeResult")
    if raw:
        try:
            judged = json.loads(raw)
        except ValueError:
            judged = None
        if isinstance(judged, dict):
            return judged, None
    if last.get("phase") == "Error":
        return None, str(last.get("message") or "the judgement failed")
    return None, None


def _metric_result(record: RunRecord, name: str) -> Mapping[str, Any]:
    for result in (record.status or {}).get("metricResults") or []:
        if result.get("name") == name:
            return dict(result)
    return {}


def run_times(record: RunRecord) -> tuple[datetime | None, datetime | None, datetime | None]:
    """(build, start, end) of a run: created, started, completed."""
    status = record.status or {}
    build = parse_time(record.body.get("metadata", {}).get("creationTimestamp"))
    start = parse_time(status.get("startedAt")) or build
    end = parse_time(status.get("completedAt")) if record.completed else None
    if record.completed and end is None:
        ends = [
            parse_time(m.get("finishedAt"))
            for r in status.get("metricResults") or []
            for m in r.get("measurements") or []
        ]
        end = max((e for e in ends if e), default=None)
    return build, start, end


def block_of(record: RunRecord, metric: str) -> Mapping[str, Any]:
    for item in record.body.get("spec", {}).get("metrics") or []:
        if item.get("name") == metric:
            return dict((item.get("provider") or {}).get("judge") or {})
    return {}


async def get_canary(request: web.Request) -> web.Response:
    ctx = context(request)
    the_id = request.match_info["id"]
    record = await find_run(ctx, request, the_id, "canary")
    asked = stored_request(record)
    judged, error = judgement_of(_metric_result(record, JUDGEMENT))
    failed = record.completed and judged is None
    if failed and error is None:
        error = (record.status or {}).get("message") or f"run is {record.phase}"
    build, start, end = run_times(record)
    result = None
    if judged is not None:
        duration = (end - start).total_seconds() if start and end else None
        result = {
            "judgeResult": judged,
            "canaryDuration": f"PT{duration:g}S" if duration is not None else None,
        }
    block = block_of(record, JUDGEMENT)
    body: dict[str, Any] = {
        "application": asked.get("application"),
        "parentPipelineExecutionId": asked.get("parentPipelineExecutionId"),
        "pipelineId": the_id,
        "stageStatus": {
            "fetchControl": _stage(record),
            "fetchExperiment": _stage(record),
            "judge": _stage(record),
        },
        "complete": record.completed,
        "status": orca_status(record, failed),
        "exception": {"details": {"error": error}, "message": error} if failed else None,
        "result": result,
        "config": block.get("canaryConfig"),
        "canaryConfigId": asked.get("canaryConfigId"),
        "canaryExecutionRequest": asked.get("canaryExecutionRequest"),
        "metricSetPairListId": None,
        **times("build", build),
        **times("start", start),
        **times("end", end),
        "storageAccountName": asked.get("storageAccountName"),
        "metricsAccountName": asked.get("metricsAccountName"),
        "configurationAccountName": asked.get("configurationAccountName"),
        # Where the judgement lives as an ordinary run.
        "analysisRun": {"namespace": record.namespace, "name": record.name, "phase": record.phase},
    }
    return web.json_response(body)


def _stage(record: RunRecord) -> str:
    return (
        "succeeded"
        if record.completed and record.phase != "Error"
        else ("terminal" if record.completed else "running")
    )
