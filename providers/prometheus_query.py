"""Prometheus' provider block and answers, pure: the address, headers, auth identity and
query settings a metric asks for, Argo's relative times, and the /api/v1/query and
/query_range answers decoded into what the conditions see (a scalar is a float, a vector
always a list). The I/O is providers/prometheus.py."""

from __future__ import annotations

import base64
import json
import math
import os
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from providers.base import (
    ProviderBadBody,
    ProviderConfigError,
    excerpt,
    fingerprint,
)
from providers.gocompat import format_f, parse_duration_seconds

KIND = "prometheus"
PROVIDER = "prometheus"
DEFAULT_TIMEOUT_S = 30.0
RESOLVED_QUERY = "ResolvedPrometheusQuery"  # Argo's metadata key
ADDRESS_ENV = "ARGO_ROLLOUTS_PROMETHEUS_ADDRESS"  # Argo's fallback address
# Ask Prometheus to give up slightly before we do, so a slow query comes back as
# its own clear 503 "query timed out" (and stops burning server CPU) rather than
# as a bare client-side timeout.
SERVER_TIMEOUT_FRACTION = 0.9
FORM = "application/x-www-form-urlencoded"


# ---------------------------------------------------------------- pure helpers


def go_float(value: float) -> str:
    """Go's strconv.FormatFloat(v, 'f', -1, 64): shortest digits, never an exponent."""
    return format_f(value)


def value_string(result: float | Sequence[float]) -> str:
    """The measurement value as Argo stores it: ``0.99`` or ``[0.99,0.9]``."""
    if isinstance(result, Sequence):
        return "[" + ",".join(go_float(v) for v in result) + "]"
    return go_float(result)


def redact_address(address: str) -> str:
    """The address without userinfo, fit for messages."""
    try:
        parts = urllib.parse.urlsplit(address)
        if parts.password is None and parts.username is None:
            return address
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
    except ValueError:  # unparseable: drop whatever could be userinfo
        return address.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=host))


def go_duration_seconds(text: str) -> float:
    """Seconds in a Go duration ("1m30s"), surrounding blanks ignored; ValueError otherwise."""
    return parse_duration_seconds(text.strip())  # GoError is a ValueError


def step_seconds(text: str) -> float:
    # Prometheus itself takes a plain number of seconds as well as a duration.
    try:
        return float(text)
    except ValueError:
        return go_duration_seconds(text)


_RELATIVE_TIME = re.compile(r"""^now\(\)\s*(?:([+-])\s*duration\(\s*(["'])([^"']+)\2\s*\))?$""")


def resolve_time(text: str, now: float) -> float:
    """A rangeQuery bound: ``now()``, ``now() - duration("5m")``, RFC 3339 or unix seconds."""
    text = text.strip()
    match = _RELATIVE_TIME.match(text)
    if match:
        sign, _, duration = match.groups()
        if sign is None:
            return now
        offset = go_duration_seconds(duration)
        return now - offset if sign == "-" else now + offset
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ValueError(
            f'cannot read time "{text}": '
            'use now(), now() - duration("5m"), RFC 3339 or unix seconds'
        ) from None


def _float(raw: Any, where: str) -> float:
    try:
        return float(raw)
    except (TypeError, ValueError):
        raise ProviderBadBody(f"{where}: sample value {raw!r} is not a number") from None


def decode_result(data: Any) -> float | list[float]:
    """The ``data`` of a successful answer -> Argo's result shape (see module docstring)."""
    if not isinstance(data, Mapping):
        raise ProviderBadBody(f"response 'data' is not an object: {excerpt(json.dumps(data))}")
    kind = data.get("resultType")
    result: Any = data.get("result")
    try:
        if kind == "vector":
            return [_float(sample["value"][1], "vector") for sample in result]
        if kind == "scalar":
            return _float(result[1], "scalar")
        if kind == "matrix":
            return [_float(point[1], "matrix") for series in result for point in series["values"]]
    except (KeyError, IndexError, TypeError):
        raise ProviderBadBody(f"malformed {kind} result: {excerpt(json.dumps(result))}") from None
    if kind == "string":
        raise ProviderBadBody(
            f"query returned a string ({excerpt(json.dumps(result))}); "
            "supported result types are vector, scalar and matrix"
        )
    raise ProviderBadBody(f"unexpected resultType {kind!r}; expected vector, scalar or matrix")


