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

import time
import urllib.parse
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from providers.base import (
    ProviderConfigError,
    ProviderError,
    ProviderHTTPError,
    Reading,
    SecretLookup,
    excerpt,
    fingerprint,
)
from providers.gocompat import GO_FLOAT64, GO_FLOAT64_SLICE
from providers.prometheus_query import (
    FORM,
    KIND,
    PROVIDER,
    SERVER_TIMEOUT_FRACTION,
    address_of,
    auth_identity,
    basic_authorization,
    headers_of,
    proxy_for,
    step_seconds,
    warnings_metadata,
)
from providers.prometheus_query import (
    RESOLVED_QUERY as RESOLVED_QUERY,
)
from providers.prometheus_query import (
    QuerySettings as QuerySettings,
)
from providers.prometheus_query import (
    decode_result as decode_result,
)
from providers.prometheus_query import (
    decode_series as decode_series,
)
from providers.prometheus_query import (
    go_duration_seconds as go_duration_seconds,
)
from providers.prometheus_query import (
    go_float as go_float,
)
from providers.prometheus_query import (
    parse_answer as parse_answer,
)
from providers.prometheus_query import (
    redact_address as redact_address,
)
from providers.prometheus_query import (
    resolve_time as resolve_time,
)
from providers.prometheus_query import (
    sigv4_enabled as sigv4_enabled,
)
from providers.prometheus_query import (
    value_string as value_string,
)

if TYPE_CHECKING:
    import aiohttp

    from providers.sigv4 import SigV4Signer

# The HTTP stack (asyncio, aiohttp, yarl, providers.http) and the SigV4 signer (botocore)
# are imported where a request is made or a signer built: checking a block (`analysisd
# lint`, the API's door, through providers.kinds) loads none of them (issue 21).

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
        self._signer: SigV4Signer | None = None
        if sigv4:
            from providers.sigv4 import SigV4Settings, SigV4Signer

            self._signer = SigV4Signer(SigV4Settings.parse(auth.get("sigv4") or {}))
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
            tuple((key, fingerprint(value)) for key, value in headers_of(config)),
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
            step = step_seconds(settings.range_step)
        except ValueError as exc:
            raise ProviderConfigError(f"prometheus: rangeQuery: {exc}") from None
        if step <= 0 or end < start:
            raise ProviderConfigError("prometheus: rangeQuery needs start <= end and step > 0")
        return {"start": repr(start), "end": repr(end), "step": repr(step)}

    def _session_for(self) -> aiohttp.ClientSession:
        if self._session is None:
            from providers.http import client_session, policy_connector

            connector = policy_connector(ssl=not self._insecure, limit=256)
            # Proxies are resolved once in __init__, not per request (trust_env's cost).
            # Egress policy on every hop and DNS answer, bodies capped (providers.http).
            self._session = client_session(connector=connector)
        return self._session

    async def _call(
        self, path: str, params: dict[str, str], settings: QuerySettings, query: str
    ) -> tuple[Any, list[str]]:
        import asyncio

        import aiohttp

        from providers.http import map_client_error, raise_for_response

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
        from yarl import URL

        from providers.http import read_capped

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
