"""AnalysisRun handlers: create (manifest or template references), get, list, terminate, delete."""

from __future__ import annotations

import json
import secrets as random_names
import uuid
from datetime import UTC, datetime
from typing import Any

import structlog
from aiohttp import web
from pydantic import Field, ValidationError

from analysisd.admission import admit_run
from analysisd.api.audit import audit
from analysisd.api.bodies import (
    check_name,
    off_loop,
    parse_documents,
    path_name,
    path_namespace,
    plain_json_run,
    read_text,
    refuse,
    run_request_or_object,
)
from analysisd.api.context import ApiContext, context
from analysisd.api.errors import ApiError, status_body
from analysisd.api.selectors import SelectorError, matches, parse_selector
from analysisd.args import ArgsError, build_run_spec, expand_template_refs
from analysisd.config import Quota
from analysisd.engine.scheduler import SchedulerClosed
from analysisd.loader import field_path
from analysisd.outbox import public_rows
from analysisd.quotas import QUOTA_BACKLOG_SECONDS, active_limit, run_quota_problems
from analysisd.spec import (
    API_VERSION,
    AnalysisRun,
    AnalysisTemplate,
    AnalysisTemplateSpec,
    ClusterAnalysisTemplate,
    Model,
    ObjectMeta,
)
from analysisd.store import Conflict, LimitExceeded, RunRecord

log = structlog.get_logger(__name__)

COMPLETED_PHASES = frozenset({"Successful", "Failed", "Error", "Inconclusive"})
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


class RunRequest(Model):
    """A run built the way a Rollout analysis step builds one: template references + args."""

    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    templates: list[Any] = Field(default_factory=list)
    args: list[Any] = Field(default_factory=list)
    dry_run: list[Any] = Field(default_factory=list, alias="dryRun")
    measurement_retention: list[Any] = Field(default_factory=list, alias="measurementRetention")


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _generated(prefix: str) -> str:
    return prefix + "".join(random_names.choice(_NAME_ALPHABET) for _ in range(5))


