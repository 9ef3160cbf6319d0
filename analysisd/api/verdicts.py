"""POST|GET /api/v1/namespaces/{ns}/verdicts/{key}: a verdict an Argo `web` metric can poll.

The first POST for a key starts one run from the named template (or cluster template)
with the given args; every later POST, whatever its body, and every GET answer that
same run's state: `{"phase", "message", "run", "complete", "metrics"}` with 200. An
Argo AnalysisTemplate with a web metric (jsonPath `{$.phase}`) can so delegate its
analysis to analysisd; see examples/argo-web-gate.yaml and docs/front-doors.md.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from analysisd.api.bodies import check_name, parse_plain, path_namespace, read_text
from analysisd.api.context import context
from analysisd.api.errors import ApiError
from analysisd.api.gates import (
    ensure_run,
    gate_run_name,
    metric_summary,
    reason,
    template_refs,
)
from analysisd.store import RunRecord

KEY_ANNOTATION = "analysisd.io/verdict-key"
MAX_KEY = 253


def _key(request: web.Request) -> str:
    key = request.match_info["key"]
    if not key or len(key) > MAX_KEY or not key.isprintable():
        raise ApiError(
            400, f"key: 1 to {MAX_KEY} printable characters, got {len(key)}", field="key"
        )
    return key


def _answer(record: RunRecord) -> web.Response:
    phase = record.phase
    body = {
        "phase": phase,
        "message": reason(record) if record.completed or phase != "Running" else "",
        "run": record.name,
        "complete": record.completed,
        "metrics": metric_summary(record),
    }
    return web.json_response(body)


def _args(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ApiError(400, "args: expected an object of name: value", field="args")
    out: dict[str, str] = {}
    for name, value in raw.items():
        if isinstance(value, bool):
            out[str(name)] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            out[str(name)] = str(value)
        else:
            raise ApiError(400, f"args.{name}: expected a string or number", field=f"args.{name}")
    return out


async def post_verdict(request: web.Request) -> web.Response:
    ctx = context(request)
    namespace = path_namespace(request)
    key = _key(request)
    name = gate_run_name("verdict", key)
    existing = await ctx.store.get_run(namespace, name)
    if existing is not None:
        return _answer(existing)
    text = await read_text(request)
    data = parse_plain(text, ctx.settings.max_body_bytes) if text.strip() else {}
    template, cluster = data.get("templateName"), data.get("clusterTemplateName")
    for field, value in (("templateName", template), ("clusterTemplateName", cluster)):
        if value is not None:
            if not isinstance(value, str):
                raise ApiError(400, f"{field}: expected a name", field=field)
            check_name(value, field)
    if not template and not cluster:
        raise ApiError(
            400,
            "templateName: name the template to run (or clusterTemplateName)",
            field="templateName",
        )
    record, _ = await ensure_run(
        ctx,
        namespace,
        name,
        templates=template_refs(template, cluster),
        args=_args(data.get("args")),
        annotations={KEY_ANNOTATION: key},
        door="verdict",
    )
    return _answer(record)


async def get_verdict(request: web.Request) -> web.Response:
    ctx = context(request)
    namespace = path_namespace(request)
    key = _key(request)
    record = await ctx.store.get_run(namespace, gate_run_name("verdict", key))
    if record is None:
        raise ApiError(
            404, f'no verdict for key "{key}" in namespace "{namespace}"; POST starts one'
        )
    return _answer(record)
