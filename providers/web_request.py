"""The web provider's request: a metric's block checked and built into one HTTP call.

What is sent (method, headers, body or jsonBody, timeout), where (the URL as shown in
messages, the origin that keys pools and limits) and what is never shown (header
values masked out of error messages).
"""

from __future__ import annotations

import functools
import json
import math
import sys
import urllib.parse
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from providers.base import ProviderConfigError, ProviderError, ProviderHTTPError, fingerprint

if TYPE_CHECKING:
    # Imported where a request is made: checking a block (`analysisd lint`, the API's
    # door) never loads aiohttp (tests/unit/test_cli_lazy.py). yarl's URL is only named
    # here (WebRequest.target): providers.web makes it, where the request is sent.
    import aiohttp
    from yarl import URL

KIND = "web"
PROVIDER = "web"
DEFAULT_TIMEOUT_S = 10.0
METHODS = ("GET", "POST", "PUT")
NON_JSON_EVALUATE = "evaluate"  # Argo master (default)
NON_JSON_SUCCESSFUL = "successful"  # Argo v1.9 and earlier
# Query parameters whose values are hidden in error messages.
_SECRET_PARAM_HINTS = ("key", "token", "secret", "password", "passwd", "auth", "sig", "credential")


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


def oauth_block(config: Mapping[str, Any]) -> Mapping[str, Any] | None:
    auth = config.get("authentication") or {}
    block = auth.get("oauth2") if isinstance(auth, Mapping) else None
    return block if isinstance(block, Mapping) and block.get("tokenUrl") else None


# Never mutated: a request without headers shares this one (thousands of metrics are held).
_NO_HEADERS: dict[str, str] = {}


@functools.lru_cache(maxsize=64)
def client_timeout(seconds: float) -> aiohttp.ClientTimeout:
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
        headers = tuple(sorted((k.lower(), fingerprint(v)) for k, v in self.headers.items()))
        data = fingerprint(self.data.decode("utf-8", "replace")) if self.data else ""
        return (self.method, self.url, headers, data, self.json_path, self.timeout, self.non_json)


def scrubbed(err: ProviderError, secrets: Any) -> ProviderError:
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
