"""/kayenta/standalone_canary_analysis: Kayenta's standalone canary analysis
(StandaloneCanaryAnalysisController): several judgements over a canary's lifetime.

`POST /standalone_canary_analysis/{configId}` (a stored config) or
`POST /standalone_canary_analysis` with `{"canaryConfig", "executionRequest"}` (ad hoc),
query parameters `user`, `application` (default `ad-hoc`), `parentPipelineExecutionId`,
`metricsAccountName`, `configurationAccountName`, `storageAccountName`; the body is a
CanaryAnalysisExecutionRequest. Kayenta's arithmetic (SetupAndExecuteCanariesStage):

- start = scopes[0].startTimeIso, else now; lifetime = the whole minutes from start to
  scopes[0].endTimeIso, else lifetimeDurationMins (one of them is required);
- interval = analysisIntervalMins, else (or when 0 or longer) the lifetime; there are
  lifetime / interval judgements;
- judgement i reads [start, start + i*interval] (growing), or the last lookbackMins
  before that end (sliding); without endTimeIso both move by beginAfterMins and
  judgement i waits beginAfterMins + i*interval (Kayenta's warm-up and interval waits),
  with endTimeIso nothing waits;
- every judgement but the last must score at least `marginal` (else the analysis
  fails at once), the last at least `pass`.

The analysis is one ordinary run in the application's namespace with one judge metric
per judgement (`judgement-<i>`, its wait as `initialDelay`): the earlier ones succeed
at `result.score >= marginal`, the last maps its score as Argo's kayenta provider
does. A failed judgement makes the run terminate, so no later judgement starts: fail
fast. Minutes may be fractions here (Kayenta takes whole minutes).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from analysisd.api.auth import check_namespace
from analysisd.api.context import context
from analysisd.api.errors import ApiError
from analysisd.api.kayenta.canary import (
    Side,
    account_params,
    block_of,
    judge_block,
    judgement_of,
    run_times,
    start_execution,
    thresholds_of,
)
from analysisd.api.kayenta.common import (
    account,
    find_run,
    instant,
    iso,
    millis,
    number,
    obj,
    parse_time,
    read_json,
    stored_request,
    text,
    times,
)
from analysisd.api.kayenta.configs import check_config, find_config
from analysisd.store import RunRecord

DEFAULT_APPLICATION = "ad-hoc"
DEFAULT_STEP = 60
MAX_JUDGEMENTS = 100
_MIN = timedelta(minutes=1)


def judgement_name(index: int) -> str:
    return f"judgement-{index}"


MAX_MINUTES = 366 * 24 * 60  # a year: beyond it a window's end would not be a date soon


def _minutes(request: Mapping[str, Any], key: str, default: float | None) -> float | None:
    value = request.get(key)
    if value is None:
        return default
    minutes = number(value, key)
    if minutes > MAX_MINUTES:
        raise ApiError(400, f"{key}: at most {MAX_MINUTES} minutes (a year)", field=key)
    return minutes


def plan(request: Mapping[str, Any], now: datetime) -> list[tuple[datetime, datetime, float]]:
    """Kayenta's judgements: (window start, window end, wait in seconds) for each."""
    scopes = request.get("scopes")
    if not isinstance(scopes, list) or not scopes:
        raise ApiError(400, "scopes: at least one scope", field="scopes")
    first = obj(scopes[0], "scopes[0]")
    start = instant(first.get("startTimeIso"), "scopes[0].startTimeIso", optional=True) or now
    end = instant(first.get("endTimeIso"), "scopes[0].endTimeIso", optional=True)
    if end is not None:
        if end <= start:
            raise ApiError(
                400,
                "scopes[0].endTimeIso: must be after startTimeIso",
                field="scopes[0].endTimeIso",
            )
        lifetime: float = math.floor((end - start) / _MIN)
    else:
        given = _minutes(request, "lifetimeDurationMins", None)
        if given is None:
            raise ApiError(
                400,
                "lifetimeDurationMins: required unless scopes[0].endTimeIso is given",
                field="lifetimeDurationMins",
            )
        lifetime = given
    if lifetime <= 0:
        raise ApiError(
            400,
            "lifetimeDurationMins: the lifetime must be positive (whole minutes"
            " from startTimeIso to endTimeIso)",
            field="lifetimeDurationMins",
        )
    interval = _minutes(request, "analysisIntervalMins", None) or lifetime
    interval = lifetime if interval > lifetime else interval
    count = math.floor(lifetime / interval + 1e-9)
    if count > MAX_JUDGEMENTS:
        raise ApiError(
            400,
            f"analysisIntervalMins: {count} judgements; at most {MAX_JUDGEMENTS}",
            field="analysisIntervalMins",
        )
    warmup = _minutes(request, "beginAfterMins", 0.0) or 0.0
    lookback = _minutes(request, "lookbackMins", 0.0) or 0.0
    out: list[tuple[datetime, datetime, float]] = []
    for index in range(1, count + 1):
        w_start, w_end = start, start + index * interval * _MIN
        wait = 0.0
        if end is None:
            w_start, w_end = w_start + warmup * _MIN, w_end + warmup * _MIN
            wait = (warmup + index * interval) * 60
        if lookback > 0:
            w_start = w_end - lookback * _MIN
        out.append((w_start, w_end, wait))
    return out


