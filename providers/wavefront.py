"""Wavefront provider: Argo Rollouts' ``wavefront`` metrics over the chart query API.

Request, as Argo's go-wavefront client sends it: ``GET https://<address>/api/v2/chart/api``
with ``q=<query>``, ``s`` and ``e`` both the measurement's start in epoch milliseconds,
``g=s``, ``p=1`` (one point) and ``i=true`` (series whose points lie outside the window
too), header ``Authorization: Bearer <token>``.

Token, as Argo finds it: the secret ``wavefront-api-tokens`` in the run's namespace, whose
key is the metric's ``address`` (``example.wavefront.com``) and value the API token;
none -> ``API token not found``. analysisd extension: ``address`` may be a URL
(``http://127.0.0.1:8080`` for a proxy or a test peer); the token is then under the URL's
host name (a Secret key cannot hold ``:`` or ``/``).

What conditions see (Argo master): per time series, the value of the data point closest to
the measurement's start. One series -> that ``float64`` (value ``%.2f``: ``0.05``); several
-> ``[]float64`` (value ``[0.05,0.10]``); none -> Error ``No TimeSeries found in response
from Wavefront``. Metadata ``timestamps`` (the points' epoch seconds) and ``drift``
(seconds from the start), and ``warnings`` when Wavefront sent some.
"""

from __future__ import annotations

import math
import re
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from providers.base import (
    ProviderAuthError,
    ProviderBadBody,
    ProviderConfigError,
    Reading,
    SecretLookup,
    excerpt,
    fingerprint,
)
from providers.gocompat import GO_FLOAT64, GO_FLOAT64_SLICE
from providers.vendor_http import (
    VendorHttp,
    go_json,
    go_percent_f,
    http_failure,
    redact,
    required_text,
    shown_url,
    timeout_of,
)

KIND = "wavefront"
PROVIDER = "wavefront"
TOKENS_SECRET = "wavefront-api-tokens"
QUERY_PATH = "/api/v2/chart/api"
DEFAULT_TIMEOUT_S = 30.0
NO_SERIES = "No TimeSeries found in response from Wavefront"
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_HTTP_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    406: "Not Acceptable",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def base_url(address: str) -> str:
    """``https://<address>`` as go-wavefront builds it, or the URL given (analysisd)."""
    text = address.strip().rstrip("/")
    if "://" in text:
        parts = urllib.parse.urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ProviderConfigError(
                f"wavefront address {shown_url(text)} is not a valid URL",
                provider=PROVIDER,
                field="address",
            )
        return text
    if not text or "/" in text or " " in text:
        raise ProviderConfigError(
            f"wavefront: address {address!r} must be a host name like example.wavefront.com",
            provider=PROVIDER,
            field="address",
        )
    return f"https://{text}"


def token_key(address: str) -> str:
    """The key of the address's token in ``wavefront-api-tokens``."""
    text = address.strip().rstrip("/")
    if _SECRET_KEY.match(text):
        return text
    return urllib.parse.urlsplit(base_url(text)).hostname or text


def address_of(config: Mapping[str, Any]) -> str:
    address = required_text(config, "address", KIND)
    base_url(address)
    return address.strip().rstrip("/")


def token_of(config: Mapping[str, Any], secrets: SecretLookup) -> str:
    key = token_key(address_of(config))
    token = secrets(TOKENS_SECRET, key)
    if not token:
        raise ProviderAuthError(
            f"wavefront: API token not found (secret {TOKENS_SECRET!r} has no key {key!r})",
            provider=PROVIDER,
        )
    return token


def closest(points: Sequence[Sequence[float]], start_s: float) -> tuple[float, int, int]:
    """Argo's findDataPointValue: (value, epoch s, drift s) of the point nearest `start_s`."""
    value, stamp, delta = 0.0, 0.0, math.inf
    for point in points:
        new_delta = point[0] - start_s
        if abs(new_delta) < abs(delta):
            value, stamp, delta = point[1], point[0], new_delta
    # Go's int64(+Inf) on amd64 is the smallest int64 (no point at all).
    drift = -(2**63) if math.isinf(delta) else int(delta)
    return value, int(stamp), drift


def decode_series(payload: Any) -> tuple[list[list[list[float]]], str]:
    """(each series' [timestamp, value] points, warnings) of a chart API answer."""
    if not isinstance(payload, Mapping):
        raise ValueError("the answer is not a JSON object")
    warnings = payload.get("warnings") or ""
    if not isinstance(warnings, str):
        raise ValueError("'warnings' is not a string")
    raw = payload.get("timeseries") or []
    if not isinstance(raw, list):
        raise ValueError("'timeseries' is not a list")
    series: list[list[list[float]]] = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, Mapping):
            raise ValueError(f"timeseries[{index}] is not an object")
        points = entry.get("data") or []
        if not isinstance(points, list):
            raise ValueError(f"timeseries[{index}].data is not a list")
        decoded: list[list[float]] = []
        for number, point in enumerate(points):
            if (
                not isinstance(point, list)
                or len(point) < 2
                or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in point)
            ):
                raise ValueError(
                    f"timeseries[{index}].data[{number}] is not a [timestamp, value] pair"
                )
            decoded.append([float(v) for v in point])
        series.append(decoded)
    return series, warnings


