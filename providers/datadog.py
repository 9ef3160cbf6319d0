"""Datadog provider: Argo-compatible measurements over the real datadog-api-client.

Requests go through ``datadog_api_client.AsyncApiClient`` (aiosonic underneath)
with its own retries off — the scheduler's limits and backoff decide — and
its model decoding bypassed, so we read the raw body ourselves: the client's model
layer accepts wrongly typed nested points silently, and we want every
malformed answer to be a ProviderBadBody naming what came back.

What conditions see (Argo Rollouts master):

- ``apiVersion: v1`` (default) — ``GET /api/v1/query``: the last non-null point
  of the first series (a float); no series or no points -> ``None`` (nil).
- ``apiVersion: v2`` — ``POST /api/v2/query/scalar`` with the ``queries`` map
  (or ``query`` as the single query named ``query``) and ``formula``: an
  ungrouped answer is a float (``None`` when null/empty); a grouped answer
  (``by {tag}``) is the list of non-null values, one per group, even a single one.

The measurement ``value``: Go's FormatFloat for a float, ``[a,b]`` for a list and
``[]`` for nil (Argo marshals the empty series).

``series()`` uses ``POST /api/v2/query/timeseries`` for range data (any apiVersion).

Keys come from the secret ``datadog`` (or ``secretRef.name``) keys ``api-key``,
``app-key`` and optional ``address``; as in Argo, ``DD_API_KEY``, ``DD_APP_KEY``
and ``DD_ADDRESS`` win when all three are set in the environment. Keys never
appear in messages: any echo of them is replaced by ``*****``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

import aiosonic.exceptions  # type: ignore[import-untyped]
from datadog_api_client import AsyncApiClient, Configuration
from datadog_api_client.exceptions import ApiException
from datadog_api_client.v1.api.metrics_api import MetricsApi as MetricsApiV1
from datadog_api_client.v2.api.metrics_api import MetricsApi as MetricsApiV2
from datadog_api_client.v2.models import (
    MetricsAggregator,
    MetricsDataSource,
    MetricsScalarQuery,
    MetricsTimeseriesQuery,
    QueryFormula,
    ScalarFormulaQueryRequest,
    ScalarFormulaRequest,
    ScalarFormulaRequestAttributes,
    ScalarFormulaRequestQueries,
    ScalarFormulaRequestType,
    TimeseriesFormulaQueryRequest,
    TimeseriesFormulaRequest,
    TimeseriesFormulaRequestAttributes,
    TimeseriesFormulaRequestQueries,
    TimeseriesFormulaRequestType,
)

from providers.base import (
    ProviderAuthError,
    ProviderBadBody,
    ProviderConnectionError,
    ProviderError,
    ProviderHTTPError,
    ProviderRateLimited,
    ProviderTimeout,
    Reading,
    SecretLookup,
    excerpt,
)
from providers.datadog_query import (
    KIND,
    PROVIDER,
    REDACTED,
    aggregator_of,
    api_version_of,
    credentials,
    decode_scalar,
    decode_timeseries,
    decode_v1,
    describe,
    fingerprint,
    interval_of,
    queries_of,
    timeout_of,
    v1_query_of,
)
from providers.datadog_query import (
    duration_seconds as duration_seconds,
)
from providers.datadog_query import (
    go_float as go_float,
)
from providers.datadog_query import (
    value_string as value_string,
)
from providers.gocompat import (
    GO_FLOAT64,
    GO_FLOAT64_SLICE,
    GO_NIL,
)
from providers.http import check_url, parse_retry_after

# ---------------------------------------------------------------- the provider


class _RawBodyApiClient(AsyncApiClient):
    """The client with its request building, auth and status errors, minus model decoding.

    Error statuses still raise ApiException with the body read (the client only
    reads it when content is preloaded); a 2xx hands back the raw bytes so that
    we validate every point ourselves.
    """

    async def _call_api(
        self,
        method: str,
        url: str,
        query_params: Any = None,
        header_params: Any = None,
        body: Any = None,
        post_params: Any = None,
        *_: Any,
        **__: Any,
    ) -> bytes:
        check_url(url)  # the namespace's egress policy (aiosonic has no resolver hook)
        response = await self.rest_client.request(
            method,
            url,
            query_params=query_params,
            headers=header_params,
            post_params=post_params,
            body=body,
            preload_content=True,
        )
        return bytes(await response.content())


class DatadogProvider:
    """One AsyncApiClient per (address, keys); serves every Datadog metric using them."""

    kind: ClassVar[str] = KIND

    def __init__(self, address: str, api_key: str, app_key: str) -> None:
        self.address = address
        self._secrets = (api_key, app_key)
        configuration = Configuration(  # type: ignore[no-untyped-call]
            host=address,
            api_key={"apiKeyAuth": api_key, "appKeyAuth": app_key},
            enable_retry=False,
        )
        self._client: _RawBodyApiClient | None = None
        self._apis: tuple[MetricsApiV1, MetricsApiV2] | None = None
        self._configuration = configuration

    # -- ProviderClass

    @classmethod
    def pool_key(cls, config: Mapping[str, Any], secrets: SecretLookup) -> tuple[Any, ...]:
        address, api_key, app_key = credentials(config, secrets)
        return (KIND, address, fingerprint(api_key, app_key))

    @classmethod
    def create(cls, config: Mapping[str, Any], secrets: SecretLookup) -> DatadogProvider:
        return cls(*credentials(config, secrets))

    @classmethod
    def check(cls, config: Mapping[str, Any]) -> None:
        """What every measurement parses (credentials are secrets: looked up when bound)."""
        version = api_version_of(config)
        interval_of(config)
        timeout_of(config)
        if version == "v1":
            v1_query_of(config)
        else:
            queries_of(config)
            aggregator_of(config)

    @classmethod
    def request_key(cls, config: Mapping[str, Any]) -> tuple[Any, ...]:
        queries = config.get("queries")
        return (
            KIND,
            str(config.get("apiVersion") or "v1"),
            str(config.get("query") or ""),
            tuple(sorted((str(k), str(v)) for k, v in queries.items()))
            if isinstance(queries, Mapping)
            else (),
            str(config.get("formula") or ""),
            str(config.get("aggregator") or ""),
            str(config.get("interval") or ""),
        )

    # -- Provider

    def _api_client(self) -> _RawBodyApiClient:
        if self._client is None:
            self._client = _RawBodyApiClient(self._configuration)
        return self._client

    def _metrics_apis(self) -> tuple[MetricsApiV1, MetricsApiV2]:
        # Building an Api object costs ~0.5 ms (endpoint tables): once per client.
        if self._apis is None:
            client = self._api_client()
            self._apis = (
                MetricsApiV1(client),  # type: ignore[no-untyped-call]
                MetricsApiV2(client),  # type: ignore[no-untyped-call]
            )
        return self._apis

    async def aclose(self) -> None:
        client, self._client, self._apis = self._client, None, None
        if client is not None:
            await client.__aexit__(None, None, None)  # type: ignore[no-untyped-call]

    async def measure(self, config: Mapping[str, Any]) -> Reading:
        version = api_version_of(config)
        interval = interval_of(config)
        timeout = timeout_of(config)
        now = int(time.time())
        start = now - int(interval)
        result: float | list[float] | None
        if version == "v1":
            query = v1_query_of(config)
            api_v1 = self._metrics_apis()[0]
            body = await self._call(
                "/api/v1/query", query, timeout, api_v1.query_metrics(start, now, query)
            )
            result = self._decode(decode_v1, body, "/api/v1/query", query)
        else:
            queries, formula = queries_of(config)
            aggregator = aggregator_of(config)
            shown = describe(queries, formula)
            request = scalar_request(queries, formula, aggregator, start, now)
            api_v2 = self._metrics_apis()[1]
            body = await self._call(
                "/api/v2/query/scalar", shown, timeout, api_v2.query_scalar_data(request)
            )
            result = self._decode(decode_scalar, body, "/api/v2/query/scalar", shown)
        # Argo hands over *float64 (valueFromPointer: nil, or the float) or []float64
        go_type = (
            GO_NIL
            if result is None
            else GO_FLOAT64
            if isinstance(result, float)
            else GO_FLOAT64_SLICE
        )
        return Reading(result=result, value=value_string(result), go_type=go_type)

    async def series(
        self, config: Mapping[str, Any], query: str, start: datetime, end: datetime, step: float
    ) -> list[float]:
        """Range data from /api/v2/query/timeseries; nulls become NaN, time order kept."""
        if query:
            queries, formula = {"query": query}, "query"
        else:
            queries, formula = queries_of(config)
        timeout = timeout_of(config)
        request = timeseries_request(
            queries, formula, int(start.timestamp()), int(end.timestamp()), step
        )
        api_v2 = self._metrics_apis()[1]
        shown = describe(queries, formula)
        body = await self._call(
            "/api/v2/query/timeseries", shown, timeout, api_v2.query_timeseries_data(request)
        )
        values: list[float] = self._decode(
            decode_timeseries, body, "/api/v2/query/timeseries", shown
        )
        return values

    # -- I/O shell

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret:
                text = text.replace(secret, REDACTED)
        return text

    def _where(self, route: str, query: str) -> str:
        return f"datadog {self.address}{route} (query {query!r})"

    async def _call(self, route: str, query: str, limit_s: float, call: Any) -> bytes:
        """Await one client call and return the raw body; map every failure."""
        where = self._where(route, query)
        try:
            async with asyncio.timeout(limit_s):
                return bytes(await call)
        except TimeoutError:
            raise ProviderTimeout(
                f"{where}: no answer within {limit_s:g}s", provider=PROVIDER, address=self.address
            ) from None
        except ApiException as exc:
            raise self._http_error(where, exc) from None
        except aiosonic.exceptions.TimeoutException:
            raise ProviderTimeout(
                f"{where}: no answer within {limit_s:g}s", provider=PROVIDER, address=self.address
            ) from None
        except (OSError, aiosonic.exceptions.AiosonicError) as exc:
            raise ProviderConnectionError(
                self._redact(f"{where}: cannot connect: {type(exc).__name__}: {exc}"),
                provider=PROVIDER,
                address=self.address,
            ) from None

    def _http_error(self, where: str, exc: ApiException) -> ProviderError:
        status = int(exc.status or 0)
        raw = exc.body if isinstance(exc.body, str) else json.dumps(exc.body)
        body = self._redact(excerpt(raw or ""))
        errors = _top_level_errors(exc.body)
        detail = f"; errors: {self._redact(errors)}" if errors else ""
        message = f"{where}: HTTP {status}{detail}: {body}"
        if status in (401, 403):
            return ProviderAuthError(
                f"{where}: HTTP {status}: Datadog rejected the API/App keys{detail}: {body}",
                provider=PROVIDER,
                address=self.address,
            )
        retry_after = _retry_after(exc.headers or {})
        if status == 429 or (status == 503 and retry_after is not None):
            return ProviderRateLimited(
                f"{message} (rate limited; retry after {retry_after}s)",
                status=status,
                body=body,
                retry_after=retry_after,
                provider=PROVIDER,
                address=self.address,
            )
        return ProviderHTTPError(
            message, status=status, body=body, provider=PROVIDER, address=self.address
        )

    def _decode(self, decoder: Any, body: bytes, route: str, query: str) -> Any:
        where = self._where(route, query)
        shown = self._redact(excerpt(body))
        try:
            payload = json.loads(body)
        except ValueError:
            raise ProviderBadBody(
                f"{where}: HTTP 200 but the body is not JSON: {shown!r}",
                provider=PROVIDER,
                address=self.address,
            ) from None
        errors = _top_level_errors(payload)
        if errors:
            raise ProviderBadBody(
                f"{where}: HTTP 200 with errors: {self._redact(errors)}",
                provider=PROVIDER,
                address=self.address,
            )
        try:
            return decoder(payload)
        except ValueError as exc:
            raise ProviderBadBody(
                f"{where}: HTTP 200 but {exc}: {shown}", provider=PROVIDER, address=self.address
            ) from None


def _top_level_errors(payload: Any) -> str:
    """Datadog's ``errors`` (v2, string or list), ``data.errors`` or v1's ``error``."""
    if not isinstance(payload, Mapping):
        return ""
    found: list[str] = []
    for raw in (
        payload.get("errors"),
        payload.get("error"),
        payload.get("data", {}).get("errors") if isinstance(payload.get("data"), Mapping) else None,
    ):
        if isinstance(raw, str) and raw:
            found.append(raw)
        elif isinstance(raw, Sequence) and not isinstance(raw, str):
            found.extend(str(item) for item in raw if item)
    return "; ".join(found)


def _retry_after(headers: Mapping[str, Any]) -> float | None:
    """Datadog's X-RateLimit-Reset (seconds until the window resets), else Retry-After."""
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    for name in ("x-ratelimit-reset", "retry-after"):
        if name in lowered:
            return parse_retry_after(lowered[name])
    return None