def _pairs(
    request: Mapping[str, Any], w_start: datetime, w_end: datetime
) -> dict[str, tuple[Side, Side]]:
    scopes = request["scopes"]
    first = scopes[0]
    step = number(first.get("step"), "scopes[0].step", default=DEFAULT_STEP) or DEFAULT_STEP
    pairs: dict[str, tuple[Side, Side]] = {}
    for index, raw in enumerate(scopes):
        where = f"scopes[{index}]"
        scope = obj(raw, where)
        offset = number(
            scope.get("controlOffsetInMinutes"), f"{where}.controlOffsetInMinutes", default=0
        )
        if offset:
            raise ApiError(
                400,
                f"{where}.controlOffsetInMinutes: not supported (the control window would be"
                " longer than the experiment's); give 0",
                field=f"{where}.controlOffsetInMinutes",
            )
        extended = obj(
            scope.get("extendedScopeParams"), f"{where}.extendedScopeParams", optional=True
        )
        for key, value in extended.items():
            if not isinstance(value, str):
                raise ApiError(
                    400,
                    f"{where}.extendedScopeParams.{key}: expected a string",
                    field=f"{where}.extendedScopeParams.{key}",
                )
        name = text(scope.get("scopeName"), f"{where}.scopeName") or "default"
        pairs[name] = (
            Side(
                text(scope.get("controlScope"), f"{where}.controlScope"),
                text(scope.get("controlLocation"), f"{where}.controlLocation"),
                w_start,
                w_end,
                step,
                dict(extended),
            ),
            Side(
                text(scope.get("experimentScope"), f"{where}.experimentScope"),
                text(scope.get("experimentLocation"), f"{where}.experimentLocation"),
                w_start,
                w_end,
                step,
                dict(extended),
            ),
        )
    return pairs


