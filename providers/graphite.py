"""Graphite provider: Argo Rollouts' ``graphite`` metrics over the render API.

Request, as Argo builds it: every blank of ``query`` removed, the rest read as a URL
query string (``target=...&from=-5min``), ``format=json`` set, and the whole sent as
``GET <address>/render?<keys sorted, Go's query escaping>``. A base path in
``address`` is kept (``http://g:8080/graphite`` -> ``/graphite/render``); userinfo in
it is sent as HTTP Basic auth, as Go's client does.

What conditions see (Argo master): the **first target's** datapoints, nulls dropped,
as ``[]float64`` (``result[0]``, ``len(result)``); all-null datapoints give ``[]``.
No target, or a first target without datapoints, is the Error ``no values found``.
The measurement value is Go's ``%f`` of each value: ``[0.500000,2.500000]``.

Config (``provider.graphite``): ``address`` (required), ``query`` (required) and the
analysisd extension ``timeout`` (seconds; Argo's client gives up after 10).
Errors: an answer of 400 or more is ``error response: <body>`` as in Argo, with the
address and status; 401/403 ProviderAuthError, 429 (503 + Retry-After) rate limited.
"""

from __future__ import annotations

import base64
import json
import math
import re
import urllib.parse
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from providers.base import ProviderBadBody, Reading, SecretLookup, excerpt, fingerprint
from providers.gocompat import GO_FLOAT64_SLICE
from providers.vendor_http import (
    VendorHttp,
    go_percent_f,
    http_failure,
    http_url,
    required_text,
    shown_url,
    timeout_of,
)

KIND = "graphite"
PROVIDER = "graphite"
DEFAULT_TIMEOUT_S = 10.0  # Argo's http.Client{Timeout: 10s}
NO_VALUES = "no values found"
_BLANKS = re.compile(r"\s+")


# ---------------------------------------------------------------- pure helpers


def sanitize(query: str) -> str:
    """Argo's sanitizeQuery: every run of whitespace removed."""
    return _BLANKS.sub("", query)


def render_query(query: str) -> str:
    """The render URL's query string: Argo's parse, ``format=json`` set, Go's Encode."""
    pairs = urllib.parse.parse_qsl(sanitize(query), keep_blank_values=True)
    values: dict[str, list[str]] = {}
    for key, value in pairs:
        if key != "format":
            values.setdefault(key, []).append(value)
    values["format"] = ["json"]
    return "&".join(
        f"{urllib.parse.quote_plus(key)}={urllib.parse.quote_plus(value)}"
        for key in sorted(values)
        for value in values[key]
    )


def split_address(address: str) -> tuple[str, str, str]:
    """(address without userinfo, its user, its password): Go sends userinfo as Basic auth."""
    parts = urllib.parse.urlsplit(address)
    if parts.username is None and parts.password is None:
        return address, "", ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    bare = urllib.parse.urlunsplit(parts._replace(netloc=host))
    user = urllib.parse.unquote(parts.username or "")
    return bare, user, urllib.parse.unquote(parts.password or "")


def render_url(address: str, query: str) -> str:
    base = urllib.parse.urlsplit(address)
    path = base.path.rstrip("/") + "/render"
    return urllib.parse.urlunsplit((base.scheme, base.netloc, path, render_query(query), ""))


def _value(raw: Any, point: Any) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise ValueError(f"error unmarshaling value: {json.dumps(raw)}")
    if isinstance(raw, (int, float)):
        return float(raw)
    if isinstance(raw, str):
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"cannot parse value {raw!r} of data point {point!r}") from None
    raise ValueError(f"error unmarshaling value: {json.dumps(raw)}")


def _timestamp(raw: Any, point: Any) -> None:
    if raw is None or (isinstance(raw, (int, float)) and not isinstance(raw, bool)):
        return
    if isinstance(raw, str):
        try:
            int(raw, 10)
            return
        except ValueError:
            raise ValueError(f"cannot parse timestamp {raw!r} of data point {point!r}") from None
    raise ValueError(f"error unmarshaling timestamp: {json.dumps(raw)}")


def decode_targets(payload: Any) -> list[list[float | None]]:
    """The render API's JSON -> each target's datapoint values (None for null), Argo's rules."""
    if payload is None:
        return []
    if not isinstance(payload, list):
        raise ValueError(f"the answer is a JSON {type(payload).__name__}, not a list of targets")
    targets: list[list[float | None]] = []
    for index, target in enumerate(payload):
        if not isinstance(target, Mapping):
            raise ValueError(f"target {index} is not an object")
        points = target.get("datapoints")
        if points is None:
            targets.append([])
            continue
        if not isinstance(points, list):
            raise ValueError(f"target {index}: datapoints is not a list")
        values: list[float | None] = []
        for point in points:
            if not isinstance(point, list) or len(point) != 2:
                raise ValueError(f"error unmarshaling data point: {json.dumps(point)}")
            values.append(_value(point[0], point))
            _timestamp(point[1], point)
        targets.append(values)
    return targets


