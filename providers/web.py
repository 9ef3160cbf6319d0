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
import functools
import hashlib
import json
import math
import sys
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from yarl import URL

from providers.base import (
    ProviderBadBody,
    ProviderConfigError,
    ProviderError,
    ProviderHTTPError,
    Reading,
    SecretLookup,
)
from providers.gocompat import json_go_type
from providers.jsonpath import JSONPath, JSONPathError, go_json

if TYPE_CHECKING:
    # Imported where a request is made: checking a block (`analysisd lint`, the API's
    # door) never loads aiohttp (tests/unit/test_cli_lazy.py).
    import aiohttp

    from providers.oauth2 import OAuth2ClientCredentials

KIND = "web"
PROVIDER = "web"
DEFAULT_TIMEOUT_S = 10.0
METHODS = ("GET", "POST", "PUT")
PHASE_METADATA_KEY = "analysisd.io/phase"  # set when the phase is decided without conditions
NON_JSON_EVALUATE = "evaluate"  # Argo master (default)
NON_JSON_SUCCESSFUL = "successful"  # Argo v1.9 and earlier
# Query parameters whose values are hidden in error messages.
_SECRET_PARAM_HINTS = ("key", "token", "secret", "password", "passwd", "auth", "sig", "credential")


def _fingerprint(value: str) -> str:
    # Keys must tell credentials apart without holding them.
    return hashlib.sha256(value.encode()).hexdigest()[:16]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON literal {name}")  # Go rejects NaN/Infinity


# One decoder for every body: json.loads with keyword arguments builds a new one per call.
_DECODER = json.JSONDecoder(parse_int=float, parse_constant=_reject_constant)


def decode_json(raw: bytes) -> tuple[bool, Any]:
    """(is JSON?, value) with every number a float, as Go's json.Unmarshal into any."""
    text = raw.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        return False, text  # a byte-order mark is not JSON (json.loads refuses it too)
    try:
        return True, _DECODER.decode(text)
    except ValueError:
        return False, text


def shown_url(url: str) -> str:
    """The URL for messages: no userinfo, secret-looking query values masked."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    netloc = parts.hostname or ""
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    query = parts.query
    if query:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
        masked = [
            (k, "*****" if any(h in k.lower() for h in _SECRET_PARAM_HINTS) else v)
            for k, v in pairs
        ]
        query = urllib.parse.urlencode(masked, safe="*")
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def origin_of(url: str) -> str:
    """scheme://host:port of a URL (the pool and rate-limit address), default port filled in."""
    # Only the part up to the path decides it (urlsplit's netloc ends at the first
    # of / ? #), so the answer is cached by that prefix: every metric on one host
    # shares one entry however different their paths and queries.
    start = url.find("://")
    end = len(url)
    if start >= 0:
        for separator in "/?#":
            found = url.find(separator, start + 3)
            if found != -1 and found < end:
                end = found
    return _origin(url[:end])


@functools.lru_cache(maxsize=1024)
def _origin(prefix: str) -> str:
    try:
        parts = urllib.parse.urlsplit(prefix)
        port = parts.port
    except ValueError:
        return prefix
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return f"{parts.scheme}://{parts.hostname or ''}:{port or default}"