async def post_standalone(request: web.Request) -> web.Response:
    ctx = context(request)
    application = request.query.get("application") or DEFAULT_APPLICATION
    namespace = ctx.settings.kayenta.namespace_for(application)
    check_namespace(request, namespace, write=True)
    params = account_params(request)
    metrics_account = account(ctx, params["metricsAccountName"])
    body = obj(await read_json(request), "body")
    config_id = request.match_info.get("id")  # a stored config's id
    if config_id is not None:
        _, config = await find_config(ctx, request, config_id, application)
        execution = body
        prefix = ""
    else:
        config = obj(body.get("canaryConfig"), "canaryConfig")
        execution = obj(body.get("executionRequest"), "executionRequest")
        prefix = "executionRequest."
    check_config(config, "canaryConfig")
    if execution.get("thresholds") is None:
        raise ApiError(
            400, f"{prefix}thresholds: required ({{pass, marginal}})", field=f"{prefix}thresholds"
        )
    try:
        thresholds = thresholds_of(execution.get("thresholds"), config)
        judgements = plan(execution, datetime.now(UTC))
        metrics: list[dict[str, Any]] = []
        for index, (w_start, w_end, wait) in enumerate(judgements, start=1):
            block = judge_block(
                config,
                metrics_account,
                _pairs(execution, w_start, w_end),
                thresholds,
                step_field="scopes[0].step",
            )
            metric: dict[str, Any] = {"name": judgement_name(index), "provider": {"judge": block}}
            if index < len(judgements):
                metric["successCondition"] = f"result.score >= {thresholds[1]!r}"
            if wait > 0:
                metric["initialDelay"] = f"{math.ceil(wait * 1000)}ms"
            metrics.append(metric)
    except ApiError as exc:
        if prefix and exc.field and not exc.field.startswith(("canaryConfig", "body")):
            exc.field = prefix + exc.field
            exc.message = prefix + exc.message
        raise
    remembered = {
        "application": application,
        "user": request.query.get("user") or "anonymous",
        "parentPipelineExecutionId": request.query.get("parentPipelineExecutionId"),
        "canaryConfigId": config_id,
        **params,
        "metricsAccountName": metrics_account.name,
        "canaryAnalysisExecutionRequest": execution,
        "windows": [[iso(s), iso(e)] for s, e, _ in judgements],
        "thresholds": {"pass": thresholds[0], "marginal": thresholds[1]},
    }
    the_id = await start_execution(
        ctx, request, namespace, kind="standalone", metrics=metrics, remembered=remembered
    )
    return web.json_response({"canaryAnalysisExecutionId": the_id})


def _status(done: bool, ok: bool) -> str:
    return "SUCCEEDED" if done and ok else ("TERMINAL" if done else "RUNNING")


def _judgement(
    record: RunRecord, the_id: str, index: int, window: list[str] | None
) -> tuple[dict[str, Any] | None, float | None]:
    results = {r.get("name"): r for r in (record.status or {}).get("metricResults") or []}
    result = results.get(judgement_name(index)) or {}
    measurements = result.get("measurements") or []
    if not measurements:
        return None, None
    judged, error = judgement_of(result)
    last = measurements[-1]
    finished = last.get("finishedAt") is not None
    started_at, finished_at = parse_time(last.get("startedAt")), parse_time(last.get("finishedAt"))
    score = judged["score"]["score"] if judged else None
    w_start = parse_time(window[0]) if window else None
    w_end = parse_time(window[1]) if window else None
    warnings = [w for w in (judged or {}).get("warnings", []) if isinstance(w, str)]
    entry = {
        "executionId": f"{the_id}/{judgement_name(index)}",
        # Kayenta's monitor task ends a judgement below marginal TERMINAL.
        "executionStatus": _status(finished, last.get("phase") not in ("Failed", "Error")),
        "exception": {"details": {"error": error}, "message": error} if error else None,
        "result": {"judgeResult": judged} if judged else None,
        "judgementStartTimeIso": iso(w_start) if w_start else None,
        "judgementStartTimeMillis": millis(w_start) if w_start else None,
        "judgementEndTimeIso": iso(w_end) if w_end else None,
        "judgementEndTimeMillis": millis(w_end) if w_end else None,
        "warnings": warnings,
        "metricSetPairListId": None,
        **times("build", started_at),
        **times("start", started_at),
        **times("end", finished_at),
    }
    return entry, (float(score) if isinstance(score, int | float) else None)