def decode_series(data: Any, start: float, end: float, step: float) -> list[float]:
    """A range answer with zero or one series -> values on the step grid, NaN where missing."""
    if not isinstance(data, Mapping) or data.get("resultType") != "matrix":
        kind = data.get("resultType") if isinstance(data, Mapping) else type(data).__name__
        raise ProviderBadBody(f"range query returned {kind!r}, expected a matrix")
    result = data.get("result")
    if not isinstance(result, list):
        raise ProviderBadBody(f"malformed matrix result: {excerpt(json.dumps(result))}")
    if not result:
        return []
    if len(result) > 1:
        raise ProviderBadBody(
            f"range query returned {len(result)} series; aggregate it to one "
            "(e.g. sum(...)) to compare it as a series"
        )
    count = math.floor((end - start) / step + 1e-9) + 1
    values = [math.nan] * count
    try:
        for stamp, raw in result[0]["values"]:
            index = round((float(stamp) - start) / step)
            if 0 <= index < count:
                values[index] = _float(raw, "matrix")
    except (KeyError, TypeError, ValueError):
        raise ProviderBadBody(f"malformed matrix result: {excerpt(json.dumps(result))}") from None
    return values


def parse_answer(status: int, body: bytes) -> tuple[Any, list[str]]:
    """A 2xx body -> (data, warnings); ProviderBadBody for anything else."""
    try:
        answer = json.loads(body)
    except ValueError:
        raise ProviderBadBody(
            f"answered {status} with a body that is not JSON: {excerpt(body)}"
        ) from None
    if not isinstance(answer, Mapping):
        raise ProviderBadBody(f"answered {status} with JSON that is not an object: {excerpt(body)}")
    if answer.get("status") != "success":
        raise ProviderBadBody(
            f"answered {status} with status {answer.get('status')!r}: "
            f"{answer.get('errorType', '')} {answer.get('error', '')}".rstrip()
            + f" ({excerpt(body)})"
        )
    warnings = [str(w) for w in answer.get("warnings") or []]
    return answer.get("data"), warnings


def warnings_metadata(warnings: Sequence[str]) -> str:
    """Argo's spelling of server warnings: ``"w1", "w2"``."""
    return ", ".join(f'"{w}"' for w in warnings)


# ---------------------------------------------------------------- configuration


@dataclass(frozen=True, slots=True)
class QuerySettings:
    """Per-measurement settings of one metric."""

    query: str
    timeout_s: float
    server_timeout_s: float | None = None
    range_start: str = ""
    range_end: str = ""
    range_step: str = ""

    @property
    def is_range(self) -> bool:
        return bool(self.range_start or self.range_end or self.range_step)

    @classmethod
    def parse(cls, config: Mapping[str, Any]) -> QuerySettings:
        query = config.get("query")
        if not isinstance(query, str) or not query.strip():
            raise ProviderConfigError(
                "prometheus: provider.prometheus.query is required", field="query"
            )
        raw_timeout = config.get("timeout")
        if raw_timeout is None:
            timeout = DEFAULT_TIMEOUT_S
        else:
            try:
                timeout = float(raw_timeout)
            except (TypeError, ValueError):
                raise ProviderConfigError(
                    f"prometheus: timeout must be a number of seconds, got {raw_timeout!r}",
                    field="timeout",
                ) from None
            if timeout < 0:
                raise ProviderConfigError(
                    "prometheus timeout should not be negative", field="timeout"
                )
        server_timeout = None
        raw_server = config.get("queryTimeout")
        if raw_server is not None:
            try:
                server_timeout = (
                    go_duration_seconds(raw_server)
                    if isinstance(raw_server, str)
                    else float(raw_server)
                )
            except (TypeError, ValueError):
                raise ProviderConfigError(
                    f"prometheus: queryTimeout must be a duration like 10s, got {raw_server!r}",
                    field="queryTimeout",
                ) from None
        range_query = config.get("rangeQuery") or {}
        if not isinstance(range_query, Mapping):
            raise ProviderConfigError(
                "prometheus: rangeQuery must be an object {start, end, step}", field="rangeQuery"
            )
        return cls(
            query=query,
            timeout_s=timeout,
            server_timeout_s=server_timeout,
            range_start=str(range_query.get("start") or ""),
            range_end=str(range_query.get("end") or ""),
            range_step=str(range_query.get("step") or ""),
        )


