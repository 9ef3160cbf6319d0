"""What the Kayenta API's handlers share: namespaces, accounts, bodies, ids and times.

Namespace rule: an `application` maps to a namespace through the settings' `kayenta`
block (`applications: {app: namespace}`, else `namespace`, default "default"); every
canary config and execution lives in the namespace of its application, and a token
must be allowed there (analysisd/api/auth.py `check_namespace`).

An execution id is `<namespace>.<run name>`: Kayenta's GET /canary/{id} carries no
application, and a namespace never contains a dot.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from analysisd.admission import name_problem, namespace_problem
from analysisd.api.auth import check_namespace
from analysisd.api.bodies import read_text
from analysisd.api.context import ApiContext
from analysisd.api.errors import ApiError
from analysisd.config import Account
from analysisd.store import RunRecord

DOOR = "kayenta"
ANNOTATION = "analysisd.io/kayenta"  # the request as received, JSON (no secrets in it)
# Our judge's metric names in the run: one per judgement.
JUDGEMENT = "judgement"
# Provider block key per account kind (config.ACCOUNT_KINDS' inverse).
SOURCE_KEYS = {"prometheus": "prometheus", "datadog": "datadog", "cloudwatch": "cloudWatch"}


def namespace_for(ctx: ApiContext, request: web.Request, *, write: bool) -> str:
    """The namespace of `?application=` (or the default), checked against the token."""
    application = request.query.get("application") or None
    namespace = ctx.settings.kayenta.namespace_for(application)
    check_namespace(request, namespace, write=write)
    return namespace


def candidate_namespaces(ctx: ApiContext, request: web.Request) -> list[str]:
    """Where an object named only by id may be: the default namespace, then every mapped
    one, restricted to those the token may read."""
    kayenta = ctx.settings.kayenta
    out: list[str] = []
    for namespace in (kayenta.namespace, *kayenta.applications.values()):
        if namespace in out:
            continue
        try:
            check_namespace(request, namespace, write=False)
        except ApiError:
            continue
        out.append(namespace)
    return out


def account(ctx: ApiContext, name: str | None, where: str = "metricsAccountName") -> Account:
    """The metrics account `name`; without one, the only account configured (Kayenta's
    getRequiredOneBy picks the first of the type)."""
    accounts = ctx.settings.accounts
    if not name:
        if len(accounts) == 1:
            return next(iter(accounts.values()))
        known = ", ".join(sorted(accounts)) or "none configured"
        raise ApiError(400, f"{where}: required (accounts: {known})", field=where)
    found = accounts.get(name)
    if found is None:
        known = ", ".join(sorted(accounts)) or "none configured"
        raise ApiError(
            400, f"{where}: no metrics account {name!r} (accounts: {known})", field=where
        )
    return found


async def read_json(request: web.Request, *, required: bool = True) -> Any:
    """The body as JSON (Kayenta speaks JSON only); 400 naming `body` otherwise."""
    text = await read_text(request)
    if not text.strip():
        if required:
            raise ApiError(400, "body: empty; send a JSON object", field="body")
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ApiError(400, f"body: malformed JSON: {exc}", field="body") from None
    except RecursionError:
        raise ApiError(400, "body: nested too deeply", field="body") from None


def obj(value: Any, where: str, *, optional: bool = False) -> dict[str, Any]:
    if value is None and optional:
        return {}
    if not isinstance(value, dict):
        raise ApiError(400, f"{where}: expected an object", field=where)
    return value


def text(value: Any, where: str, *, optional: bool = True) -> str:
    if value is None and optional:
        return ""
    if not isinstance(value, str):
        raise ApiError(400, f"{where}: expected a string", field=where)
    return value


def number(value: Any, where: str, *, default: float | None = None, minimum: float = 0) -> float:
    if value is None:
        if default is None:
            raise ApiError(400, f"{where}: required (a number)", field=where)
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ApiError(400, f"{where}: expected a number, got {value!r}", field=where)
    if value < minimum:
        raise ApiError(400, f"{where}: must be at least {minimum:g}, got {value!r}", field=where)
    return float(value)


def instant(value: Any, where: str, *, optional: bool = False) -> datetime | None:
    """An ISO-8601 instant (Kayenta's `Instant`), also as epoch milliseconds."""
    if value is None:
        if optional:
            return None
        raise ApiError(
            400, f"{where}: required (an ISO-8601 time such as 2026-01-01T10:00:00Z)", field=where
        )
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        try:
            return datetime.fromtimestamp(value / 1000, UTC)
        except (OverflowError, OSError, ValueError):
            raise ApiError(400, f"{where}: {value!r} is out of range", field=where) from None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            moment = None
        if moment is not None:
            return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    raise ApiError(
        400,
        f"{where}: {value!r} is not an ISO-8601 time such as 2026-01-01T10:00:00Z",
        field=where,
    )


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def parse_time(value: Any) -> datetime | None:
    """A stored RFC 3339 time (status.startedAt etc.), or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def times(prefix: str, moment: datetime | None) -> dict[str, Any]:
    """Kayenta's pair `<prefix>TimeMillis` + `<prefix>TimeIso` (null when unknown)."""
    return {
        f"{prefix}TimeMillis": millis(moment) if moment else None,
        f"{prefix}TimeIso": iso(moment) if moment else None,
    }


def execution_id(namespace: str, name: str) -> str:
    return f"{namespace}.{name}"


def split_execution_id(value: str, where: str) -> tuple[str, str]:
    """`<namespace>.<run name>` -> (namespace, name); 404 for anything else (an id we
    never gave out names nothing)."""
    namespace, dot, name = value.partition(".")
    if not dot or namespace_problem(namespace) or name_problem(name):
        raise ApiError(404, f"{where}: no execution {value!r}")
    return namespace, name


async def find_run(ctx: ApiContext, request: web.Request, value: str, kind: str) -> RunRecord:
    namespace, name = split_execution_id(value, "id")
    check_namespace(request, namespace, write=False)
    record = await ctx.store.get_run(namespace, name)
    labels = record.labels if record is not None else {}
    if record is None or labels.get(DOOR_KIND_LABEL) != kind:
        raise ApiError(404, f"no {kind} execution {value!r}")
    return record


DOOR_KIND_LABEL = "analysisd.io/kayenta-kind"  # "canary" or "standalone"


def stored_request(record: RunRecord) -> dict[str, Any]:
    annotations: Mapping[str, Any] = record.body.get("metadata", {}).get("annotations") or {}
    try:
        data = json.loads(str(annotations.get(ANNOTATION) or "{}"))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
