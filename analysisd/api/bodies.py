"""Request bodies: YAML or JSON text -> one typed Argo object, with 4xx errors naming fields.

A body is parsed once. Past INLINE_BYTES it is parsed (and typed) in a worker
thread, one body at a time: a 1 MiB YAML document takes the better part of a
second even with libyaml (PyYAML's constructor is Python), and on the event
loop every other request and measurement would wait for it. One at a time,
because each parsing thread competes with the loop for the GIL.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from aiohttp import web

from analysisd.admission import Problem, errors, name_problem, namespace_problem
from analysisd.api.context import ApiContext
from analysisd.api.errors import ApiError
from analysisd.loader import (
    DEFAULT_MAX_BYTES,
    MAX_DEPTH,
    MAX_INT_DIGITS,
    LoadError,
    load_documents,
    parse_data,
    typed_documents,
)
from analysisd.spec import API_VERSION, AnalysisRun, Metric, SpecError, validate_metrics

T = TypeVar("T")
R = TypeVar("R")
# The loader's messages start with "<source>: "; the field path follows it.
_FIELD = re.compile(r"^body(?: \(document \d+\))?: ([A-Za-z0-9_.\[\]]+)[: ]")
# Problems listed in one error message; details.causes holds every one.
_MESSAGE_PROBLEMS = 5


# Bodies up to this size are parsed on the loop (a thread hop costs more than they do).
INLINE_BYTES = 64 * 1024
# A number longer than the loader keeps as a number (it may sit anywhere in the text).
_LONG_NUMBER = re.compile(rf"\d{{{MAX_INT_DIGITS + 1}}}")


def plain_json_run(text: str, max_bytes: int) -> AnalysisRun | None:
    """The AnalysisRun a small JSON body holds, typed straight from its text, when that is
    sure to be what parse_documents + run_request_or_object make of it; else None (then
    they run, and word whatever is wrong). Sure means: one JSON object, within the size,
    depth and number limits by a bound read off the text (no more brackets than levels
    allowed, no digit run longer than a kept number), that types as an AnalysisRun whose
    apiVersion and kind were both given and are Argo's. Any failure goes the long way."""
    if (
        len(text) > INLINE_BYTES
        or len(text) * 4 > max_bytes  # UTF-8 takes at most 4 bytes a character
        or not text.lstrip().startswith("{")
        or text.count("{") + text.count("[") > MAX_DEPTH
        or _LONG_NUMBER.search(text) is not None
    ):
        return None
    try:
        run = AnalysisRun.model_validate_json(text)
    except ValueError:  # ValidationError included: the long way says what is wrong
        return None
    given = run.model_fields_set
    if "api_version" not in given or "kind" not in given or run.api_version != API_VERSION:
        return None
    return run


async def off_loop(ctx: ApiContext, text: str, work: Callable[[], R]) -> R:
    """`work()` (parsing `text`) on the loop if the text is small, else in a thread."""
    if len(text) <= INLINE_BYTES:
        return work()
    slots = ctx.extra.setdefault("parse_slots", asyncio.Semaphore(1))
    async with slots:
        return await asyncio.to_thread(work)


def parse_documents(text: str, max_bytes: int) -> list[Any]:
    """The plain documents of a body (not yet typed), under the loader's limits."""
    if not text.strip():
        raise ApiError(400, "body: empty; send a YAML or JSON manifest", field="body")
    try:
        return parse_data(text, source="body", max_bytes=max_bytes)
    except LoadError as exc:
        raise ApiError(400, f"malformed JSON/YAML: {exc}", field="body") from None
    except RecursionError:
        raise ApiError(400, "body: nested too deeply", field="body") from None


def run_request_or_object(docs: list[Any], kind: type[T]) -> dict[str, Any] | T:
    """A run request (template references + args, no spec) as its mapping, else the
    one typed object of `kind` the documents hold."""
    if len(docs) == 1 and isinstance(docs[0], dict):
        data = docs[0]
        if "templates" in data and "spec" not in data:
            return data
    return one_object(docs, kind)


def one_object(docs: list[Any], kind: type[T]) -> T:
    """The one typed Argo object of `kind` in already parsed documents."""
    try:
        objects = typed_documents(docs, source="body")
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
    if len(objects) != 1:
        raise ApiError(400, f"body: expected one object, found {len(objects)}", field="body")
    doc = objects[0]
    if not isinstance(doc, kind):
        found = getattr(doc, "kind", type(doc).__name__)
        raise ApiError(
            400, f"body: kind {found!r} where {kind.__name__} was expected", field="kind"
        )
    return doc


async def load_body(ctx: ApiContext, text: str, kind: type[T]) -> T:
    """The one object of `kind` in a body: parsed once, off the loop when large."""
    max_bytes = ctx.settings.max_body_bytes
    return await off_loop(ctx, text, lambda: one_object(parse_documents(text, max_bytes), kind))


async def read_text(request: web.Request) -> str:
    raw = await request.read()  # bounded by the app's client_max_size (413 past it)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "body is not UTF-8 text", field="body") from None


def parse_plain(text: str, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """A JSON or YAML mapping that is not an Argo object (run requests), under the
    loader's size, alias and nesting limits."""
    try:
        docs = parse_data(text, source="body", max_bytes=max_bytes)
    except LoadError as exc:
        raise ApiError(400, f"malformed JSON/YAML: {exc}", field="body") from None
    except RecursionError:
        raise ApiError(400, "body: nested too deeply", field="body") from None
    data = docs[0] if len(docs) == 1 else None
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
    """A Kubernetes object name (DNS-1123 subdomain), else 400 naming `where`."""
    why = name_problem(name)
    if why is not None:
        raise ApiError(400, f"{where}: {why}", field=where)


def check_namespace(namespace: str, where: str = "namespace") -> None:
    """A Kubernetes namespace name (DNS-1123 label), else 400 naming `where`."""
    why = namespace_problem(namespace)
    if why is not None:
        raise ApiError(400, f"{where}: {why}", field=where)


def path_namespace(request: web.Request) -> str:
    """The URL's {namespace}, checked: `../../etc` is a 400, not a lookup."""
    namespace = request.match_info["namespace"]
    check_namespace(namespace)
    return namespace


def path_name(request: web.Request) -> str:
    """The URL's {name}, checked as an object name."""
    name = request.match_info["name"]
    check_name(name, "name")
    return name


def refuse(problems: Sequence[Problem]) -> None:
    """400 naming every problem that refuses admission (warnings pass); else nothing."""
    refused = errors(problems)
    if not refused:
        return
    shown = "; ".join(str(p) for p in refused[:_MESSAGE_PROBLEMS])
    more = len(refused) - _MESSAGE_PROBLEMS
    if more > 0:
        shown += f"; and {more} more (see details.causes)"
    raise ApiError(
        400,
        shown,
        field=refused[0].field or "spec",
        causes=[(p.field, p.message) for p in refused],
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
