"""Prometheus provider: instant and range queries over the HTTP API, Argo-compatible.

What conditions see (as Argo Rollouts hands it to expr):

- vector -> list of floats, one per series (empty vector -> ``[]``);
- scalar -> float (``NaN`` and ``±Inf`` pass through);
- matrix (a range query, or an instant ``x[5m]``) -> every series' values,
  flattened into one list, as Argo master does;
- string or anything else -> a ProviderBadBody error (Argo: "metric type not
  supported").

The measurement ``value`` is spelled as Go's ``strconv.FormatFloat(v, 'f', -1,
64)``: ``0.99``, ``NaN``, ``+Inf``, ``[0.99,0.9]``. Metadata records the resolved
query under ``ResolvedPrometheusQuery`` (Argo's key) and any server warnings.

Config (the metric's ``provider.prometheus`` block): ``address``, ``query``,
``timeout`` (seconds; unset -> 30, 0 -> immediate timeout, negative -> error),
``insecure``, ``headers`` ([{key, value}]), ``rangeQuery`` ({start, end, step}),
``queryTimeout`` (analysisd only: Prometheus's own evaluation timeout, a Go
duration; default 90% of ``timeout``),
``authentication``: ``sigv4`` {region, profile, roleArn, enabled}, ``oauth2``
{tokenUrl, clientId, clientSecret, scopes}, ``basicAuth`` {username, password}.
SigV4 is on when ``sigv4.enabled`` says so, else (Argo's rule) when the address
contains ``aps-workspaces``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import os
import re
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

import aiohttp
from yarl import URL

from providers.base import (
    ProviderBadBody,
    ProviderConfigError,
    ProviderError,
    ProviderHTTPError,
    Reading,
    SecretLookup,
    excerpt,
)
from providers.gocompat import GO_FLOAT64, GO_FLOAT64_SLICE, format_f, parse_duration_seconds
from providers.http import (
    client_session,
    map_client_error,
    policy_connector,
    raise_for_response,
    read_capped,
)
from providers.sigv4 import SigV4Settings, SigV4Signer

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


def _step_seconds(text: str) -> float:
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


def _fingerprint(*parts: str) -> str:
    # Pool keys must tell credentials apart without holding them in clear.
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def auth_identity(config: Mapping[str, Any]) -> tuple[str, ...]:
    """Which credentials a config uses (for pool keys); secrets hashed, never kept."""
    auth = config.get("authentication") or {}
    identity: list[str] = []
    basic = auth.get("basicAuth") or auth.get("basic")
    if basic:
        user, password = str(basic.get("username", "")), str(basic.get("password", ""))
        identity += ["basic", _fingerprint(user, password)]
    oauth = auth.get("oauth2")
    if oauth:
        secret = str(oauth.get("clientSecret", ""))
        scopes = ",".join(str(s) for s in oauth.get("scopes") or [])
        identity += [
            "oauth2",
            str(oauth.get("tokenUrl", "")),
            str(oauth.get("clientId", "")),
            scopes,
            _fingerprint(secret),
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


# ---------------------------------------------------------------- the provider


class PrometheusProvider:
    """One pooled HTTP client for one (address, TLS, headers, credentials)."""

    kind: ClassVar[str] = KIND
    # pool_key, request_key and limit_address read the config (and environment) only.
    STATIC_KEYS: ClassVar[bool] = True

    def __init__(
        self,
        address: str,
        *,
        insecure: bool = False,
        headers: Sequence[tuple[str, str]] = (),
        authentication: Mapping[str, Any] | None = None,
        sigv4: bool = False,
    ) -> None:
        self.address = address
        self.shown_address = redact_address(address)
        self._insecure = insecure
        self._headers = tuple(headers)
        auth = authentication or {}
        basic = auth.get("basicAuth") or auth.get("basic")
        self._basic = (
            basic_authorization(str(basic.get("username", "")), str(basic.get("password", "")))
            if basic
            else None
        )
        self._oauth_block: Mapping[str, Any] | None = auth.get("oauth2") or None
        self._oauth: Any = None  # providers.oauth2.OAuth2ClientCredentials, built lazily
        self._signer: SigV4Signer | None = (
            SigV4Signer(SigV4Settings.parse(auth.get("sigv4") or {})) if sigv4 else None
        )
        self._session: aiohttp.ClientSession | None = None
        self._proxy = proxy_for(address)

    # ProviderClass --------------------------------------------------------

    @classmethod
    def pool_key(cls, config: Mapping[str, Any], secrets: SecretLookup) -> tuple[Any, ...]:
        return (
            KIND,
            address_of(config),
            bool(config.get("insecure", False)),
            # Header values may be tokens: tell them apart without keeping them.
            tuple((key, _fingerprint(value)) for key, value in headers_of(config)),
            auth_identity(config),
        )

    @classmethod
    def create(cls, config: Mapping[str, Any], secrets: SecretLookup) -> PrometheusProvider:
        return cls(
            address_of(config),
            insecure=bool(config.get("insecure", False)),
            headers=headers_of(config),
            authentication=config.get("authentication") or {},
            sigv4=sigv4_enabled(config),
        )

    @classmethod
    def check(cls, config: Mapping[str, Any]) -> None:
        """What create() and every measurement parse: query settings, address, headers."""
        QuerySettings.parse(config)
        address_of(config)
        headers_of(config)

    @classmethod
    def request_key(cls, config: Mapping[str, Any]) -> tuple[Any, ...]:
        settings = QuerySettings.parse(config)
        return (
            *cls.pool_key(config, _no_secrets),
            settings.query,
            settings.timeout_s,
            settings.range_start,
            settings.range_end,
            settings.range_step,
        )

    # Provider -------------------------------------------------------------

    async def measure(self, config: Mapping[str, Any]) -> Reading:
        settings = QuerySettings.parse(config)
        params = {"query": settings.query}
        path = "/api/v1/query"
        if settings.is_range:
            path = "/api/v1/query_range"
            params.update(self._range_params(settings))
        data, warnings = await self._call(path, params, settings, settings.query)
        try:
            result = decode_result(data)
        except ProviderError as err:
            raise self._explain(err, settings.query) from None
        metadata = {RESOLVED_QUERY: settings.query}
        if warnings:
            metadata["warnings"] = warnings_metadata(warnings)
        # Argo hands a vector or matrix over as []float64 (empty, not nil), a scalar as float64
        go_type = GO_FLOAT64 if isinstance(result, float) else GO_FLOAT64_SLICE
        return Reading(
            result=result, value=value_string(result), metadata=metadata, go_type=go_type
        )

    async def series(
        self, config: Mapping[str, Any], query: str, start: datetime, end: datetime, step: float
    ) -> list[float]:
        settings = QuerySettings.parse({**config, "query": query})
        if step <= 0:
            raise ProviderConfigError(f"prometheus: series step must be positive, got {step}")
        first, last = start.timestamp(), end.timestamp()
        params = {"query": query, "start": repr(first), "end": repr(last), "step": repr(step)}
        data, _ = await self._call("/api/v1/query_range", params, settings, query)
        try:
            return decode_series(data, first, last, step)
        except ProviderError as err:
            raise self._explain(err, query) from None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # I/O ------------------------------------------------------------------

    def _range_params(self, settings: QuerySettings) -> dict[str, str]:
        now = time.time()
        try:
            if not settings.range_start or not settings.range_step:
                raise ValueError("rangeQuery needs start and step")
            start = resolve_time(settings.range_start, now)
            end = resolve_time(settings.range_end or "now()", now)
            step = _step_seconds(settings.range_step)
        except ValueError as exc:
            raise ProviderConfigError(f"prometheus: rangeQuery: {exc}") from None
        if step <= 0 or end < start:
            raise ProviderConfigError("prometheus: rangeQuery needs start <= end and step > 0")
        return {"start": repr(start), "end": repr(end), "step": repr(step)}

    def _session_for(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = policy_connector(ssl=not self._insecure, limit=256)
            # Proxies are resolved once in __init__, not per request (trust_env's cost).
            # Egress policy on every hop and DNS answer, bodies capped (providers.http).
            self._session = client_session(connector=connector)
        return self._session

    async def _call(
        self, path: str, params: dict[str, str], settings: QuerySettings, query: str
    ) -> tuple[Any, list[str]]:
        url = f"{self.address}{path}"
        timeout_s = settings.timeout_s
        server_timeout = settings.server_timeout_s
        if server_timeout is None and timeout_s > 0:
            server_timeout = max(timeout_s * SERVER_TIMEOUT_FRACTION, 0.001)
        if server_timeout is not None:
            params = {**params, "timeout": repr(server_timeout)}
        body = urllib.parse.urlencode(params).encode()
        try:
            async with asyncio.timeout(timeout_s):
                status, headers, raw = await self._send("POST", url, body)
                if status in (405, 501):
                    # Servers that refuse POST on the query API (as Go's client does).
                    status, headers, raw = await self._send("GET", f"{url}?{body.decode()}", b"")
        except ProviderError as err:  # credentials (sigv4, oauth2) could not be had
            raise self._explain(err, query) from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            mapped = map_client_error(exc, PROVIDER, self.shown_address + path, timeout_s)
            raise self._explain(mapped, query, prefixed=True) from exc
        if not 200 <= status < 300:
            if status == 401 and self._oauth is not None:
                self._oauth.invalidate()  # the next measurement fetches a fresh token
            try:
                raise_for_response(PROVIDER, self.shown_address + path, status, headers, raw)
            except ProviderError as err:
                raise self._explain(err, query, prefixed=True) from None
            raise ProviderHTTPError(  # raise_for_response returned for a non-2xx: be safe
                f"prometheus at {self.shown_address}{path} answered {status}: {excerpt(raw)}",
                status=status,
                body=excerpt(raw),
                provider=PROVIDER,
                address=self.shown_address,
            )
        try:
            return parse_answer(status, raw)
        except ProviderError as err:
            raise self._explain(err, query) from None

    async def _send(
        self, method: str, url: str, body: bytes
    ) -> tuple[int, Mapping[str, str], bytes]:
        session = self._session_for()
        headers = {"Accept": "application/json", "User-Agent": "analysisd"}
        if body:
            headers["Content-Type"] = FORM
        headers.update(self._headers)
        headers.update(await self._auth_headers(session, method, url, headers, body))
        # encoded=True: send the URL exactly as built (and as SigV4 signed it).
        async with session.request(
            method, URL(url, encoded=True), data=body or None, headers=headers, proxy=self._proxy
        ) as response:
            raw = await read_capped(response, KIND, self.shown_address)
            return response.status, dict(response.headers), raw

    async def _auth_headers(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
    ) -> dict[str, str]:
        if self._signer is not None:
            return await self._signer.sign(method, url, headers, body)
        if self._oauth_block is not None:
            if self._oauth is None:
                from providers.oauth2 import OAuth2ClientCredentials

                block = self._oauth_block
                self._oauth = OAuth2ClientCredentials(
                    session,
                    str(block.get("tokenUrl", "")),
                    str(block.get("clientId", "")),
                    str(block.get("clientSecret", "")),
                    [str(scope) for scope in block.get("scopes") or []],
                )
            token = await self._oauth.token()
            return {"Authorization": f"Bearer {token}"}
        if self._basic is not None:
            return {"Authorization": self._basic}
        return {}

    def _explain(self, err: ProviderError, query: str, *, prefixed: bool = False) -> ProviderError:
        """Attach provider, address and query to an error (in place, keeping its type)."""
        shown_query = excerpt(" ".join(query.split()), 300)
        if prefixed:
            message = f"{err.message} (query: {shown_query})"
        else:
            message = f"prometheus at {self.shown_address}: {err.message} (query: {shown_query})"
        err.message = message
        err.args = (message,)
        err.provider = err.provider or PROVIDER
        err.address = err.address or self.shown_address
        return err


def _no_secrets(name: str, key: str) -> str | None:
    return None