def _headers(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    raw = config.get("headers") or []
    if not isinstance(raw, list):
        raise ProviderConfigError(
            "web: headers must be a list of {key, value}", provider=KIND, field="headers"
        )
    out: list[tuple[str, str]] = []
    for index, entry in enumerate(raw):
        where = f"headers[{index}]"
        if not isinstance(entry, Mapping) or not entry.get("key"):
            raise ProviderConfigError(
                f"web: {where}.key is required (each header is {{key, value}})",
                provider=KIND,
                field=f"{where}.key",
            )
        value = entry.get("value")
        if value is None:
            # Argo's WebMetricHeader is {key, value}: a `valueFrom` there is dropped and
            # the header goes out empty. Secrets reach headers through an argument.
            hint = (
                "; web headers have no valueFrom: declare an argument with valueFrom "
                "and write value: '{{args.NAME}}'"
                if "valueFrom" in entry
                else ""
            )
            raise ProviderConfigError(
                f"web: {where}.value is required{hint}", provider=KIND, field=f"{where}.value"
            )
        out.append((str(entry["key"]), str(value)))
    return out


def _check_url(url: str) -> None:
    """An absolute http(s) URL with a host, as Go's http.Client would send it."""
    try:
        parts = urllib.parse.urlsplit(url)
        hostname = parts.hostname
    except ValueError as exc:
        raise ProviderConfigError(
            f"web: url {shown_url(url)!r} is not a valid URL: {exc}", provider=KIND, field="url"
        ) from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ProviderConfigError(
            f"web: url {shown_url(url)!r} must be an http:// or https:// URL",
            provider=KIND,
            field="url",
        )
    if not hostname:
        raise ProviderConfigError(
            f"web: url {shown_url(url)!r} has no host", provider=KIND, field="url"
        )


def compile_json_path(template: str) -> JSONPath:
    """The jsonPath compiled, or the ProviderConfigError every measurement would give."""
    try:
        return JSONPath(template)
    except (JSONPathError, RecursionError) as exc:
        problem = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise ProviderConfigError(
            f"web: invalid jsonPath {template!r}: {problem}", provider=KIND, field="jsonPath"
        ) from None


def _oauth_block(config: Mapping[str, Any]) -> Mapping[str, Any] | None:
    auth = config.get("authentication") or {}
    block = auth.get("oauth2") if isinstance(auth, Mapping) else None
    return block if isinstance(block, Mapping) and block.get("tokenUrl") else None


# Never mutated: a request without headers shares this one (thousands of metrics are held).
_NO_HEADERS: dict[str, str] = {}


@functools.lru_cache(maxsize=64)
def _client_timeout(seconds: float) -> aiohttp.ClientTimeout:
    import aiohttp

    # No ceil_threshold: aiohttp would round a deadline over 5 s up to the next whole
    # second; timeoutSeconds is kept exactly, as asyncio.timeout kept it before.
    return aiohttp.ClientTimeout(total=seconds, ceil_threshold=math.inf)


class WebRequest:
    """One metric's request, validated (Argo's messages for Argo's errors)."""

    # Slots: one is held per metric of every run.
    __slots__ = (
        "client_timeout",
        "data",
        "headers",
        "json_path",
        "method",
        "non_json",
        "target",
        "timeout",
        "url",
    )

    def __init__(self, config: Mapping[str, Any]) -> None:
        url = str(config.get("url") or "")
        if not url:
            raise ProviderConfigError("web: url is required", provider=KIND, field="url")
        _check_url(url)
        self.url = url
        # What aiohttp is given; WebProvider.bind parses it once for every request.
        self.target: str | URL = url
        # Interned: one shared string, not a fresh one per metric (thousands are held).
        self.method = sys.intern(str(config.get("method") or "GET").upper())
        if self.method not in METHODS:
            raise ProviderConfigError(
                f"web: method {self.method!r} is not supported; use GET, POST or PUT",
                provider=KIND,
                field="method",
            )
        body = str(config.get("body") or "")
        json_body = config.get("jsonBody")
        if body and json_body is not None:
            raise ProviderConfigError(
                "use either Body or JSONBody; both cannot exists for WebMetric payload",
                provider=KIND,
                field="jsonBody",
            )
        if (body or json_body is not None) and self.method == "GET":
            raise ProviderConfigError(
                "Body/JSONBody can only be used with POST or PUT WebMetric Method types",
                provider=KIND,
                field="body" if body else "jsonBody",
            )
        by_name: dict[str, tuple[str, str]] = {}
        for key, value in _headers(config):
            by_name[key.lower()] = (key, value)  # later duplicates win, as Go's Header.Set
        self.headers: dict[str, str] = dict(by_name.values()) if by_name else _NO_HEADERS
        self.data: bytes | None = None
        if json_body is not None:
            self.data = json.dumps(json_body, separators=(",", ":")).encode()
            self.headers = {k: v for k, v in self.headers.items() if k.lower() != "content-type"}
            self.headers["Content-Type"] = "application/json"
        elif body:
            self.data = body.encode()
        timeout = config.get("timeoutSeconds")
        try:
            seconds = float(timeout) if timeout is not None else 0.0
        except (TypeError, ValueError):
            raise ProviderConfigError(
                f"web: timeoutSeconds must be a number, got {timeout!r}",
                provider=KIND,
                field="timeoutSeconds",
            ) from None
        self.timeout = seconds if seconds > 0 else DEFAULT_TIMEOUT_S
        # aiohttp's own total timeout (one timer, covering the body read too), made by
        # the first request (a block only checked never imports aiohttp).
        self.client_timeout: aiohttp.ClientTimeout | None = None
        self.json_path = str(config.get("jsonPath") or "{$}")
        mode = str(config.get("nonJSONBody") or NON_JSON_EVALUATE).lower()
        if mode not in (NON_JSON_EVALUATE, NON_JSON_SUCCESSFUL):
            raise ProviderConfigError(
                f"web: nonJSONBody must be {NON_JSON_EVALUATE!r} or {NON_JSON_SUCCESSFUL!r}",
                provider=KIND,
                field="nonJSONBody",
            )
        self.non_json = NON_JSON_EVALUATE if mode == NON_JSON_EVALUATE else NON_JSON_SUCCESSFUL

    @property
    def shown(self) -> str:
        # Only error messages need it; computing it per request costs more than the rest.
        return shown_url(self.url)

    def key(self) -> tuple[Any, ...]:
        """Identity for coalescing: header values by fingerprint only."""
        headers = tuple(sorted((k.lower(), _fingerprint(v)) for k, v in self.headers.items()))
        data = _fingerprint(self.data.decode("utf-8", "replace")) if self.data else ""
        return (self.method, self.url, headers, data, self.json_path, self.timeout, self.non_json)


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
        oauth = _oauth_block(config)
        identity: tuple[str, ...] = ()
        if oauth is not None:
            identity = (
                str(oauth.get("tokenUrl", "")),
                str(oauth.get("clientId", "")),
                _fingerprint(str(oauth.get("clientSecret", ""))),
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
        return cls(insecure=bool(config.get("insecure")), oauth2=_oauth_block(config))

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
            import aiohttp

            from providers.http import client_session, policy_connector

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
        import aiohttp

        from providers.http import map_client_error, raise_for_response, read_capped

        target: str | URL = url or request.target
        where = url or request.url  # as written, for messages
        session = self._get_session()
        timeout = request.client_timeout
        if timeout is None:
            timeout = request.client_timeout = _client_timeout(request.timeout)
        try:
            headers = request.headers
            if self._oauth_block is not None:
                # The token fetch has its own timeout (OAuth2ClientCredentials).
                headers = {**headers, **await self._auth_headers(session)}
            async with session.request(
                request.method,
                target,
                headers=headers,
                data=request.data,
                timeout=timeout,
            ) as response:
                # Capped while reading: a huge answer never sits in memory whole.
                # The shown URL is built only for a message (a body past the cap).
                raw = await read_capped(response, PROVIDER, lambda: shown_url(where))
                status = response.status
                response_headers = response.headers
        except ProviderError:
            raise
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise map_client_error(exc, PROVIDER, shown_url(where), request.timeout) from None
        if status == 401 and self._oauth is not None:
            self._oauth.invalidate()  # the next measurement fetches a fresh token
        if 200 <= status < 300:
            return raw
        try:
            raise_for_response(PROVIDER, shown_url(where), status, response_headers, raw)
        except ProviderError as err:
            # Servers echo request headers in error pages; never pass them on.
            raise _scrubbed(err, request.headers.values()) from None
        return raw

    async def measure(self, config: Mapping[str, Any]) -> Reading:
        request = WebRequest(config)
        return await self._measure(request, self._compiled(request.json_path))

    def bind(self, config: Mapping[str, Any]) -> Callable[[], Awaitable[Reading]]:
        """measure(config) with the request validated and its jsonPath compiled once.

        A config error is raised again by every call, as measure() would raise it.
        """
        try:
            request = WebRequest(config)
            path = self._compiled(request.json_path)
            # Parsed once per metric, not per request; a URL yarl refuses stays a
            # string, so aiohttp reports it (InvalidURL) exactly as before.
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
        return [_number(item, where) for item in value]


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


def _number(item: Any, where: str) -> float:
    if item is None:
        return math.nan  # a gap; the judge's NaN strategy decides
    if isinstance(item, bool):
        raise ProviderBadBody(f"web at {where}: series value {item!r} is not a number")
    if isinstance(item, (int, float)):
        return float(item)
    if isinstance(item, str):
        try:
            return float(item)
        except ValueError:
            pass
    raise ProviderBadBody(f"web at {where}: series value {go_json(item)[:100]} is not a number")


def _scrubbed(err: ProviderError, secrets: Any) -> ProviderError:
    """The error with every header value (4+ characters) masked in message and body."""
    parts: set[str] = set()
    for value in {str(v) for v in secrets}:
        for part in {value, *value.split()}:  # "Bearer xyz": mask the token alone too
            if len(part) >= 4 and part.lower() not in ("bearer", "basic"):
                parts.add(part)

    def mask(text: str) -> str:
        for part in sorted(parts, key=len, reverse=True):
            text = text.replace(part, "*****")
        return text

    if isinstance(err, ProviderHTTPError):
        err.body = mask(err.body)
    err.message = mask(err.message)
    err.args = (err.message,)
    return err


def _no_secrets(name: str, key: str) -> str | None:
    return None
