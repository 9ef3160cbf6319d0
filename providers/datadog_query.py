"""Datadog's provider block and answers, pure: the query, formula, interval, timeout and
aggregator a metric asks for, the credentials it names, and the v1 / v2 scalar / v2
timeseries bodies decoded into numbers (validated: the client accepts wrongly typed
points silently). The I/O is providers/datadog.py."""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Mapping
from typing import Any

from datadog_api_client.v2.models import MetricsAggregator

from providers.base import ProviderAuthError, ProviderConfigError, SecretLookup
from providers.gocompat import format_f, parse_duration_seconds

KIND = "datadog"
PROVIDER = "datadog"
DEFAULT_ADDRESS = "https://api.datadoghq.com"
DEFAULT_SECRET = "datadog"
DEFAULT_INTERVAL_S = 300.0  # Argo's CRD default "5m"
DEFAULT_TIMEOUT_S = 10.0  # Argo's http.Client timeout for Datadog
DEFAULT_AGGREGATOR = "last"
REDACTED = "*****"


# ---------------------------------------------------------------- pure helpers


def duration_seconds(text: str) -> float:
    """Seconds in a Go duration string ("5m", "1h30m"), surrounding blanks ignored;
    ValueError (Go's message) otherwise."""
    return parse_duration_seconds(text.strip())  # GoError is a ValueError


def go_float(value: float) -> str:
    """Go's strconv.FormatFloat(v, 'f', -1, 64)."""
    return format_f(value)


def value_string(result: float | list[float] | None) -> str:
    """The measurement value as Argo stores it."""
    if result is None:
        return "[]"
    if isinstance(result, list):
        return "[" + ",".join(go_float(v) for v in result) + "]"
    return go_float(result)


def interval_of(config: Mapping[str, Any]) -> float:
    raw = config.get("interval") or "5m"
    try:
        seconds = duration_seconds(str(raw))
    except ValueError as exc:
        raise ProviderConfigError(
            f"datadog: interval: {exc}", provider=PROVIDER, field="interval"
        ) from None
    if seconds <= 0:
        raise ProviderConfigError(
            f"datadog: interval: {raw!r} must be positive", provider=PROVIDER, field="interval"
        )
    return seconds


def timeout_of(config: Mapping[str, Any]) -> float:
    raw = config.get("timeout", DEFAULT_TIMEOUT_S)
    try:
        seconds = float(raw)
    except (TypeError, ValueError):
        raise ProviderConfigError(
            f"datadog: timeout: {raw!r} is not a number of seconds",
            provider=PROVIDER,
            field="timeout",
        ) from None
    if seconds <= 0:
        raise ProviderConfigError(
            f"datadog: timeout: {raw!r} must be positive", provider=PROVIDER, field="timeout"
        )
    return seconds


def api_version_of(config: Mapping[str, Any]) -> str:
    version = str(config.get("apiVersion") or "v1")
    if version not in ("v1", "v2"):
        raise ProviderConfigError(
            f"datadog: apiVersion: {version!r} is not supported (use v1 or v2)",
            provider=PROVIDER,
            field="apiVersion",
        )
    return version


def queries_of(config: Mapping[str, Any]) -> tuple[dict[str, str], str]:
    """The v2 (queries, formula): a lone ``query`` becomes the query named ``query``."""
    raw_queries = config.get("queries")
    query = config.get("query")
    formula = config.get("formula")
    if raw_queries and query:
        raise ProviderConfigError(
            "datadog: use either query or queries, not both", provider=PROVIDER, field="queries"
        )
    if raw_queries:
        if not isinstance(raw_queries, Mapping):
            raise ProviderConfigError(
                "datadog: queries must be a map of name to query",
                provider=PROVIDER,
                field="queries",
            )
        queries = {str(k): str(v) for k, v in raw_queries.items()}
    elif query:
        queries = {"query": str(query)}
    else:
        raise ProviderConfigError(
            "datadog: query or queries is required", provider=PROVIDER, field="query"
        )
    if formula:
        return queries, str(formula)
    if len(queries) == 1:
        return queries, next(iter(queries))
    raise ProviderConfigError(
        "datadog: formula is required when more than one query is given",
        provider=PROVIDER,
        field="formula",
    )


def v1_query_of(config: Mapping[str, Any]) -> str:
    query = str(config.get("query") or "")
    if not query:
        raise ProviderConfigError("datadog: query is required", provider=PROVIDER, field="query")
    return query


def describe(queries: Mapping[str, str], formula: str) -> str:
    """The query as a user wrote it, for messages."""
    if len(queries) == 1 and formula in queries:
        return queries[formula]
    return formula + " with " + ", ".join(f"{k}={v}" for k, v in queries.items())


def aggregator_of(config: Mapping[str, Any]) -> str:
    aggregator = str(config.get("aggregator") or DEFAULT_AGGREGATOR)
    allowed = sorted(str(v) for v in MetricsAggregator.allowed_values)
    if aggregator not in allowed:
        raise ProviderConfigError(
            f"datadog: aggregator: {aggregator!r} is not one of {', '.join(allowed)}",
            provider=PROVIDER,
            field="aggregator",
        )
    return aggregator


