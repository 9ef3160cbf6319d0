"""Plain HTTP for the vendor providers (graphite, newRelic, wavefront, skywalking).

Each of those Argo providers is one request and one JSON answer; this module holds what
they share so that each provider module is only its API's rules:

- `VendorHttp`: one pooled aiohttp session per provider instance, built by
  providers.http.client_session (the namespace's egress policy on every hop and DNS
  answer, bodies read up to the cap), with the request's whole exchange under a timeout.
- `http_failure`: the ProviderError for a non-2xx answer, worded "<kind> at <url>:
  <Argo's message> (HTTP <status>)": 429 (and 503 with Retry-After) is
  ProviderRateLimited with the server's Retry-After, 401/403 ProviderAuthError, any
  other ProviderHTTPError with the status and a body excerpt.
- small parsers the blocks share: timeouts, addresses, Go's ``%f``.

Secrets never reach a message: callers pass the values to `redact`.
"""

from __future__ import annotations

import asyncio
import json
import math
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from providers.base import (
    ProviderAuthError,
    ProviderConfigError,
    ProviderError,
    ProviderHTTPError,
    ProviderRateLimited,
    excerpt,
)
from providers.http import (
    client_session,
    map_client_error,
    parse_retry_after,
    policy_connector,
    read_capped,
)

REDACTED = "*****"


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret value replaced by ``*****`` (longest first)."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def shown_url(url: str) -> str:
    """A URL fit for messages: userinfo dropped."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return url.rpartition("@")[2]
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=host))


def timeout_of(config: Mapping[str, Any], default: float, provider: str) -> float:
    """analysisd's ``timeout`` (seconds for one request), else Argo's fixed client timeout."""
    raw = config.get("timeout")
    if raw is None:
        return default
    try:
        seconds = float(raw)
    except (TypeError, ValueError):
        raise ProviderConfigError(
            f"{provider}: timeout must be a number of seconds, got {raw!r}",
            provider=provider,
            field="timeout",
        ) from None
    if not seconds > 0 or math.isinf(seconds):
        raise ProviderConfigError(
            f"{provider}: timeout must be a positive number of seconds, got {raw!r}",
            provider=provider,
            field="timeout",
        )
    return seconds


def required_text(config: Mapping[str, Any], key: str, provider: str) -> str:
    value = config.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ProviderConfigError(
            f"{provider}: provider.{provider}.{key} is required", provider=provider, field=key
        )
    return value


def profile_secret(config: Mapping[str, Any], default: str) -> str:
    """The secret a `profile` names (Argo's influxdb and newRelic blocks), else `default`."""
    profile = config.get("profile")
    return str(profile) if isinstance(profile, str) and profile else default


def check_profile_query(config: Mapping[str, Any], kind: str, default_timeout: float) -> None:
    """A block of `query`, optional `timeout` and optional `profile` (a secret's name)."""
    required_text(config, "query", kind)
    timeout_of(config, default_timeout, kind)
    profile = config.get("profile")
    if profile is not None and not isinstance(profile, str):
        raise ProviderConfigError(
            f"{kind}: profile must be the name of a secret", provider=kind, field="profile"
        )


def profile_query_key(
    config: Mapping[str, Any], kind: str, default_timeout: float, default_secret: str
) -> tuple[Any, ...]:
    """Coalescing identity of such a block: the secret's name, never its values."""
    return (
        kind,
        profile_secret(config, default_secret),
        str(config.get("query") or ""),
        timeout_of(config, default_timeout, kind),
    )


def http_url(address: str, provider: str, field: str = "address") -> str:
    """An absolute http(s) URL with a host, trailing slash dropped; ProviderConfigError else."""
    try:
        parts = urllib.parse.urlsplit(address.strip())
    except ValueError:
        parts = urllib.parse.SplitResult("", "", "", "", "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProviderConfigError(
            f"{provider} address {shown_url(address)} is not a valid URL "
            "(an absolute http:// or https:// URL with a host)",
            provider=provider,
            field=field,
        )
    return address.strip().rstrip("/")


def go_percent_f(value: float, precision: int = 6) -> str:
    """Go's fmt ``%.<precision>f``: NaN, +Inf and -Inf spelled as Go does."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:.{precision}f}"


def _no_constant(name: str) -> Any:
    raise ValueError(f"invalid character {name[0]!r} looking for beginning of value")


def go_json(body: bytes | str) -> Any:
    """JSON decoded as Go decodes it into interface{}: every number a float64, no NaN."""
    return json.loads(body, parse_int=float, parse_constant=_no_constant)


def http_failure(
    provider: str,
    where: str,
    answer: Answer,
    argo_message: str,
    *,
    secrets: Iterable[str] = (),
) -> ProviderError:
    """The error for a non-2xx answer (returned, for the caller to raise)."""
    secrets = tuple(secrets)
    body = redact(excerpt(answer.body), secrets)
    message = redact(f"{provider} at {where}: {argo_message} (HTTP {answer.status})", secrets)
    lowered = {k.lower(): v for k, v in answer.headers.items()}
    retry_header = lowered.get("retry-after")
    if answer.status == 429 or (answer.status == 503 and retry_header is not None):
        retry_after = parse_retry_after(retry_header)
        hint = f"; retry after {retry_after:g}s" if retry_after is not None else ""
        return ProviderRateLimited(
            f"{message}: rate limited{hint}",
            status=answer.status,
            body=body,
            retry_after=retry_after,
            provider=provider,
            address=where,
        )
    if answer.status in (401, 403):
        return ProviderAuthError(message, provider=provider, address=where)
    return ProviderHTTPError(
        message, status=answer.status, body=body, provider=provider, address=where
    )


class VendorHttp:
    """One pooled session for one provider instance; `send` is one timed exchange."""

    def __init__(self, provider: str, *, verify_tls: bool = True) -> None:
        self.provider = provider
        self._verify_tls = verify_tls
        self._session: aiohttp.ClientSession | None = None

    def _session_for(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = policy_connector(ssl=self._verify_tls, limit=256)
            self._session = client_session(connector=connector)
        return self._session

    async def send(
        self,
        method: str,
        url: str,
        *,
        where: str,
        timeout_s: float,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> Answer:
        """One request; transport failures and timeouts become ProviderErrors naming `where`."""
        session = self._session_for()
        try:
            async with asyncio.timeout(timeout_s):
                async with session.request(
                    method,
                    URL(url, encoded=True),
                    data=body,
                    headers=dict(headers or {}),
                ) as response:
                    raw = await read_capped(response, self.provider, where)
                    return Answer(response.status, dict(response.headers), raw)
        except ProviderError:
            raise
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise map_client_error(exc, self.provider, where, timeout_s) from None

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