def address_of(config: Mapping[str, Any]) -> str:
    """The configured address, else ``$ARGO_ROLLOUTS_PROMETHEUS_ADDRESS`` (as Argo)."""
    address = config.get("address") or os.environ.get(ADDRESS_ENV, "")
    if not isinstance(address, str) or not address:
        raise ProviderConfigError(
            f"prometheus: provider.prometheus.address is required (or set {ADDRESS_ENV})",
            field="address",
        )
    try:
        parts = urllib.parse.urlsplit(address)
    except ValueError:
        parts = urllib.parse.SplitResult("", "", "", "", "")
    if not parts.scheme or not parts.netloc:
        raise ProviderConfigError(
            f"prometheus address is not in url format: {redact_address(address)}",
            field="address",
        )
    return address.rstrip("/")


def headers_of(config: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """Custom headers; Argo spells them {key, value} (some docs say {name, value})."""
    headers = []
    for index, header in enumerate(config.get("headers") or []):
        if not isinstance(header, Mapping):
            raise ProviderConfigError(
                f"prometheus: headers[{index}] must be {{key, value}}", field=f"headers[{index}]"
            )
        key = header.get("key") or header.get("name")
        if not key:
            raise ProviderConfigError(
                f"prometheus: headers[{index}].key is required", field=f"headers[{index}].key"
            )
        headers.append((str(key), str(header.get("value") or "")))
    return tuple(headers)


def auth_identity(config: Mapping[str, Any]) -> tuple[str, ...]:
    """Which credentials a config uses (for pool keys); secrets hashed, never kept."""
    auth = config.get("authentication") or {}
    identity: list[str] = []
    basic = auth.get("basicAuth") or auth.get("basic")
    if basic:
        user, password = str(basic.get("username", "")), str(basic.get("password", ""))
        identity += ["basic", fingerprint(user, password)]
    oauth = auth.get("oauth2")
    if oauth:
        secret = str(oauth.get("clientSecret", ""))
        scopes = ",".join(str(s) for s in oauth.get("scopes") or [])
        identity += [
            "oauth2",
            str(oauth.get("tokenUrl", "")),
            str(oauth.get("clientId", "")),
            scopes,
            fingerprint(secret),
        ]
    if sigv4_enabled(config):
        sig = auth.get("sigv4") or {}
        identity += [
            "sigv4",
            str(sig.get("region", "")),
            str(sig.get("profile", "")),
            str(sig.get("roleArn", "")),
        ]
    return tuple(identity)


def proxy_for(address: str) -> str | None:
    """HTTP(S)_PROXY / NO_PROXY for this address, like Go's ProxyFromEnvironment."""
    # Here, once per provider built: urllib.request loads http.client, ssl and email
    # (~10 ms), which checking a block (`analysisd lint`, issue 21) never needs.
    import urllib.request

    parts = urllib.parse.urlsplit(address)
    if parts.hostname is None or urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)


def basic_authorization(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def sigv4_enabled(config: Mapping[str, Any]) -> bool:
    """Explicit ``authentication.sigv4.enabled`` wins; else Argo's address rule."""
    sig = (config.get("authentication") or {}).get("sigv4") or {}
    explicit = sig.get("enabled") if isinstance(sig, Mapping) else None
    if explicit is not None:
        return explicit is True or str(explicit).lower() == "true"
    return "aps-workspaces" in str(config.get("address") or "")
