"""InfluxDB provider: Argo Rollouts' ``influxdb`` metrics, Flux over InfluxDB 2's query API.

Requests go through the ``influxdb-client`` library's async API (``InfluxDBClientAsync``,
aiohttp underneath): ``POST <address>/api/v2/query?org=<org>`` with the Flux ``query``, the
``Authorization: Token <authToken>`` header and the annotated-CSV dialect; the answer is
parsed by the library's own annotated-CSV parser. The library's aiohttp session is made by
providers.http.client_session, so the namespace's egress policy applies to every request,
redirect and DNS answer.

Credentials, as Argo reads them: the secret ``influxdb`` (or the block's ``profile``) in
the run's namespace, keys ``authToken``, ``org`` and ``address``; all three are required
(``authToken, org, or address not found``).

What conditions see (Argo master): every record's ``_value``, table after table, as a
``[]interface {}`` (``result[0]``: a float for ``double``, an int for ``long``, a bool, a
string; times as RFC 3339 strings). No record is the Error ``no results returned from
flux query``. The measurement value is Go's ``fmt.Sprint`` of that list: ``[10 20.5]``.

Config (``provider.influxdb``): ``profile``, ``query`` (required), and the analysisd
extension ``timeout`` (seconds; Argo allows a query 30).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

import aiohttp
from influxdb_client.client.flux_csv_parser import FluxCsvParserException, FluxQueryException
from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync
from influxdb_client.rest import ApiException

from providers.base import (
    ProviderAuthError,
    ProviderBadBody,
    ProviderError,
    Reading,
    SecretLookup,
    excerpt,
    fingerprint,
)
from providers.gocompat import sprint
from providers.http import client_session, map_client_error, policy_connector
from providers.vendor_http import (
    Answer,
    check_profile_query,
    http_failure,
    http_url,
    profile_query_key,
    profile_secret,
    redact,
    required_text,
    timeout_of,
)

KIND = "influxdb"
PROVIDER = "influxdb"
DEFAULT_SECRET = "influxdb"
DEFAULT_TIMEOUT_S = 30.0  # Argo's defaultQueryTimeout
GO_RESULTS = "[]interface {}"
NO_RESULTS = "no results returned from flux query"
MISSING = "authToken, org, or address not found"


def secret_name(config: Mapping[str, Any]) -> str:
    return profile_secret(config, DEFAULT_SECRET)


def credentials(config: Mapping[str, Any], secrets: SecretLookup) -> tuple[str, str, str]:
    """(address, org, token) from the profile secret; ProviderAuthError when one is missing."""
    name = secret_name(config)
    token = secrets(name, "authToken") or ""
    org = secrets(name, "org") or ""
    address = secrets(name, "address") or ""
    if not (token and org and address):
        raise ProviderAuthError(
            f"influxdb: {MISSING} (secret {name!r}, keys 'authToken', 'org' and 'address')",
            provider=PROVIDER,
        )
    return http_url(address, PROVIDER), org, token


def plain(value: Any) -> Any:
    """A record value as conditions see it (a time as its RFC 3339 text)."""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value


def value_string(values: list[Any]) -> str:
    """Argo's fmt.Sprint of the []any: ``[10 20.5 up]``."""
    return sprint(values)


def _policy_session(**kwargs: Any) -> aiohttp.ClientSession:
    """The library's session factory: ours instead (egress on every hop, DNS filtered)."""
    kwargs.pop("connector", None)  # the library's plain connector is replaced, unused
    kwargs.pop("trace_configs", None)
    return client_session(connector=policy_connector(limit=256), **kwargs)


