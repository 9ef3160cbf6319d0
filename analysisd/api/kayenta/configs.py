"""/kayenta/canaryConfig: Kayenta's canary config store (CanaryConfigController).

Configs are kept in the store's template table as kind `KayentaCanaryConfig`, named by
their id, in the namespace of their applications (common.py's rule). As Kayenta does,
a POST gives a config without `id` a UUID, stamps created/updated timestamps and
answers `{"canaryConfigId"}`; PUT replaces; DELETE answers 204; the list answers
`[{id, name, updatedTimestamp, updatedTimestampIso, applications}]`, filtered by
`?application=` (repeatable). Kayenta refuses a config without a name or
applications; here a config without applications takes `?application=` (or none:
the default namespace) and one without a name is named by its id, so Kayenta's own
sample configs load unchanged. The config must parse as our judge reads it.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from analysisd.api.audit import audit
from analysisd.api.auth import check_namespace
from analysisd.api.context import ApiContext, context
from analysisd.api.errors import ApiError
from analysisd.api.kayenta.common import candidate_namespaces, iso, read_json
from analysisd.judge.config import parse_canary_config
from analysisd.judge.errors import ConfigError
from analysisd.store import Conflict

KIND = "KayentaCanaryConfig"
# Weights are shares of 100; far beyond, the score's arithmetic overflows (inf - inf).
MAX_WEIGHT = 1e6
_NAME = re.compile(r"[A-Za-z0-9_-]+")  # Kayenta's canaryConfigNamePattern
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$")


def check_id(value: str, where: str = "canaryConfigId") -> str:
    if not _ID.match(value):
        raise ApiError(
            404, f"{where}: no canary config {value!r} (ids are letters, digits, '.', '_', '-')"
        )
    return value


def _applications(config: dict[str, Any], request: web.Request) -> list[str]:
    apps = config.get("applications")
    if apps is None:
        given = request.query.getall("application", [])
        return [str(a) for a in given if a]
    if not isinstance(apps, list) or not all(isinstance(a, str) and a for a in apps):
        raise ApiError(400, "applications: expected a list of names", field="applications")
    return list(apps)


def _namespace(ctx: ApiContext, applications: list[str]) -> str:
    kayenta = ctx.settings.kayenta
    spaces = {kayenta.namespace_for(a) for a in applications} or {kayenta.namespace}
    if len(spaces) > 1:
        raise ApiError(
            400,
            f"applications: {applications} map to several namespaces ({', '.join(sorted(spaces))});"
            " a canary config lives in one",
            field="applications",
        )
    return spaces.pop()


def check_config(config: Any, where: str = "body") -> None:
    """400 naming the field when our judge cannot read `config` (`where` is where the
    config sits in the request: the body itself, or e.g. `canaryConfig`)."""
    if not isinstance(config, dict):
        raise ApiError(400, f"{where}: expected a canary config object", field=where)
    prefix = "" if where == "body" else f"{where}."
    classifier = config.get("classifier")
    weights = classifier.get("groupWeights") if isinstance(classifier, dict) else None
    if isinstance(weights, dict):
        for group, weight in weights.items():
            if isinstance(weight, int | float) and abs(weight) > MAX_WEIGHT:
                field = f"{prefix}classifier.groupWeights"
                raise ApiError(
                    400,
                    f"{field}.{group}: {weight!r} is not a share of a score of 100"
                    f" (at most {MAX_WEIGHT:g})",
                    field=field,
                )
    try:
        parse_canary_config(config)
    except ConfigError as exc:
        message = str(exc).removeprefix("canary config: ")
        named = re.match(r"^([A-Za-z0-9_.\[\]]+)", message)
        field = prefix + named.group(1) if named else where
        raise ApiError(400, f"{prefix}{message}", field=field) from None


def _prepared(
    config: Any, request: web.Request, ctx: ApiContext, config_id: str | None
) -> tuple[str, dict[str, Any]]:
    check_config(config)
    name = config.get("name")
    if name is not None and (
        not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_-]+", name)
    ):
        raise ApiError(
            400,
            f"name: canary config cannot be named {name!r}; names must contain only letters,"
            " numbers, dashes (-) and underscores (_)",
            field="name",
        )
    applications = _applications(config, request)
    namespace = _namespace(ctx, applications)
    given = config.get("id")
    if given is not None and not isinstance(given, str):
        raise ApiError(400, "id: expected a string", field="id")
    the_id = config_id or given or str(uuid.uuid4())
    if not _ID.match(the_id):
        raise ApiError(400, f"id: {the_id!r} is not a usable id", field="id")
    now = int(time.time() * 1000)
    body = dict(config)
    body["id"] = the_id
    body["name"] = name or the_id
    body["applications"] = applications
    created = body.get("createdTimestamp")
    if not isinstance(created, int) or isinstance(created, bool) or created < 0:
        created = now
    body["createdTimestamp"] = created
    body["createdTimestampIso"] = _ms_iso(created)
    body["updatedTimestamp"] = now
    body["updatedTimestampIso"] = _ms_iso(now)
    return namespace, body


def _ms_iso(ms: int) -> str:
    try:
        return iso(datetime.fromtimestamp(ms / 1000, UTC))
    except (OverflowError, OSError, ValueError):
        raise ApiError(400, "createdTimestamp: out of range", field="createdTimestamp") from None


async def find_config(
    ctx: ApiContext, request: web.Request, config_id: str, application: str | None = None
) -> tuple[str, dict[str, Any]]:
    """(namespace, config) of `config_id`: in the application's namespace when one is
    given, else in any namespace the token may read; 404 otherwise."""
    check_id(config_id)
    if application:
        namespace = ctx.settings.kayenta.namespace_for(application)
        check_namespace(request, namespace, write=False)
        spaces = [namespace]
    else:
        spaces = candidate_namespaces(ctx, request)
    for namespace in spaces:
        body = await ctx.store.get_template(KIND, namespace, config_id)
        if body is not None:
            return namespace, body
    raise ApiError(404, f"canaryConfigId: no canary config {config_id!r}")


async def list_configs(request: web.Request) -> web.Response:
    ctx = context(request)
    wanted = [a for a in request.query.getall("application", []) if a]
    kayenta = ctx.settings.kayenta
    spaces = sorted({kayenta.namespace_for(a) for a in wanted}) if wanted else [kayenta.namespace]
    out: list[dict[str, Any]] = []
    for namespace in spaces:
        check_namespace(request, namespace, write=False)
        for body in await ctx.store.list_templates(KIND, namespace):
            apps = body.get("applications") or []
            if wanted and not set(wanted) & set(apps):
                continue
            out.append(
                {
                    "id": body.get("id"),
                    "name": body.get("name"),
                    "updatedTimestamp": body.get("updatedTimestamp"),
                    "updatedTimestampIso": body.get("updatedTimestampIso"),
                    "applications": apps,
                }
            )
    return web.json_response(out)


async def get_config(request: web.Request) -> web.Response:
    ctx = context(request)
    _, body = await find_config(ctx, request, request.match_info["configId"])
    return web.json_response(body)


async def create_config(request: web.Request) -> web.Response:
    ctx = context(request)
    config = await read_json(request)
    namespace, body = _prepared(config, request, ctx, None)
    check_namespace(request, namespace, write=True)
    try:
        await ctx.store.put_template(KIND, namespace, body["id"], body, create=True)
    except Conflict:
        raise ApiError(
            409, f"id: canary config {body['id']!r} already exists", field="id"
        ) from None
    audit("create", KIND, namespace, body["id"])
    return web.json_response({"canaryConfigId": body["id"]})


async def replace_config(request: web.Request) -> web.Response:
    ctx = context(request)
    config_id = check_id(request.match_info["configId"])
    config = await read_json(request)
    old_namespace, old = await find_config(ctx, request, config_id)
    if isinstance(config, dict) and "createdTimestamp" not in config:
        config = {**config, "createdTimestamp": old.get("createdTimestamp")}
    namespace, body = _prepared(config, request, ctx, config_id)
    check_namespace(request, namespace, write=True)
    check_namespace(request, old_namespace, write=True)
    await ctx.store.put_template(KIND, namespace, config_id, body, create=False)
    if old_namespace != namespace:  # its applications moved it
        await ctx.store.delete_template(KIND, old_namespace, config_id)
    audit("replace", KIND, namespace, config_id)
    return web.json_response({"canaryConfigId": config_id})


async def delete_config(request: web.Request) -> web.Response:
    ctx = context(request)
    config_id = check_id(request.match_info["configId"])
    namespace, _ = await find_config(ctx, request, config_id)
    check_namespace(request, namespace, write=True)
    await ctx.store.delete_template(KIND, namespace, config_id)
    audit("delete", KIND, namespace, config_id)
    return web.Response(status=204)
