"""OAuth2 client-credentials grant (RFC 6749 4.4) with a cached access token.

Mirrors golang.org/x/oauth2/clientcredentials, which Argo uses: POST
``grant_type=client_credentials`` (+ space-separated ``scope``) to the token URL,
client id/secret first as HTTP Basic auth and, if the server rejects that, in the
form body (Go's AuthStyleAutoDetect; the style that worked is remembered). The
token is reused until shortly before ``expires_in``; concurrent callers share one
refresh. Errors never contain the secret or the token.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import Callable, Sequence
from urllib.parse import quote_plus

import aiohttp

from providers.base import ProviderAuthError, excerpt
from providers.http import map_client_error, read_capped

PROVIDER = "oauth2"
DEFAULT_TIMEOUT_S = 10.0
# Refresh this long before the server's expiry (Go's oauth2 uses 10 s).
EXPIRY_MARGIN_S = 10.0
# Without expires_in a token is kept this long (Go keeps it forever; we are more careful).
DEFAULT_LIFETIME_S = 300.0
# A token answer is a small JSON object; a bigger one is refused rather than held.
TOKEN_MAX_BYTES = 1024 * 1024


class OAuth2ClientCredentials:
    """Token source for one (token URL, client, scopes); owned by one provider instance."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        token_url: str,
        client_id: str,
        client_secret: str,
        scopes: Sequence[str] = (),
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session = session
        self._token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._scopes = [s for s in scopes if s]
        self._timeout = timeout
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self._in_params: bool | None = None  # auth style that worked, once known
        self.fetches = 0  # how many token requests were made (observability, tests)

    def invalidate(self) -> None:
        """Forget the cached token (e.g. after the API answered 401 with it)."""
        self._token = None
        self._expires_at = 0.0

    async def token(self) -> str:
        """A valid access token, fetched at most once per lifetime across concurrent callers."""
        if self._token is not None and self._clock() < self._expires_at:
            return self._token
        async with self._lock:
            if self._token is not None and self._clock() < self._expires_at:
                return self._token
            if not self._token_url:
                raise self._error("authentication.oauth2.tokenUrl is empty")
            token, lifetime = await self._fetch()
            self._token = token
            self._expires_at = self._clock() + max(lifetime - EXPIRY_MARGIN_S, 0.0)
            return token

    async def _fetch(self) -> tuple[str, float]:
        styles = [self._in_params] if self._in_params is not None else [False, True]
        last: ProviderAuthError | None = None
        for in_params in styles:
            status, raw = await self._post(in_params)
            if 200 <= status < 300:
                self._in_params = in_params
                return self._parse(raw)
            last = self._error(f"token endpoint answered HTTP {status}: {self._scrub(raw)}")
            if status not in (400, 401):
                break  # only a rejection of the auth style is worth a second try
        assert last is not None
        raise last

    async def _post(self, in_params: bool) -> tuple[int, bytes]:
        form = {"grant_type": "client_credentials"}
        if self._scopes:
            form["scope"] = " ".join(self._scopes)
        headers = {"Accept": "application/json"}
        if in_params:
            form["client_id"] = self._client_id
            form["client_secret"] = self._client_secret
        else:
            # RFC 6749 2.3.1: form-encode id and secret before Basic (as Go's oauth2 does).
            pair = f"{quote_plus(self._client_id)}:{quote_plus(self._client_secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        self.fetches += 1
        try:
            async with asyncio.timeout(self._timeout):
                async with self._session.post(
                    self._token_url,
                    data=form,
                    headers=headers,
                ) as response:
                    body = await read_capped(response, PROVIDER, self._token_url, TOKEN_MAX_BYTES)
                    return response.status, body
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            mapped = map_client_error(exc, PROVIDER, self._token_url, self._timeout)
            raise self._error(f"token request failed: {mapped.message}") from None

    def _parse(self, raw: bytes) -> tuple[str, float]:
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            raise self._error(f"token endpoint did not return a JSON object: {self._scrub(raw)}")
        token = payload.get("access_token")
        if not isinstance(token, str) or not token:
            raise self._error("token endpoint answer has no access_token")
        expires_in = payload.get("expires_in")
        lifetime = DEFAULT_LIFETIME_S
        if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool):
            lifetime = float(expires_in)
        elif isinstance(expires_in, str):
            with contextlib.suppress(ValueError):
                lifetime = float(expires_in)
        return token, lifetime

    def _scrub(self, raw: bytes) -> str:
        # Some servers echo the request form; never let the secret reach a log.
        text = excerpt(raw, 300)
        if self._client_secret:
            text = text.replace(self._client_secret, "*****")
        return text

    def _error(self, message: str) -> ProviderAuthError:
        return ProviderAuthError(
            f"oauth2 client credentials for client {self._client_id!r} at {self._token_url}: "
            f"{message}",
            provider=PROVIDER,
            address=self._token_url,
        )
