"""POST /flagger/{namespace}/{template}: Flagger's webhook gates, answered by a run.

Flagger posts `{name, namespace, phase, checksum, type?, metadata}` and reads any status
above 202 as "no", with the body as the reason in its events. The first call for a
(canary namespace, canary name, checksum, template) starts one run of the template in
the URL's namespace — `metadata` entries become its args, plus `canary-name`,
`canary-namespace` and `canary-checksum` — and every call answers from that run:

- pre-rollout, rollout, confirm-traffic-increase: 200 while the run is running or
  Successful; 403 once it is Failed, Error or Inconclusive.
- confirm-rollout, confirm-promotion: 200 once Successful; 409 while running (not yet
  decided); 403 once it failed.
- rollback: 200 once the run failed (roll back now); 409 otherwise.
- post-rollout, event: 200, and nothing is started.

A definitive "no" is a 4xx, never a 5xx that Flagger's client would retry. Flagger
cannot send headers: with tokens configured, put `?token=` in the webhook URL.
The type comes from the body's `type`, else `?type=`, else `rollout`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from analysisd.api.bodies import check_name, parse_plain, path_namespace, read_text
from analysisd.api.context import context
from analysisd.api.errors import ApiError
from analysisd.api.gates import FAILING_PHASES, ensure_run, gate_run_name, reason, template_refs
from analysisd.store import RunRecord

HOOK_TYPES = frozenset(
    {
        "pre-rollout",
        "rollout",
        "confirm-traffic-increase",
        "confirm-rollout",
        "confirm-promotion",
        "post-rollout",
        "rollback",
        "event",
    }
)
_PROGRESS = frozenset({"pre-rollout", "rollout", "confirm-traffic-increase"})
_CONFIRM = frozenset({"confirm-rollout", "confirm-promotion"})
CANARY_ANNOTATION = "analysisd.io/flagger-canary"


def _text(status: int, sentence: str) -> web.Response:
    return web.Response(status=status, text=sentence + "\n", content_type="text/plain")


def _field(data: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = data.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise ApiError(
            400, f"{name}: Flagger's webhook body carries a non-empty string", field=name
        )
    return value


def _metadata(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ApiError(400, "metadata: expected an object of name: value", field="metadata")
    return {str(k): v if isinstance(v, str) else str(v) for k, v in raw.items()}


async def flagger_hook(request: web.Request) -> web.Response:
    ctx = context(request)
    namespace = path_namespace(request)
    template = request.match_info["template"]
    check_name(template, "template")
    text = await read_text(request)
    if not text.strip():
        raise ApiError(
            400, "body: empty; Flagger sends {name, namespace, checksum, ...}", field="body"
        )
    data = parse_plain(text, ctx.settings.max_body_bytes)
    hook = _field(data, "type", required=False) or request.query.get("type", "") or "rollout"
    if hook not in HOOK_TYPES:
        raise ApiError(400, f"type: {hook!r} is not a Flagger webhook type", field="type")
    canary, canary_ns = _field(data, "name"), _field(data, "namespace")
    checksum = _field(data, "checksum", required=False)
    if hook in ("event", "post-rollout"):
        return _text(200, f"analysisd: {hook} noted for {canary_ns}/{canary}")
    metadata = _metadata(data.get("metadata"))
    args = {
        "canary-name": canary,
        "canary-namespace": canary_ns,
        "canary-checksum": checksum,
        **metadata,
    }
    cluster = request.query.get("clusterScope", "").lower() in ("1", "true", "yes")
    name = gate_run_name("flagger", canary_ns, canary, checksum, template)
    record, _ = await ensure_run(
        ctx,
        namespace,
        name,
        templates=template_refs(None if cluster else template, template if cluster else None),
        args=args,
        annotations={CANARY_ANNOTATION: f"{canary_ns}/{canary}@{checksum}"},
        door="flagger",
    )
    return _decide(hook, record)


def _decide(hook: str, record: RunRecord) -> web.Response:
    where = f"run {record.namespace}/{record.name}"
    failing = record.completed and record.phase in FAILING_PHASES
    if hook in _PROGRESS:
        if failing:
            return _text(403, f"analysisd: {where} is {record.phase}: {reason(record)}")
        return _text(200, f"analysisd: {where} is {record.phase}")
    if hook in _CONFIRM:
        if record.phase == "Successful":
            return _text(200, f"analysisd: {where} is Successful")
        if failing:
            return _text(403, f"analysisd: {where} is {record.phase}: {reason(record)}")
        return _text(409, f"analysisd: {where} is {record.phase}; not yet decided")
    # rollback: yes only when the verdict is a failure
    if failing:
        return _text(200, f"analysisd: roll back: {where} is {record.phase}: {reason(record)}")
    return _text(409, f"analysisd: no rollback: {where} is {record.phase}")