def _score_message(
    record: RunRecord, scores: list[float], count: int, thresholds: Mapping[str, Any]
) -> str:
    pass_t, marginal_t = thresholds.get("pass"), thresholds.get("marginal")
    if not record.completed:
        return f"{len(scores)} of {count} judgements done"
    if not scores:
        return "no judgement completed"
    last = scores[-1]
    if len(scores) < count:
        return (
            f"judgement {len(scores)} of {count} scored {last:g}, below the marginal threshold"
            f" {marginal_t}: the analysis failed fast"
        )
    if record.phase == "Successful":
        return f"Final canary score {last:g} met or exceeded the pass threshold {pass_t}"
    return f"Final canary score {last:g} is not above the pass threshold {pass_t}"


async def get_standalone(request: web.Request) -> web.Response:
    ctx = context(request)
    the_id = request.match_info["id"]
    record = await find_run(ctx, request, the_id, "standalone")
    asked = stored_request(record)
    windows = asked.get("windows") or []
    count = len(record.body.get("spec", {}).get("metrics") or [])
    entries: list[dict[str, Any]] = []
    scores: list[float] = []
    execution = asked.get("canaryAnalysisExecutionRequest") or {}
    stored = asked.get("thresholds")
    thresholds: dict[str, Any] = stored if isinstance(stored, dict) else {}
    marginal = thresholds.get("marginal")
    for index in range(1, count + 1):
        window = windows[index - 1] if index - 1 < len(windows) else None
        entry, score = _judgement(record, the_id, index, window)
        if entry is None:
            continue
        entries.append(entry)
        if score is not None:
            scores.append(score)
            # Kayenta stops at the first intermediate judgement below marginal; judgements
            # that were due at once (endTimeIso given) may have run beside it: not shown.
            if index < count and isinstance(marginal, int | float) and score < marginal:
                break
    passed = record.completed and record.phase == "Successful"
    build, start, end = run_times(record)
    error = None
    if record.completed and record.phase == "Error":
        error = (record.status or {}).get("message") or "a judgement failed"
    state = _status(record.completed, passed)
    result = {
        "didPassThresholds": passed,
        "hasWarnings": any(e["warnings"] for e in entries),
        "canaryScoreMessage": _score_message(record, scores, count, thresholds),
        "canaryScores": scores,
        "canaryExecutionResults": entries,
        "buildTimeIso": iso(build) if build else None,
        "startTimeIso": iso(start) if start else None,
        "endTimeIso": iso(end) if end else None,
    }
    body = {
        "application": asked.get("application"),
        "user": asked.get("user"),
        "parentPipelineExecutionId": asked.get("parentPipelineExecutionId"),
        "pipelineId": the_id,
        "stageStatus": [
            {
                "type": "runCanary",
                "name": f"Run Canary #{index}",
                "status": next(
                    (
                        e["executionStatus"]
                        for e in entries
                        if e["executionId"].endswith("/" + judgement_name(index))
                    ),
                    "NOT_STARTED",
                ).lower(),
                "executionId": f"{the_id}/{judgement_name(index)}",
            }
            for index in range(1, count + 1)
        ],
        "complete": record.completed,
        "executionStatus": state,
        "status": state.lower(),
        "exception": {"details": {"error": error}, "message": error} if error else None,
        "canaryAnalysisExecutionResult": result if record.completed else None,
        "canaryAnalysisExecutionRequest": execution,
        "canaryConfig": block_of(record, judgement_name(1)).get("canaryConfig"),
        "canaryConfigId": asked.get("canaryConfigId"),
        **times("build", build),
        **times("start", start),
        **times("end", end),
        "storageAccountName": asked.get("storageAccountName"),
        "metricsAccountName": asked.get("metricsAccountName"),
        # Where the analysis lives as an ordinary run.
        "analysisRun": {"namespace": record.namespace, "name": record.name, "phase": record.phase},
    }
    return web.json_response(body)
