"""AnalysisTemplate (namespaced) and ClusterAnalysisTemplate (cluster-scoped) handlers."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from analysisd.admission import template_problems
from analysisd.api.audit import audit
from analysisd.api.bodies import (
    check_name,
    check_namespace,
    check_template_metrics,
    load_body,
    path_name,
    read_text,
    refuse,
)
from analysisd.api.context import context
from analysisd.api.errors import ApiError, status_body
from analysisd.spec import API_VERSION, AnalysisTemplate, ClusterAnalysisTemplate
from analysisd.store import Conflict

TemplateType = type[AnalysisTemplate] | type[ClusterAnalysisTemplate]


def _kind(request: web.Request) -> TemplateType:
    return ClusterAnalysisTemplate if "namespace" not in request.match_info else AnalysisTemplate


def _ns(request: web.Request) -> str:
    # Cluster templates live under the empty namespace in the store.
    namespace = request.match_info.get("namespace", "")
    if "namespace" in request.match_info:
        check_namespace(namespace)
    return namespace


async def _body(request: web.Request, kind: TemplateType) -> dict[str, Any]:
    ctx = context(request)
    namespace = _ns(request)  # a bad {namespace} is refused before the body is read
    obj: AnalysisTemplate | ClusterAnalysisTemplate = await load_body(
        ctx, await read_text(request), kind
    )
    check_name(obj.metadata.name)
    if namespace and obj.metadata.namespace not in (None, "", namespace):
        raise ApiError(
            400,
            f"metadata.namespace: {obj.metadata.namespace!r}"
            f" does not match the URL's {namespace!r}",
            field="metadata.namespace",
        )
    check_template_metrics(obj.spec.metrics)
    # Arguments come later; what can be judged without them is judged now.
    refuse(template_problems(obj.spec.metrics))
    if namespace:
        obj.metadata.namespace = namespace
    else:
        obj.metadata.namespace = None
    return obj.model_dump(mode="json", by_alias=True, exclude_none=True)


async def create_template(request: web.Request) -> web.Response:
    kind = _kind(request)
    body = await _body(request, kind)
    name = body["metadata"]["name"]
    try:
        await context(request).store.put_template(
            kind.__name__, _ns(request), name, body, create=True
        )
    except Conflict as exc:
        raise ApiError(409, str(exc), field="metadata.name") from None
    audit("create", kind.__name__, _ns(request), name)
    return web.json_response(body, status=201)


async def replace_template(request: web.Request) -> web.Response:
    kind = _kind(request)
    name = path_name(request)
    body = await _body(request, kind)
    if body["metadata"]["name"] != name:
        raise ApiError(
            400,
            f"metadata.name: {body['metadata']['name']!r} does not match the URL's {name!r}",
            field="metadata.name",
        )
    created = await context(request).store.put_template(
        kind.__name__, _ns(request), name, body, create=False
    )
    audit("create" if created else "replace", kind.__name__, _ns(request), name)
    return web.json_response(body, status=201 if created else 200)


async def get_template(request: web.Request) -> web.Response:
    kind = _kind(request)
    name = path_name(request)
    body = await context(request).store.get_template(kind.__name__, _ns(request), name)
    if body is None:
        raise ApiError(404, f'{kind.__name__} "{name}" not found')
    return web.json_response(body)


async def list_templates(request: web.Request) -> web.Response:
    kind = _kind(request)
    items = await context(request).store.list_templates(kind.__name__, _ns(request))
    return web.json_response(
        {"apiVersion": API_VERSION, "kind": f"{kind.__name__}List", "metadata": {}, "items": items}
    )


async def delete_template(request: web.Request) -> web.Response:
    kind = _kind(request)
    name = path_name(request)
    if not await context(request).store.delete_template(kind.__name__, _ns(request), name):
        raise ApiError(404, f'{kind.__name__} "{name}" not found')
    audit("delete", kind.__name__, _ns(request), name)
    return web.json_response(status_body(200, f'{kind.__name__} "{name}" deleted'))