def credentials(config: Mapping[str, Any], secrets: SecretLookup) -> tuple[str, str, str]:
    """(address, api key, app key) the way Argo finds them."""
    env = {key: os.environ.get(f"DD_{key}") for key in ("API_KEY", "APP_KEY", "ADDRESS")}
    if all(env.values()):
        return str(env["ADDRESS"]), str(env["API_KEY"]), str(env["APP_KEY"])
    ref = config.get("secretRef")
    secret = DEFAULT_SECRET
    if isinstance(ref, Mapping) and ref.get("name"):
        secret = str(ref["name"])
    api_key = secrets(secret, "api-key")
    app_key = secrets(secret, "app-key")
    if not api_key or not app_key:
        raise ProviderAuthError(
            f"datadog: API or App key not found (secret {secret!r}, keys 'api-key' and 'app-key')",
            provider=PROVIDER,
        )
    address = (secrets(secret, "address") or DEFAULT_ADDRESS).strip().rstrip("/")
    if "://" not in address:
        # Users write the site ("api.datadoghq.eu"); the client needs a URL.
        address = "https://" + address
    return address, api_key, app_key


def fingerprint(*parts: str) -> str:
    # Keys identify a pool without being kept in plain text in keys or reprs.
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


# ---------------------------------------------------------------- body decoding
# Each decoder raises ValueError saying what is wrong; the caller adds context.


def _number(raw: Any, where: str) -> float | None:
    """A point value: a JSON number or null; bool and strings are malformed."""
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise ValueError(f"{where} has a non-numeric value {raw!r}")
    return float(raw)


def _mapping(raw: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where} is not an object")
    return raw


def _list(raw: Any, where: str) -> list[Any]:
    if not isinstance(raw, list):
        raise ValueError(f"{where} is not a list")
    return raw


def decode_v1(payload: Any) -> float | None:
    """/api/v1/query -> the last non-null point of the first series, or None."""
    series = _list(_mapping(payload, "body").get("series", []), "series")
    if not series:
        return None
    last: float | None = None
    for index, entry in enumerate(series):
        points = _list(_mapping(entry, f"series[{index}]").get("pointlist", []), "pointlist")
        for number, point in enumerate(points):
            where = f"series[{index}].pointlist[{number}]"
            if not isinstance(point, list) or len(point) != 2:
                raise ValueError(f"{where} is not a [timestamp, value] pair")
            if _number(point[0], where) is None:
                raise ValueError(f"{where} has no timestamp")
            value = _number(point[1], where)
            if index == 0 and value is not None:
                last = value
    return last


def decode_scalar(payload: Any) -> float | list[float] | None:
    """/api/v2/query/scalar -> float (ungrouped), list of non-null values (grouped), or None."""
    data = _mapping(_mapping(payload, "body").get("data") or {}, "data")
    attributes = _mapping(data.get("attributes") or {}, "data.attributes")
    columns = _list(attributes.get("columns") or [], "data.attributes.columns")
    grouped = False
    numbers: list[Any] | None = None
    for index, column in enumerate(columns):
        column = _mapping(column, f"columns[{index}]")
        kind = column.get("type")
        if kind == "group":
            grouped = True
        elif kind == "number" and numbers is None:
            numbers = _list(column.get("values") or [], f"columns[{index}].values")
            where = f"columns[{index}].values"
            numbers = [_number(v, where) for v in numbers]
        elif kind not in ("group", "number"):
            raise ValueError(f"columns[{index}] has unknown type {kind!r}")
    if not numbers:
        return None
    if grouped:
        return [v for v in numbers if v is not None]
    first: float | None = numbers[0]
    return first


def decode_timeseries(payload: Any) -> list[float]:
    """/api/v2/query/timeseries -> the one series' values in time order (null -> NaN)."""
    data = _mapping(_mapping(payload, "body").get("data") or {}, "data")
    attributes = _mapping(data.get("attributes") or {}, "data.attributes")
    times = _list(attributes.get("times") or [], "data.attributes.times")
    values = _list(attributes.get("values") or [], "data.attributes.values")
    if not values:
        return []
    if len(values) > 1:
        raise ValueError(
            f"{len(values)} series came back; aggregate the query to one series to compare it"
        )
    row = _list(values[0], "data.attributes.values[0]")
    if len(row) != len(times):
        raise ValueError(f"{len(row)} values for {len(times)} times")
    for index, stamp in enumerate(times):
        if _number(stamp, f"times[{index}]") is None:
            raise ValueError(f"times[{index}] is null")
    points = [_number(v, f"values[0][{i}]") for i, v in enumerate(row)]
    ordered = sorted(zip(times, points, strict=True), key=lambda pair: float(pair[0]))
    return [math.nan if v is None else v for _, v in ordered]