async def from_templates(ctx: ApiContext, namespace: str, data: dict[str, Any]) -> AnalysisRun:
    """The run a request of template references + args asks for (400/404 naming the field)."""
    try:
        request = RunRequest.model_validate(data)
        root = AnalysisTemplate.model_validate(
            {"metadata": {"name": ""}, "spec": {"templates": request.templates}}
        )
        spec_bits = AnalysisTemplateSpec.model_validate(
            {
                "args": request.args,
                "dryRun": request.dry_run,
                "measurementRetention": request.measurement_retention,
            }
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = field_path(first["loc"])
        raise ApiError(400, f"{where}: {first['msg']}", field=where) from None
    if not request.templates:
        raise ApiError(400, "templates: at least one template reference", field="templates")
    pool: list[Any] = [
        AnalysisTemplate.model_validate(body)
        for body in await ctx.store.list_templates("AnalysisTemplate", namespace)
    ]
    pool += [
        ClusterAnalysisTemplate.model_validate(body)
        for body in await ctx.store.list_templates("ClusterAnalysisTemplate", "")
    ]
    try:
        templates, clusters = expand_template_refs([root], pool)
        templates = [t for t in templates if t.metadata.name]  # drop the synthetic root
        spec = build_run_spec(
            templates,
            clusters,
            spec_bits.args,
            dry_run=spec_bits.dry_run,
            measurement_retention=spec_bits.measurement_retention,
        )
    except ArgsError as exc:
        status = 404 if "not found" in str(exc) else 400
        raise ApiError(status, str(exc), field="templates") from None
    return AnalysisRun(metadata=request.metadata, spec=spec)


async def create_run(request: web.Request) -> web.Response:
    ctx = context(request)
    namespace = path_namespace(request)
    text = await read_text(request)
    if not text.strip():
        raise ApiError(400, "body: empty; send an AnalysisRun manifest", field="body")
    max_bytes = ctx.settings.max_body_bytes
    # Parsed once (and typed), off the loop when large: see api/bodies.py. A small JSON
    # manifest is typed straight from its text.
    parsed: dict[str, Any] | AnalysisRun | None = plain_json_run(text, max_bytes)
    if parsed is None:
        parsed = await off_loop(
            ctx,
            text,
            lambda: run_request_or_object(parse_documents(text, max_bytes), AnalysisRun),
        )
    if isinstance(parsed, dict):
        run = await from_templates(ctx, namespace, parsed)
    else:
        run = parsed
    text = await start_run_text(ctx, namespace, run)
    # The text stored is the answer (serialised once).
    return web.Response(text=text, status=201, content_type="application/json")


async def start_run(ctx: ApiContext, namespace: str, run: AnalysisRun) -> dict[str, Any]:
    """Admit `run` into `namespace`, store it and hand it to the scheduler: every front door
    (the API, verdicts, Flagger) creates runs through here. Returns the stored manifest."""
    body: dict[str, Any] = json.loads(await start_run_text(ctx, namespace, run))
    return body


async def start_run_text(ctx: ApiContext, namespace: str, run: AnalysisRun) -> str:
    """start_run, with the stored manifest as the JSON text stored."""
    meta = run.metadata
    if meta.namespace not in (None, "", namespace):
        raise ApiError(
            400,
            f"metadata.namespace: {meta.namespace!r} does not match the URL's {namespace!r}",
            field="metadata.namespace",
        )
    if not meta.name and meta.generate_name:
        meta.name = _generated(meta.generate_name)
    check_name(meta.name)
    meta.namespace = namespace
    # Final before admission: fieldRef arguments read the metadata, and the run prepared
    # here is the one the scheduler starts (arguments resolved and conditions compiled once).
    meta.uid = str(uuid.uuid4())
    meta.creation_timestamp = _now()
    created = meta.creation_timestamp.isoformat().replace("+00:00", "Z")  # as in the text
    # Everything that would fail later (or never end) is refused now, naming the field.
    problems, prepared = admit_run(run.spec, meta, ctx.secrets)
    refuse(problems)
    quota = ctx.settings.namespace(namespace).quota
    refuse_over_quota(ctx, namespace, run, quota)
    run.status = None
    # Compact JSON text straight from the model (no dict made and dumped; the keys in the
    # model's order), stored and answered as it is.
    text = run.model_dump_json(by_alias=True, exclude_none=True)
    # The run's first step, when it only starts the run (Pending -> Running), is taken
    # here and stored with it: the scheduler then does not write the run a second time.
    first = ctx.driver.first_status(run, prepared) if prepared is not None else None
    try:
        await ctx.store.create_run(
            namespace,
            meta.name,
            meta.uid,
            text,
            first.model_dump_json(by_alias=True, exclude_none=True) if first else None,
            first.phase if first else "Pending",
            dict(meta.labels),
            created,
            max_active=active_limit(quota, ctx.settings.max_active_runs_per_namespace),
        )
    except LimitExceeded as exc:
        named = " (the namespace's quota activeRuns)" if quota.active_runs is not None else ""
        raise ApiError(
            429, f"too many runs{named}: {exc}", reason="TooManyRequests", field="activeRuns"
        ) from None
    except Conflict as exc:
        raise ApiError(409, str(exc), field="metadata.name") from None
    run.status = first
    try:
        ctx.driver.submit(run, prepared, started=first is not None)
    except SchedulerClosed:
        raise ApiError(503, "shutting down; the run is stored and resumes on restart") from None
    except ValueError:
        # A deleted run of the same name is still winding down in the scheduler.
        await ctx.store.delete_run(namespace, meta.name)
        raise ApiError(
            409,
            f'AnalysisRun "{meta.name}" is still stopping; retry shortly',
            field="metadata.name",
        ) from None
    if first is not None:  # the phase change, told as the recorder tells it
        log.info("phase", namespace=namespace, run=meta.name, phase=first.phase, previous="Pending")
        ctx.hub.publish(
            namespace, meta.name, "phase", {"phase": first.phase, "previousPhase": "Pending"}
        )
    audit("create", "AnalysisRun", namespace, meta.name)
    return text


def refuse_over_quota(ctx: ApiContext, namespace: str, run: AnalysisRun, quota: Quota) -> None:
    """403 for a run over the per-run quotas; 429 while the namespace's measurements are
    backed up behind its measurementsPerSecond."""
    problems = run_quota_problems(run.spec, quota)
    if problems:
        raise ApiError(
            403,
            "; ".join(message for _, message in problems),
            field=problems[0][0],
            causes=problems,
        )
    rate = quota.measurements_per_second
    waiting = getattr(ctx.driver, "waiting", None)
    if rate is not None and waiting is not None:
        backlog = int(waiting(namespace))
        if backlog > rate * QUOTA_BACKLOG_SECONDS:
            raise ApiError(
                429,
                f"{backlog} measurements of namespace {namespace!r} are waiting behind its "
                f"quota measurementsPerSecond ({rate:g}); retry when they have been taken",
                reason="TooManyRequests",
                field="measurementsPerSecond",
            )


async def _record(request: web.Request) -> RunRecord:
    namespace, name = path_namespace(request), path_name(request)
    record = await context(request).store.get_run(namespace, name)
    if record is None:
        raise ApiError(404, f'AnalysisRun "{name}" not found in namespace "{namespace}"')
    return record


async def get_run(request: web.Request) -> web.Response:
    # The stored manifest text as it is (from memory while the store holds the run live):
    # nothing parsed or serialised again.
    namespace, name = path_namespace(request), path_name(request)
    text = await context(request).store.run_manifest(namespace, name)
    if text is None:
        raise ApiError(404, f'AnalysisRun "{name}" not found in namespace "{namespace}"')
    return web.Response(text=text, content_type="application/json")


async def list_runs(request: web.Request) -> web.Response:
    namespace = path_namespace(request)
    try:
        selector = parse_selector(request.query.get("labelSelector", ""))
    except SelectorError as exc:
        raise ApiError(400, f"labelSelector: {exc}", field="labelSelector") from None
    phase = request.query.get("phase") or None
    records = await context(request).store.list_runs(namespace, phase)
    items = [r.manifest() for r in records if matches(selector, r.labels)]
    return web.json_response(
        {"apiVersion": API_VERSION, "kind": "AnalysisRunList", "metadata": {}, "items": items}
    )


async def terminate_run(request: web.Request) -> web.Response:
    ctx = context(request)
    record = await _record(request)
    if not record.completed:
        body = dict(record.body)
        body["spec"] = {**body.get("spec", {}), "terminate": True}
        await ctx.store.mark_terminate(record.namespace, record.name, body)
        ctx.driver.terminate(record.namespace, record.name)
        audit("terminate", "AnalysisRun", record.namespace, record.name)
    fresh = await ctx.store.get_run(record.namespace, record.name)
    return web.json_response((fresh or record).manifest(), status=202)


async def delete_run(request: web.Request) -> web.Response:
    ctx = context(request)
    record = await _record(request)
    ctx.driver.terminate(record.namespace, record.name)
    await ctx.store.delete_run(record.namespace, record.name)
    audit("delete", "AnalysisRun", record.namespace, record.name)
    return web.json_response(status_body(200, f'AnalysisRun "{record.name}" deleted'))


_DELIVERY_TIMES = ("createdAt", "nextAttemptAt", "lastAttemptAt")


def _iso_times(row: Any) -> dict[str, Any]:
    """A delivery with its epoch-second times as RFC 3339 UTC, like every other time we show."""
    out = dict(row)
    for key in _DELIVERY_TIMES:
        if isinstance(out.get(key), int | float):
            stamp = datetime.fromtimestamp(out[key], UTC)
            out[key] = stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return out


async def list_deliveries(request: web.Request) -> web.Response:
    record = await _record(request)
    rows = await context(request).store.deliveries(record.namespace, record.name)
    items = [_iso_times(row) for row in public_rows(rows)]
    return web.json_response({"kind": "DeliveryList", "items": items})


async def list_measurements(request: web.Request) -> web.Response:
    """The full measurement history (the status keeps only the retained tail)."""
    record = await _record(request)
    stored = await context(request).store.measurements(record.namespace, record.name)
    items = [{"metric": m.metric, "dryRun": m.dry_run, **m.body} for m in stored]
    return web.json_response({"kind": "MeasurementList", "items": items})
