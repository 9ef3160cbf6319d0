"""Shared HTTP error mapping for providers that speak HTTP themselves.

Every message names the provider, the address or URL, what came back and (for a
non-2xx answer) an excerpt of the body. Header values are never printed: they may
carry API keys or bearer tokens.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import time
from collections.abc import Mapping

import aiohttp

from providers.base import (
    ProviderAuthError,
    ProviderConnectionError,
    ProviderError,
    ProviderHTTPError,
    ProviderRateLimited,
    ProviderTimeout,
    excerpt,
)

# A server asking for more than this is treated as "not soon": the error is raised
# with the value kept, and the registry decides whether to wait.
MAX_RETRY_AFTER_S = 3600.0


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        current = time.time() if now is None else now
        seconds = when.timestamp() - current
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # aiohttp's CIMultiDict is case-insensitive, a plain dict copy is not.
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def raise_for_response(
    provider: str,
    address: str,
    status: int,
    headers: Mapping[str, str],
    body: str | bytes,
) -> None:
    """Return for a 2xx answer; raise the matching ProviderError otherwise.

    429, and 503 carrying Retry-After, -> ProviderRateLimited (retry_after kept);
    every other non-2xx -> ProviderHTTPError (401/403 worded as a credentials
    problem; `.status` tells them apart).
    """
    if 200 <= status < 300:
        return
    shown = excerpt(body)
    detail = f": {shown}" if shown.strip() else " (empty body)"
    retry_header = _header(headers, "Retry-After")
    if status == 429 or (status == 503 and retry_header is not None):
        retry_after = parse_retry_after(retry_header)
        hint = f", retry after {retry_after:g}s" if retry_after is not None else ""
        raise ProviderRateLimited(
            f"{provider} at {address} is rate limiting (HTTP {status}{hint}){detail}",
            status=status,
            body=shown,
            retry_after=retry_after,
            provider=provider,
            address=address,
        )
    if status in (401, 403):
        reason = "rejected the credentials" if status == 401 else "denied access"
        raise ProviderHTTPError(
            f"{provider} at {address} {reason} (HTTP {status}){detail}",
            status=status,
            body=shown,
            provider=provider,
            address=address,
        )
    raise ProviderHTTPError(
        f"{provider} at {address} answered HTTP {status}{detail}",
        status=status,
        body=shown,
        provider=provider,
        address=address,
    )


def map_client_error(
    exc: BaseException, provider: str, url: str, timeout: float | None
) -> ProviderError:
    """The ProviderError for a transport failure (returned, for the caller to raise).

    Timeouts (asyncio's and aiohttp's) -> ProviderTimeout; refused/reset/DNS/TLS ->
    ProviderConnectionError; anything else from aiohttp -> ProviderConnectionError
    with the exception's class name so it can be searched for.
    """
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        limit = f" within {timeout:g}s" if timeout is not None else ""
        return ProviderTimeout(
            f"{provider} at {url} did not answer{limit}", provider=provider, address=url
        )
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return ProviderConnectionError(
            f"{provider} at {url}: TLS certificate verification failed ({exc.certificate_error})",
            provider=provider,
            address=url,
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.os_error.strerror or str(exc.os_error) or type(exc.os_error).__name__
        return ProviderConnectionError(
            f"{provider} at {url}: cannot connect ({reason})", provider=provider, address=url
        )
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return ProviderConnectionError(
            f"{provider} at {url}: server closed the connection before answering",
            provider=provider,
            address=url,
        )
    if isinstance(exc, aiohttp.InvalidURL):
        return ProviderConnectionError(
            f"{provider}: invalid URL {url}", provider=provider, address=url
        )
    if isinstance(exc, aiohttp.ClientResponseError):
        # Raised by aiohttp itself (e.g. malformed response); no body to show.
        return ProviderConnectionError(
            f"{provider} at {url}: bad HTTP response ({exc.status} {exc.message})",
            provider=provider,
            address=url,
        )
    if isinstance(exc, OSError):
        reason = exc.strerror or type(exc).__name__
        return ProviderConnectionError(
            f"{provider} at {url}: connection failed ({reason})", provider=provider, address=url
        )
    text = str(exc)
    suffix = f": {excerpt(text, 200)}" if text else ""
    return ProviderConnectionError(
        f"{provider} at {url}: request failed ({type(exc).__name__}{suffix})",
        provider=provider,
        address=url,
    )


def auth_error(provider: str, address: str, message: str) -> ProviderAuthError:
    """A ProviderAuthError with the usual prefix (never include secret values in `message`)."""
    return ProviderAuthError(
        f"{provider} at {address}: {message}", provider=provider, address=address
    )
