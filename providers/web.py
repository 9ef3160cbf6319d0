"""Argo's Web provider: call an HTTP endpoint, pick a value out of its JSON body.

Config (the metric's ``provider.web`` block, arguments already substituted):
``url``, ``method`` (GET | POST | PUT, default GET), ``headers`` [{key, value}],
``body`` (string) or ``jsonBody`` (object; sets Content-Type application/json),
``timeoutSeconds`` (default 10), ``jsonPath`` (Kubernetes style, default ``{$}``),
``insecure`` (skip TLS verification), ``authentication.oauth2`` {tokenUrl,
clientId, clientSecret, scopes}.

Result shaping follows Argo master (metricproviders/webmetric/webmetric.go):
numbers decode as float64; the first jsonPath match is the condition's `result`
and its Go ``json.Marshal`` text is the measurement value (a string keeps its
quotes). A body that is not JSON (or is empty) becomes the result and value as a
plain string and the conditions decide (Argo PR #4770). Argo <= v1.9 instead
marked such a measurement Successful without evaluating the conditions; set
``nonJSONBody: successful`` in the block (an analysisd extension) to get that:
the reading then carries metadata ``analysisd.io/phase: Successful``.
"""

from __future__ import annotations

import contextlib
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from providers.base import ProviderBadBody, ProviderError, Reading, SecretLookup, fingerprint
from providers.gocompat import json_go_type
from providers.jsonpath import JSONPath, JSONPathError, go_json
from providers.web_body import compile_json_path, decode_json, series_number
from providers.web_request import (
    DEFAULT_TIMEOUT_S,
    KIND,
    METHODS,
    NON_JSON_EVALUATE,
    NON_JSON_SUCCESSFUL,
    PROVIDER,
    WebRequest,
    client_timeout,
    oauth_block,
    origin_of,
    scrubbed,
    shown_url,
)

if TYPE_CHECKING:
    import aiohttp
    from yarl import URL

    from providers.oauth2 import OAuth2ClientCredentials

# providers.http (and aiohttp with it), imported when the first session is made: a lint
# of a Web template loads this module, and must not load the network stack.
_http: Any = None

# The request (checking, building, what is shown) is in web_request, the body's
# decoding and the jsonPath in web_body; these names stay importable from here.
__all__ = [
    "DEFAULT_TIMEOUT_S",
    "KIND",
    "METHODS",
    "NON_JSON_EVALUATE",
    "NON_JSON_SUCCESSFUL",
    "PHASE_METADATA_KEY",
    "PROVIDER",
    "WebProvider",
    "WebRequest",
    "compile_json_path",
    "decode_json",
    "origin_of",
    "shown_url",
]

PHASE_METADATA_KEY = "analysisd.io/phase"  # set when the phase is decided without conditions