def value_string(values: list[float]) -> str:
    """Argo's measurement value: ``[`` + Go's ``%f,`` per value + ``]``."""
    return "[" + ",".join(go_percent_f(v) for v in values) + "]"


# ---------------------------------------------------------------- the provider


class GraphiteProvider:
    """One pooled session per Graphite address (and Basic auth, if the address has one)."""

    kind: ClassVar[str] = KIND
    STATIC_KEYS: ClassVar[bool] = True  # keys come from the block alone

    def __init__(self, address: str) -> None:
        self.address, user, password = split_address(address)
        self.shown = shown_url(self.address)
        self._secrets = (password,) if password else ()
        self._headers = {"Accept": "application/json", "User-Agent": "analysisd"}
        if user or password:
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
        self._http = VendorHttp(PROVIDER)

    # -- ProviderClass

    @classmethod
    def pool_key(cls, config: Mapping[str, Any], secrets: SecretLookup) -> tuple[Any, ...]:
        address, user, password = split_address(
            http_url(required_text(config, "address", KIND), KIND)
        )
        identity = fingerprint(user, password) if user or password else ""
        return (KIND, address, identity)

    @classmethod
    def create(cls, config: Mapping[str, Any], secrets: SecretLookup) -> GraphiteProvider:
        return cls(http_url(required_text(config, "address", KIND), KIND))

    @classmethod
    def check(cls, config: Mapping[str, Any]) -> None:
        http_url(required_text(config, "address", KIND), KIND)
        required_text(config, "query", KIND)
        timeout_of(config, DEFAULT_TIMEOUT_S, KIND)

    @classmethod
    def request_key(cls, config: Mapping[str, Any]) -> tuple[Any, ...]:
        return (
            *cls.pool_key(config, _no_secrets),
            sanitize(str(config.get("query") or "")),
            timeout_of(config, DEFAULT_TIMEOUT_S, KIND),
        )

    @classmethod
    def limit_address(cls, config: Mapping[str, Any]) -> str:
        return split_address(http_url(required_text(config, "address", KIND), KIND))[0]

    # -- Provider

    async def measure(self, config: Mapping[str, Any]) -> Reading:
        query = required_text(config, "query", KIND)
        targets = await self._render(render_url(self.address, query), config)
        if not targets or not targets[0]:
            raise ProviderBadBody(
                f"graphite at {self.shown}/render: {NO_VALUES} (query {sanitize(query)!r})",
                provider=PROVIDER,
                address=self.shown,
            )
        values = [v for v in targets[0] if v is not None]
        return Reading(result=values, value=value_string(values), go_type=GO_FLOAT64_SLICE)

    async def series(
        self, config: Mapping[str, Any], query: str, start: datetime, end: datetime, step: float
    ) -> list[float]:
        """One target from start to end at Graphite's own resolution; null -> NaN."""
        params = {
            "target": query,
            "from": str(int(start.timestamp())),
            "until": str(int(end.timestamp())),
        }
        text = urllib.parse.urlencode(params)
        targets = await self._render(render_url(self.address, text), config)
        if len(targets) > 1:
            raise ProviderBadBody(
                f"graphite at {self.shown}/render: {len(targets)} targets came back for "
                f"{query!r}; aggregate them to one (e.g. sumSeries) to compare it as a series",
                provider=PROVIDER,
                address=self.shown,
            )
        if not targets:
            return []
        return [math.nan if v is None else v for v in targets[0]]

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- I/O

    async def _render(self, url: str, config: Mapping[str, Any]) -> list[list[float | None]]:
        timeout = timeout_of(config, DEFAULT_TIMEOUT_S, KIND)
        where = f"{self.shown}/render"
        answer = await self._http.send(
            "GET",
            url,
            where=where,
            timeout_s=timeout,
            headers=self._headers,
        )
        if answer.status >= 400:
            text = answer.body.decode("utf-8", "replace")
            raise http_failure(
                PROVIDER, where, answer, f"error response: {excerpt(text)}", secrets=self._secrets
            )
        try:
            payload = json.loads(answer.body)
        except ValueError:
            raise ProviderBadBody(
                f"graphite at {where}: HTTP {answer.status} but the body is not JSON: "
                f"{excerpt(answer.body)!r}",
                provider=PROVIDER,
                address=self.shown,
            ) from None
        try:
            return decode_targets(payload)
        except ValueError as exc:
            raise ProviderBadBody(
                f"graphite at {where}: HTTP {answer.status} but {exc}: {excerpt(answer.body)}",
                provider=PROVIDER,
                address=self.shown,
            ) from None


def _no_secrets(name: str, key: str) -> str | None:
    return None