class InfluxdbProvider:
    """One InfluxDBClientAsync per (address, org, token); serves every Flux metric using them."""

    kind: ClassVar[str] = KIND

    def __init__(self, address: str, org: str, token: str) -> None:
        self.address = address
        self.org = org
        self._token = token
        self._client: InfluxDBClientAsync | None = None
        self._timeout_ms = int(DEFAULT_TIMEOUT_S * 1000)

    # -- ProviderClass

    @classmethod
    def pool_key(cls, config: Mapping[str, Any], secrets: SecretLookup) -> tuple[Any, ...]:
        address, org, token = credentials(config, secrets)
        return (KIND, address, org, fingerprint(token))

    @classmethod
    def create(cls, config: Mapping[str, Any], secrets: SecretLookup) -> InfluxdbProvider:
        return cls(*credentials(config, secrets))

    @classmethod
    def check(cls, config: Mapping[str, Any]) -> None:
        check_profile_query(config, KIND, DEFAULT_TIMEOUT_S)

    @classmethod
    def request_key(cls, config: Mapping[str, Any]) -> tuple[Any, ...]:
        return profile_query_key(config, KIND, DEFAULT_TIMEOUT_S, DEFAULT_SECRET)

    # -- Provider

    def _client_for(self) -> InfluxDBClientAsync:
        if self._client is None:
            self._client = InfluxDBClientAsync(
                url=self.address,
                token=self._token,
                org=self.org,
                timeout=self._timeout_ms,
                client_session_type=_policy_session,
            )
        return self._client

    async def measure(self, config: Mapping[str, Any]) -> Reading:
        query = required_text(config, "query", KIND)
        records = await self._query(query, timeout_of(config, DEFAULT_TIMEOUT_S, KIND))
        if not records:
            raise ProviderBadBody(
                f"influxdb at {self._where()}: {NO_RESULTS} (org {self.org!r})",
                provider=PROVIDER,
                address=self.address,
            )
        return Reading(result=records, value=value_string(records), go_type=GO_RESULTS)

    async def series(
        self, config: Mapping[str, Any], query: str, start: datetime, end: datetime, step: float
    ) -> list[float]:
        """Range data: the Flux `query` as given (its own range and window), values as floats."""
        records = await self._query(query, timeout_of(config, DEFAULT_TIMEOUT_S, KIND))
        values: list[float] = []
        for value in records:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ProviderBadBody(
                    f"influxdb at {self._where()}: range data must be numbers, got {value!r}",
                    provider=PROVIDER,
                    address=self.address,
                )
            values.append(float(value))
        return values

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()  # type: ignore[no-untyped-call]

    # -- I/O

    def _where(self) -> str:
        return f"{self.address}/api/v2/query"

    async def _query(self, query: str, timeout_s: float) -> list[Any]:
        where = self._where()
        client = self._client_for()
        try:
            async with asyncio.timeout(timeout_s):
                tables = await client.query_api().query(query, org=self.org)
        except ProviderError:
            raise
        except ApiException as exc:
            raise self._http_error(exc) from None
        except FluxQueryException as exc:
            raise ProviderBadBody(
                redact(f"influxdb at {where}: {exc.message}", (self._token,)),
                provider=PROVIDER,
                address=self.address,
            ) from None
        except (FluxCsvParserException, ValueError, KeyError, IndexError) as exc:
            raise ProviderBadBody(
                redact(
                    f"influxdb at {where}: HTTP 200 but the answer is not annotated CSV "
                    f"({type(exc).__name__}: {excerpt(str(exc), 200)})",
                    (self._token,),
                ),
                provider=PROVIDER,
                address=self.address,
            ) from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise map_client_error(exc, PROVIDER, where, timeout_s) from None
        return [
            plain(record.get_value())  # type: ignore[no-untyped-call]
            for table in tables
            for record in table.records
        ]

    def _http_error(self, exc: ApiException) -> ProviderError:
        status = int(exc.status or 0)
        raw = exc.body if isinstance(exc.body, (bytes, str)) else b""
        body = raw.encode() if isinstance(raw, str) else raw
        headers = {str(k): str(v) for k, v in (exc.headers or {}).items()}
        answer = Answer(status, headers, body)
        return http_failure(
            PROVIDER, self._where(), answer, argo_error(status, body), secrets=(self._token,)
        )


def argo_error(status: int, body: bytes) -> str:
    """influxdb-client-go's error text: ``<code>: <message>`` from the JSON error body."""
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if isinstance(payload, Mapping) and payload.get("code") and payload.get("message"):
        return f"{payload['code']}: {payload['message']}"
    text = body.decode("utf-8", "replace").strip()
    return excerpt(text) if text else f"Unexpected status code {status}"