def scalar_request(
    queries: Mapping[str, str], formula: str, aggregator: str, start: int, end: int
) -> ScalarFormulaQueryRequest:
    """The /api/v2/query/scalar body Argo master sends (times in ms)."""
    return ScalarFormulaQueryRequest(
        data=ScalarFormulaRequest(
            type=ScalarFormulaRequestType.SCALAR_REQUEST,
            attributes=ScalarFormulaRequestAttributes(
                _from=start * 1000,
                to=end * 1000,
                formulas=[QueryFormula(formula=formula)],
                queries=ScalarFormulaRequestQueries(  # type: ignore[no-untyped-call]
                    [
                        MetricsScalarQuery(
                            aggregator=MetricsAggregator(aggregator),  # type: ignore[no-untyped-call]
                            data_source=MetricsDataSource.METRICS,
                            query=query,
                            name=name,
                        )
                        for name, query in queries.items()
                    ]
                ),
            ),
        )
    )


def timeseries_request(
    queries: Mapping[str, str], formula: str, start: int, end: int, step: float
) -> TimeseriesFormulaQueryRequest:
    """The /api/v2/query/timeseries body for range data (interval in ms)."""
    return TimeseriesFormulaQueryRequest(
        data=TimeseriesFormulaRequest(
            type=TimeseriesFormulaRequestType.TIMESERIES_REQUEST,
            attributes=TimeseriesFormulaRequestAttributes(
                _from=start * 1000,
                to=end * 1000,
                interval=int(step * 1000),
                formulas=[QueryFormula(formula=formula)],
                queries=TimeseriesFormulaRequestQueries(  # type: ignore[no-untyped-call]
                    [
                        MetricsTimeseriesQuery(
                            data_source=MetricsDataSource.METRICS, query=query, name=name
                        )
                        for name, query in queries.items()
                    ]
                ),
            ),
        )
    )
