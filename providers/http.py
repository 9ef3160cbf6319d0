"""The one HTTP boundary for providers that speak HTTP themselves.

Error mapping: every message names the provider, the address or URL, what came
back and (for a non-2xx answer) an excerpt of the body. Header values are never
printed: they may carry API keys or bearer tokens.

Policy: what a request may reach and how much of its answer is read come from a
RequestPolicy the registry sets for the duration of a call (`using_policy`), one
per namespace; providers never see a namespace. `client_session` builds every
aiohttp session so that the egress policy is checked before each request and each
redirect hop (a trace hook) and against every address DNS returns (a resolver),
and `read_capped` reads a body in chunks and stops at the cap.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import socket
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.client_middlewares import ClientHandlerType
from aiohttp.resolver import DefaultResolver
from yarl import URL

from providers.base import (
    ProviderAuthError,
    ProviderBadBody,
    ProviderConnectionError,
    ProviderError,
    ProviderHTTPError,
    ProviderRateLimited,
    ProviderTimeout,
    excerpt,
)
from providers.egress import EgressRefused
from providers.policy import (
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_POLICY,
    RequestPolicy,
    check_url,
    current_policy,
    using_policy,
)
from providers.policy import POLICY as _POLICY

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_POLICY",
    "TRANSPORT_ERRORS",
    "PolicyResolver",
    "RequestPolicy",
    "ResponseTooLarge",
    "check_url",
    "client_session",
    "current_policy",
    "map_client_error",
    "parse_retry_after",
    "policy_connector",
    "raise_for_response",
    "read_capped",
    "request_checked",
    "using_policy",
]
_CHUNK = 64 * 1024

# What a request may raise short of an answer (map_client_error words each).
TRANSPORT_ERRORS = (aiohttp.ClientError, TimeoutError, OSError)

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


# ---------------------------------------------------------------- policy


class PolicyResolver(AbstractResolver):
    """DNS answers filtered by the current policy: the address connected to is what counts.

    A name resolving only to refused addresses (a link-local metadata service, the
    daemon itself) raises EgressRefused; refused addresses among others are dropped.
    """

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        egress = _POLICY.get().egress
        allowed: list[ResolveResult] = []
        refusal: EgressRefused | None = None
        for answer in answers:
            try:
                egress.check_address(answer["host"], answer["port"], target=f"{host}:{port}")
            except EgressRefused as exc:
                refusal = refusal or exc
                continue
            allowed.append(answer)
        if not allowed and refusal is not None:
            raise refusal
        return allowed

    async def close(self) -> None:
        await self._inner.close()


# A redirect answer just seen in this task: (where it leads, the origin it came from).
# The next hop's check names the redirect when it refuses that very target.
_REDIRECTED: ContextVar[tuple[str, str] | None] = ContextVar("analysisd_redirected", default=None)
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


async def _policy_middleware(
    request: aiohttp.ClientRequest, handler: ClientHandlerType
) -> aiohttp.ClientResponse:
    """Every hop's URL is checked before it is sent (the first request and each
    redirect aiohttp follows: it calls the middleware once per hop).

    A client middleware rather than trace hooks: a session with any TraceConfig pays
    for every trace event of every request (about 25 us of CPU per request on the
    scheduler bench's machine, a quarter of a bare request), the middleware for one call.
    """
    url = str(request.url)
    hop = _REDIRECTED.get()
    if hop is not None:
        _REDIRECTED.set(None)
    try:
        check_url(url)
    except EgressRefused as exc:
        if hop is None or hop[0] != url:
            raise
        raise EgressRefused(
            f"{exc.message} (a redirect from {hop[1]})",
            provider=exc.provider,
            address=exc.address,
        ) from None
    response = await handler(request)
    if response.status in _REDIRECT_STATUSES:
        location = response.headers.get("Location") or response.headers.get("URI")
        if location:
            try:
                target = response.url.join(URL(location))
            except ValueError:
                return response  # aiohttp refuses it itself
            _REDIRECTED.set((str(target), _origin(response.url)))
    return response


async def request_checked(
    session: aiohttp.ClientSession,
    method: str,
    url: str | URL,
    *,
    headers: Mapping[str, str],
    data: bytes | None,
    client_timeout: aiohttp.ClientTimeout,
) -> aiohttp.ClientResponse:
    """`session.request(...)` of a `client_session`, its first hop sent without the
    session's middleware; the caller releases the response (`async with`).

    The first URL is checked here, and sent with aiohttp's redirects off: the
    middleware machinery costs a closure and two coroutines per request, about 5 % of
    a measurement, and almost no answer is a redirect. A redirect answer is turned
    into its next hop as aiohttp turns it (301/302 after POST and 303 become a GET
    without body, a relative Location is joined, credentials are dropped when the
    origin changes, 10 redirects at most in all); that hop and any after it go through
    the session's middleware, which checks each and names a refused one a redirect.
    The total timeout covers every hop, as it does inside aiohttp.
    """
    if isinstance(url, str):
        try:
            url = URL(url)
        except ValueError:
            raise aiohttp.InvalidUrlClientError(url) from None
    check_url(str(url))
    started = time.monotonic()
    response = await session.request(
        method,
        url,
        headers=headers,
        data=data,
        timeout=client_timeout,
        allow_redirects=False,
        middlewares=(),
    )
    if response.status not in _REDIRECT_STATUSES:
        return response
    location = response.headers.get("Location") or response.headers.get("URI")
    if location is None:
        return response  # aiohttp answers a redirect without a target as it is
    status = response.status
    response.release()
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method, data = "GET", None
        headers = _without(headers, ("content-length",))
    try:
        target = URL(location, encoded=not session.requote_redirect_url)
    except ValueError:
        raise aiohttp.InvalidUrlRedirectClientError(
            location, "Server attempted redirecting to a location that does not look like a URL"
        ) from None
    scheme = target.scheme
    if scheme not in ("http", "https", ""):
        raise aiohttp.NonHttpUrlRedirectClientError(location)
    if not scheme or (scheme == url.scheme and _no_authority(location, scheme)):
        target = url.join(target)  # "/path", "http:path": relative to this URL
    try:
        cross_origin = url.origin() != target.origin()
    except ValueError:
        raise aiohttp.InvalidUrlRedirectClientError(target, "Invalid redirect URL origin") from None
    if cross_origin:
        headers = _without(headers, ("authorization", "cookie", "proxy-authorization"))
    _REDIRECTED.set((str(target), _origin(url)))
    total = client_timeout.total
    if total is not None:  # what is left of it for the hops still to come
        client_timeout = aiohttp.ClientTimeout(
            total=max(total - (time.monotonic() - started), 0.001),
            connect=client_timeout.connect,
            sock_read=client_timeout.sock_read,
            sock_connect=client_timeout.sock_connect,
            ceil_threshold=client_timeout.ceil_threshold,
        )
    return await session.request(
        method, target, headers=headers, data=data, timeout=client_timeout, max_redirects=9
    )


_C0_OR_SPACE = "".join(map(chr, range(0x21)))


def _without(headers: Mapping[str, str], names: tuple[str, ...]) -> dict[str, str]:
    return {key: value for key, value in headers.items() if key.lower() not in names}


def _no_authority(location: str, scheme: str) -> bool:
    """No "//" after the scheme ("http:path", "http:/path"; a backslash counts as a slash,
    as browsers read it): the location is relative to the current URL."""
    text = location.strip(_C0_OR_SPACE).replace("\t", "")
    text = text.replace("\n", "").replace("\r", "")
    rest = text[len(scheme) + 1 : len(scheme) + 3]
    return rest[:1] not in ("/", "\\") or rest[1:] not in ("/", "\\")


def client_session(
    *, connector: aiohttp.BaseConnector | None = None, **kwargs: Any
) -> aiohttp.ClientSession:
    """An aiohttp session that obeys the current RequestPolicy on every hop and address.

    Each hop's URL (the first, and each redirect's target before it is sent) is
    checked by a client middleware, and (in the connector) every address a name
    resolves to.

    `connector` given: it must have been made by `policy_connector`.
    """
    middlewares = (_policy_middleware, *kwargs.pop("middlewares", ()))
    return aiohttp.ClientSession(
        connector=connector or policy_connector(), middlewares=middlewares, **kwargs
    )


def _origin(url: URL) -> str:
    return f"{url.scheme}://{url.host}" + (f":{url.port}" if url.port else "")


def policy_connector(**kwargs: Any) -> aiohttp.TCPConnector:
    """A TCPConnector whose DNS answers pass the egress policy (see PolicyResolver)."""
    return aiohttp.TCPConnector(resolver=PolicyResolver(), **kwargs)


class ResponseTooLarge(ProviderBadBody):
    """A body past the cap: reading stopped there, nothing of it is kept."""


async def read_capped(
    response: aiohttp.ClientResponse,
    provider: str,
    where: str | Callable[[], str],
    limit: int | None = None,
    *,
    setting: str | None = None,
) -> bytes:
    """The body, read chunk by chunk; past `limit` bytes the connection is dropped.

    `limit` None: the current policy's max_response_bytes. A declared
    Content-Length over the cap is refused before a byte of the body is read.
    `where` (the address for the message) may be a function: it is called only
    when there is a message to write.
    """
    policy = _POLICY.get()
    cap = policy.max_response_bytes if limit is None else limit
    rule = setting or policy.cap_setting
    declared = response.content_length
    if declared is not None:
        if declared > cap:
            response.close()
            raise _too_large(provider, where, cap, rule, f"Content-Length {declared}")
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding == "identity":
            # aiohttp reads exactly Content-Length bytes of such a body: it fits the
            # cap, and one read costs less than the chunk loop (about 4 us a request).
            # A compressed body is counted as it is decompressed, below.
            return await response.read()
    buffer = bytearray()
    async for chunk in response.content.iter_chunked(_CHUNK):
        buffer += chunk
        if len(buffer) > cap:
            response.close()  # unread bytes stay with the server, not in our memory
            raise _too_large(provider, where, cap, rule, f"more than {cap} bytes")
    return bytes(buffer)


def _too_large(
    provider: str, where: str | Callable[[], str], cap: int, rule: str, seen: str
) -> ResponseTooLarge:
    if not isinstance(where, str):
        where = where()
    return ResponseTooLarge(
        f"{provider} at {where}: response body is larger than the {cap}-byte cap "
        f"({rule}); {seen}, stopped reading",
        provider=provider,
        address=where,
    )