class WebProvider:
    """One pooled aiohttp session per (origin, TLS verification, OAuth2 client)."""

    kind: ClassVar[str] = KIND
    # pool_key, request_key and limit_address read the config (and environment) only.
    STATIC_KEYS: ClassVar[bool] = True

    def __init__(self, *, insecure: bool = False, oauth2: Mapping[str, Any] | None = None) -> None:
        self._insecure = insecure
        self._oauth_block = oauth2
        self._oauth: OAuth2ClientCredentials | None = None
        self._session: aiohttp.ClientSession | None = None
        self._paths: dict[str, JSONPath] = {}

    @classmethod
    def pool_key(cls, config: Mapping[str, Any], secrets: SecretLookup) -> tuple[Any, ...]:
        oauth = oauth_block(config)
        identity: tuple[str, ...] = ()
        if oauth is not None:
            identity = (
                str(oauth.get("tokenUrl", "")),
                str(oauth.get("clientId", "")),
                fingerprint(str(oauth.get("clientSecret", ""))),
                " ".join(str(s) for s in oauth.get("scopes") or []),
            )
        return (
            KIND,
            origin_of(str(config.get("url") or "")),
            bool(config.get("insecure")),
            identity,
        )

    @classmethod
    def create(cls, config: Mapping[str, Any], secrets: SecretLookup) -> WebProvider:
        return cls(insecure=bool(config.get("insecure")), oauth2=oauth_block(config))

    @classmethod
    def request_key(cls, config: Mapping[str, Any]) -> tuple[Any, ...]:
        # The registry keys requests by (kind, pool key, request key): no pool key here.
        return WebRequest(config).key()

    @classmethod
    def limit_address(cls, config: Mapping[str, Any]) -> str:
        return origin_of(str(config.get("url") or ""))

    @classmethod
    def check(cls, config: Mapping[str, Any]) -> None:
        """What bind() checks, without a session: the jsonPath and the request."""
        # jsonPath first: a template's url is often all placeholder, and a check that
        # stopped at it would never see the path.
        compile_json_path(str(config.get("jsonPath") or "{$}"))
        WebRequest(config)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            global _http
            import aiohttp

            from providers import http
            from providers.http import client_session, policy_connector

            _http = http

            # No connection cap of aiohttp's own (100 by default): the registry already
            # caps requests in flight per pool (limits.concurrency), and a second,
            # smaller queue inside aiohttp would only add waiting and bookkeeping.
            connector = policy_connector(ssl=not self._insecure, limit=0)
            # No cookie jar: Argo's Go http.Client has none, so a Set-Cookie from one
            # metric's endpoint never reaches another's (and nothing is filtered per call).
            # The egress policy is checked on every hop and address (providers.http).
            self._session = client_session(connector=connector, cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    def _compiled(self, template: str) -> JSONPath:
        found = self._paths.get(template)
        if found is None:
            found = self._paths[template] = compile_json_path(template)
        return found

    async def _auth_headers(self, session: aiohttp.ClientSession) -> dict[str, str]:
        if self._oauth_block is None:
            return {}
        if self._oauth is None:
            from providers.oauth2 import OAuth2ClientCredentials

            block = self._oauth_block
            self._oauth = OAuth2ClientCredentials(
                session,
                str(block.get("tokenUrl", "")),
                str(block.get("clientId", "")),
                str(block.get("clientSecret", "")),
                [str(s) for s in block.get("scopes") or []],
            )
        return {"Authorization": f"Bearer {await self._oauth.token()}"}

    async def fetch(self, request: WebRequest, url: str | None = None) -> bytes:
        """Send the request; the 2xx body, or a ProviderError naming URL and status."""
        target: str | URL = url or request.target
        where = url or request.url  # as written, for messages
        session = self._get_session()
        http = _http  # providers.http, loaded with the session (no import per request)
        timeout = request.client_timeout
        if timeout is None:
            timeout = request.client_timeout = client_timeout(request.timeout)
        try:
            headers = request.headers
            if self._oauth_block is not None:
                # The token fetch has its own timeout (OAuth2ClientCredentials).
                headers = {**headers, **await self._auth_headers(session)}
            async with await http.request_checked(
                session,
                request.method,
                target,
                headers=headers,
                data=request.data,
                client_timeout=timeout,
            ) as response:
                # Capped while reading: a huge answer never sits in memory whole.
                # The shown URL is built only for a message (a body past the cap).
                raw: bytes = await http.read_capped(response, PROVIDER, lambda: shown_url(where))
                status = response.status
                response_headers = response.headers
        except ProviderError:
            raise
        except http.TRANSPORT_ERRORS as exc:
            raise http.map_client_error(exc, PROVIDER, shown_url(where), request.timeout) from None
        if status == 401 and self._oauth is not None:
            self._oauth.invalidate()  # the next measurement fetches a fresh token
        if 200 <= status < 300:
            return raw
        try:
            http.raise_for_response(PROVIDER, shown_url(where), status, response_headers, raw)
        except ProviderError as err:
            # Servers echo request headers in error pages; never pass them on.
            raise scrubbed(err, request.headers.values()) from None
        return raw

    async def measure(self, config: Mapping[str, Any]) -> Reading:
        request = WebRequest(config)
        return await self._measure(request, self._compiled(request.json_path))

    def bind(
        self, config: Mapping[str, Any], context: object = None
    ) -> Callable[[], Awaitable[Reading]]:
        """measure(config) with the request validated and its jsonPath compiled once.

        `context` (the run and metric the binding is for) is not needed by a Web block.
        A config error is raised again by every call, as measure() would raise it.
        """
        try:
            request = WebRequest(config)
            path = self._compiled(request.json_path)
            # Parsed once per metric, not per request; a URL yarl refuses stays a
            # string, so aiohttp reports it (InvalidURL) exactly as before. Imported
            # here: a lint of a Web template never loads yarl.
            from yarl import URL

            with contextlib.suppress(TypeError, ValueError):
                request.target = URL(request.url)
        except ProviderError as exc:
            error = exc

            async def refuse() -> Reading:
                raise error

            return refuse

        return _BoundWeb(self, request, path)

    async def _measure(self, request: WebRequest, path: JSONPath) -> Reading:
        raw = await self.fetch(request)
        is_json, data = decode_json(raw)
        if not is_json:
            if request.non_json == NON_JSON_SUCCESSFUL:
                return Reading(result=data, value=data, metadata={PHASE_METADATA_KEY: "Successful"})
            return Reading(result=data, value=data)
        try:
            found, value = path.first(data)
        except JSONPathError as exc:
            raise ProviderBadBody(
                f"web at {request.shown}: Could not find JSONPath in body: {exc}",
                provider=PROVIDER,
                address=request.shown,
            ) from None
        if not found:
            raise ProviderBadBody(
                f"web at {request.shown}: result of web metric produced no value "
                f"(jsonPath {request.json_path})",
                provider=PROVIDER,
                address=request.shown,
            )
        return Reading(result=value, value=go_json(value), go_type=json_go_type(value))

    async def series(
        self, config: Mapping[str, Any], query: str, start: datetime, end: datetime, step: float
    ) -> list[float]:
        """A JSON array of numbers (or jsonPath to one); see docs/providers.md for placeholders."""
        request = WebRequest(config)
        path = self._compiled(request.json_path)
        values = {
            "${query}": urllib.parse.quote(query, safe=""),
            "${start}": _seconds(start.timestamp()),
            "${end}": _seconds(end.timestamp()),
            "${step}": _seconds(step),
        }
        url = request.url
        for placeholder, text in values.items():
            url = url.replace(placeholder, text)
        if request.data is not None:
            body = request.data.decode()
            for placeholder, text in values.items():
                raw_text = query if placeholder == "${query}" else text
                body = body.replace(placeholder, raw_text)
            request.data = body.encode()
        raw = await self.fetch(request, url)
        is_json, data = decode_json(raw)
        where = shown_url(url)
        if not is_json:
            raise ProviderBadBody(
                f"web at {where}: series body is not JSON: {str(data)[:200]}",
                provider=PROVIDER,
                address=where,
            )
        try:
            found, value = path.first(data)
        except JSONPathError as exc:
            raise ProviderBadBody(
                f"web at {where}: Could not find JSONPath in body: {exc}",
                provider=PROVIDER,
                address=where,
            ) from None
        if not found or not isinstance(value, list):
            raise ProviderBadBody(
                f"web at {where}: series needs a JSON array of numbers, got {go_json(value)[:200]}",
                provider=PROVIDER,
                address=where,
            )
        return [series_number(item, where) for item in value]


class _BoundWeb:
    """WebProvider.bind's call: small, since one is held per metric of every run."""

    __slots__ = ("path", "provider", "request")

    def __init__(self, provider: WebProvider, request: WebRequest, path: JSONPath) -> None:
        self.provider = provider
        self.request = request
        self.path = path

    def __call__(self) -> Awaitable[Reading]:
        return self.provider._measure(self.request, self.path)

    def request_key(self) -> tuple[Any, ...]:
        """WebProvider.request_key of the bound config, without validating it again."""
        return self.request.key()


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