class WavefrontProvider:
    """One pooled session per (Wavefront address, token)."""

    kind: ClassVar[str] = KIND

    def __init__(self, address: str, token: str) -> None:
        self.address = address
        self.base = base_url(address)
        self.shown = shown_url(self.base)
        self._token = token
        self._http = VendorHttp(PROVIDER)

    # -- ProviderClass

    @classmethod
    def pool_key(cls, config: Mapping[str, Any], secrets: SecretLookup) -> tuple[Any, ...]:
        address = address_of(config)
        return (KIND, base_url(address), fingerprint(token_of(config, secrets)))

    @classmethod
    def create(cls, config: Mapping[str, Any], secrets: SecretLookup) -> WavefrontProvider:
        return cls(address_of(config), token_of(config, secrets))

    @classmethod
    def check(cls, config: Mapping[str, Any]) -> None:
        address_of(config)
        required_text(config, "query", KIND)
        timeout_of(config, DEFAULT_TIMEOUT_S, KIND)

    @classmethod
    def request_key(cls, config: Mapping[str, Any]) -> tuple[Any, ...]:
        return (
            KIND,
            str(config.get("address") or ""),
            str(config.get("query") or ""),
            timeout_of(config, DEFAULT_TIMEOUT_S, KIND),
        )

    @classmethod
    def limit_address(cls, config: Mapping[str, Any]) -> str:
        return base_url(address_of(config))

    # -- Provider

    async def measure(self, config: Mapping[str, Any]) -> Reading:
        query = required_text(config, "query", KIND)
        start_s = int(time.time())
        stamp = str(start_s * 1000)
        params = {"q": query, "s": stamp, "e": stamp, "g": "s", "p": "1", "i": "true"}
        series, warnings = await self._chart(params, config)
        metadata: dict[str, str] = {}
        if warnings:
            metadata["warnings"] = warnings
        if not series:
            detail = f" (warnings: {warnings})" if warnings else ""
            raise ProviderBadBody(
                f"wavefront at {self.shown}{QUERY_PATH}: {NO_SERIES} "
                f"(query {excerpt(query, 200)!r}){detail}",
                provider=PROVIDER,
                address=self.shown,
            )
        picked = [closest(points, start_s) for points in series]
        if len(picked) == 1:
            value, epoch, drift = picked[0]
            metadata.update(timestamps=str(epoch), drift=str(drift))
            return Reading(
                result=value, value=go_percent_f(value, 2), metadata=metadata, go_type=GO_FLOAT64
            )
        values = [v for v, _, _ in picked]
        metadata.update(
            timestamps="[" + ",".join(str(e) for _, e, _ in picked) + "]",
            drift="[" + ",".join(str(d) for _, _, d in picked) + "]",
        )
        shown = "[" + ",".join(go_percent_f(v, 2) for v in values) + "]"
        return Reading(result=values, value=shown, metadata=metadata, go_type=GO_FLOAT64_SLICE)

    async def series(
        self, config: Mapping[str, Any], query: str, start: datetime, end: datetime, step: float
    ) -> list[float]:
        """One series from start to end (Wavefront's own summarization to `step`)."""
        params = {
            "q": query,
            "s": str(int(start.timestamp() * 1000)),
            "e": str(int(end.timestamp() * 1000)),
            "g": "s" if step < 60 else "m",
            "strict": "true",
        }
        found, _ = await self._chart(params, config)
        if len(found) > 1:
            raise ProviderBadBody(
                f"wavefront at {self.shown}{QUERY_PATH}: {len(found)} series came back for "
                f"{query!r}; aggregate them to one (e.g. sum(...)) to compare it as a series",
                provider=PROVIDER,
                address=self.shown,
            )
        return [point[1] for point in found[0]] if found else []

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- I/O

    async def _chart(
        self, params: Mapping[str, str], config: Mapping[str, Any]
    ) -> tuple[list[list[list[float]]], str]:
        where = f"{self.shown}{QUERY_PATH}"
        url = f"{self.base}{QUERY_PATH}?{urllib.parse.urlencode(sorted(params.items()))}"
        headers = {
            "Authorization": f"Bearer {self._token}",
            "Accept": "application/json",
            "User-Agent": "analysisd",
        }
        answer = await self._http.send(
            "GET",
            url,
            where=where,
            timeout_s=timeout_of(config, DEFAULT_TIMEOUT_S, KIND),
            headers=headers,
        )
        if not (200 <= answer.status <= 204):
            reason = _HTTP_REASONS.get(answer.status, "")
            body = answer.body.decode("utf-8", "replace").strip()
            argo = f"server returned {answer.status} {reason}".rstrip()
            if body:
                argo += f": {excerpt(body)}"
            raise http_failure(PROVIDER, where, answer, argo, secrets=(self._token,))
        try:
            return decode_series(go_json(answer.body))
        except ValueError as exc:
            raise ProviderBadBody(
                redact(
                    f"wavefront at {where}: HTTP {answer.status} but {exc}: "
                    f"{excerpt(answer.body)!r}",
                    (self._token,),
                ),
                provider=PROVIDER,
                address=self.shown,
            ) from None
