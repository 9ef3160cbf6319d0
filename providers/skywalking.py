"""SkyWalking provider: Argo Rollouts' ``skywalking`` metrics, GraphQL against the OAP server.

Request, as Argo's machinebox/graphql client sends it: ``POST <address>/graphql`` with
``{"query": <the metric's query>, "variables": {"duration": {"start": <now - interval>,
"end": <now>, "step": "MINUTE"}}}``, times as ``2006-01-02 1504`` (UTC). Userinfo in the
address is sent as HTTP Basic auth, as Go's client does (an OAP behind an authenticating proxy).

What conditions see (Argo master): the answer's ``data``, decoded as Go decodes JSON (every
number a float64): ``result.service_apdex.values.values`` for a query aliased
``service_apdex``. ``data: null`` is the Error ``no results returned from SkyWalking query``.
The measurement value is Go's json.Marshal of ``data``. GraphQL ``errors`` are the Error
``graphql: <first message>``; a non-2xx answer without them is ``graphql: server returned a
non-200 status code: <status>``, as machinebox/graphql words them.

Config (``provider.skywalking``): ``address`` (required), ``query`` (required), ``interval``
(required: a Go duration, the window the query reads) and the analysisd extension
``timeout`` (seconds; Argo allows 30).
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from providers.base import (
    ProviderBadBody,
    ProviderConfigError,
    ProviderError,
    ProviderUnsupported,
    Reading,
    SecretLookup,
    excerpt,
    fingerprint,
)
from providers.gocompat import json_go_type, json_marshal, parse_duration_seconds
from providers.vendor_http import (
    VendorHttp,
    go_json,
    http_failure,
    http_url,
    redact,
    required_text,
    shown_url,
    timeout_of,
)

KIND = "skywalking"
PROVIDER = "skywalking"
DEFAULT_TIMEOUT_S = 30.0  # Argo's defaultQueryTimeout
NO_RESULTS = "no results returned from SkyWalking query"
TIME_FORMAT = "%Y-%m-%d %H%M"  # Go's "2006-01-02 1504"


def interval_of(config: Mapping[str, Any]) -> float:
    """The window in seconds; Go's time.ParseDuration message when it is not a duration."""
    raw = config.get("interval")
    text = "" if raw is None else str(raw)
    try:
        seconds = parse_duration_seconds(text)
    except ValueError as exc:
        raise ProviderConfigError(
            f"skywalking: interval: {exc}", provider=PROVIDER, field="interval"
        ) from None
    return seconds


def duration_variable(now: datetime, interval_s: float) -> dict[str, str]:
    """The ``$duration`` Argo passes: MINUTE step, start ``interval`` before ``now``."""
    start = now - timedelta(seconds=interval_s)
    return {
        "start": start.strftime(TIME_FORMAT),
        "end": now.strftime(TIME_FORMAT),
        "step": "MINUTE",
    }


def split_address(address: str) -> tuple[str, str, str]:
    """(address without userinfo, user, password)."""
    parts = urllib.parse.urlsplit(address)
    if parts.username is None and parts.password is None:
        return address, "", ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    bare = urllib.parse.urlunsplit(parts._replace(netloc=host))
    return (
        bare,
        urllib.parse.unquote(parts.username or ""),
        urllib.parse.unquote(parts.password or ""),
    )


def _first_error(payload: Any) -> str | None:
    errors = payload.get("errors") if isinstance(payload, Mapping) else None
    if not isinstance(errors, Sequence) or isinstance(errors, str) or not errors:
        return None
    first = errors[0]
    message = first.get("message") if isinstance(first, Mapping) else first
    return f"graphql: {message}"


class SkyWalkingProvider:
    """One pooled session per OAP address (and Basic auth, if the address has one)."""

    kind: ClassVar[str] = KIND
    STATIC_KEYS: ClassVar[bool] = True  # keys come from the block alone

    def __init__(self, address: str) -> None:
        self.address, user, password = split_address(address)
        self.endpoint = f"{self.address}/graphql"
        self.shown = shown_url(self.endpoint)
        self._secrets = (password,) if password else ()
        self._headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Accept": "application/json; charset=utf-8",
            "User-Agent": "analysisd",
        }
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
        return (KIND, address, fingerprint(user, password) if user or password else "")

    @classmethod
    def create(cls, config: Mapping[str, Any], secrets: SecretLookup) -> SkyWalkingProvider:
        return cls(http_url(required_text(config, "address", KIND), KIND))

    @classmethod
    def check(cls, config: Mapping[str, Any]) -> None:
        http_url(required_text(config, "address", KIND), KIND)
        required_text(config, "query", KIND)
        interval_of(config)
        timeout_of(config, DEFAULT_TIMEOUT_S, KIND)

    @classmethod
    def request_key(cls, config: Mapping[str, Any]) -> tuple[Any, ...]:
        return (
            *cls.pool_key(config, _no_secrets),
            str(config.get("query") or ""),
            str(config.get("interval") or ""),
            timeout_of(config, DEFAULT_TIMEOUT_S, KIND),
        )

    @classmethod
    def limit_address(cls, config: Mapping[str, Any]) -> str:
        return split_address(http_url(required_text(config, "address", KIND), KIND))[0]

    # -- Provider

    async def measure(self, config: Mapping[str, Any]) -> Reading:
        query = required_text(config, "query", KIND)
        variables = {"duration": duration_variable(datetime.now(UTC), interval_of(config))}
        body = json.dumps({"query": query, "variables": variables}).encode()
        timeout = timeout_of(config, DEFAULT_TIMEOUT_S, KIND)
        answer = await self._http.send(
            "POST", self.endpoint, where=self.shown, timeout_s=timeout, headers=self._headers,
            body=body,
        )  # fmt: skip
        payload: Any = None
        decoded = True
        try:
            payload = go_json(answer.body)
        except ValueError:
            decoded = False
        if not answer.ok:
            argo = (
                _first_error(payload)
                if decoded
                else f"graphql: server returned a non-200 status code: {answer.status}"
            )
            raise http_failure(
                PROVIDER,
                self.shown,
                answer,
                argo or f"graphql: server returned a non-200 status code: {answer.status}",
                secrets=self._secrets,
            )
        if not decoded or not isinstance(payload, Mapping):
            raise ProviderBadBody(
                redact(
                    f"skywalking at {self.shown}: HTTP {answer.status} but the body is not a "
                    f"GraphQL answer: decoding response: {excerpt(answer.body)!r}",
                    self._secrets,
                ),
                provider=PROVIDER,
                address=self.shown,
            )
        error = _first_error(payload)
        if error:
            raise ProviderError(
                redact(f"skywalking at {self.shown}: {error}", self._secrets),
                provider=PROVIDER,
                address=self.shown,
            )
        data = payload.get("data")
        if data is None:
            raise ProviderBadBody(
                f"skywalking at {self.shown}: {NO_RESULTS}",
                provider=PROVIDER,
                address=self.shown,
            )
        return Reading(
            result=data, value=json_marshal(data, strict=False), go_type=json_go_type(data)
        )

    async def series(
        self, config: Mapping[str, Any], query: str, start: datetime, end: datetime, step: float
    ) -> list[float]:
        raise ProviderUnsupported(
            "skywalking does not serve range data to the judge in analysisd; "
            "use a prometheus, datadog, graphite, influxdb or wavefront source",
            provider=PROVIDER,
        )

    async def aclose(self) -> None:
        await self._http.aclose()


def _no_secrets(name: str, key: str) -> str | None:
    return None
