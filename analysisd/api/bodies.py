"""Request bodies: YAML or JSON text -> one typed Argo object, with 4xx errors naming fields."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

import yaml
from aiohttp import web

from analysisd.api.errors import ApiError
from analysisd.loader import LoadError, load_documents
from analysisd.spec import Metric, SpecError, validate_metrics

T = TypeVar("T")
# The loader's messages start with "<source>: "; the field path follows it.
_FIELD = re.compile(r"^body(?: \(document \d+\))?: ([A-Za-z0-9_.\[\]]+)[: ]")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


async def read_text(request: web.Request) -> str:
    raw = await request.read()  # bounded by the app's client_max_size (413 past it)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "body is not UTF-8 text", field="body") from None


def parse_plain(text: str) -> Any:
    """A JSON or YAML mapping that is not an Argo object (run requests)."""
    try:
        data = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ApiError(400, f"body: malformed JSON/YAML: {exc}", field="body") from None
    if not isinstance(data, dict):
        raise ApiError(400, "body: expected a JSON object / YAML mapping", field="body")
    return data


def load_one(text: str, kind: type[T], max_bytes: int) -> T:
    if not text.strip():
        raise ApiError(400, "body: empty; send a YAML or JSON manifest", field="body")
    try:
        docs = load_documents(text, source="body", max_bytes=max_bytes)
    except LoadError as exc:
        message = str(exc)
        match = _FIELD.match(message)
        raise ApiError(400, message, field=match.group(1) if match else "body") from None
    except RecursionError:
        raise ApiError(400, "body: nested too deeply", field="body") from None
    except (TypeError, ValueError, AttributeError):
        # The loader expects strings where fuzzers send objects (e.g. "kind": {}); whatever
        # it trips on, the caller sent a malformed manifest, not a server fault.
        raise ApiError(
            400, "body: not a valid manifest (check apiVersion, kind, metadata)", field="kind"
        ) from None
    if len(docs) != 1:
        raise ApiError(400, f"body: expected one object, found {len(docs)}", field="body")
    doc = docs[0]
    if not isinstance(doc, kind):
        found = getattr(doc, "kind", type(doc).__name__)
        raise ApiError(
            400, f"body: kind {found!r} where {kind.__name__} was expected", field="kind"
        )
    return doc


def check_name(name: str, where: str = "metadata.name") -> None:
    if not name:
        raise ApiError(400, f"{where}: required", field=where)
    if len(name) > 253 or not DNS_LABEL.match(name):
        raise ApiError(
            400,
            f"{where}: {name[:80]!r} must be a lowercase RFC 1123 name (a-z, 0-9, '-', '.')",
            field=where,
        )


def check_template_metrics(metrics: list[Metric]) -> None:
    """Argo's metric rules, except that {{args.x}} placeholders stay legal in a template."""
    try:
        validate_metrics(metrics)
    except SpecError as exc:
        message = str(exc)
        if "unresolved argument" in message:
            return
        field = message.split(":", 1)[0]
        raise ApiError(400, f"spec.{message}", field=f"spec.{field}") from None
