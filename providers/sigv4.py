"""AWS Signature Version 4 for HTTP requests (Amazon Managed Service for Prometheus).

Credentials come from the standard botocore chain (environment, shared config
``profile``, instance/IRSA web identity), optionally exchanged for a role with
STS ``AssumeRole`` (``roleArn``), as Argo's SigV4 round-tripper does. Signing is
pure CPU work (botocore's ``SigV4Auth``); only credential lookups do I/O, and
they are cached until shortly before they expire.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from providers.base import ProviderAuthError

SERVICE = "aps"  # Amazon Managed Service for Prometheus
STS_TIMEOUT_S = 10.0
# Refresh assumed-role credentials this long before they expire.
REFRESH_MARGIN = dt.timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class SigV4Settings:
    """The metric's ``authentication.sigv4`` block."""

    region: str
    profile: str = ""
    role_arn: str = ""
    service: str = SERVICE

    @classmethod
    def parse(cls, block: Mapping[str, Any]) -> SigV4Settings:
        return cls(
            region=str(block.get("region") or ""),
            profile=str(block.get("profile") or ""),
            role_arn=str(block.get("roleArn") or ""),
            service=str(block.get("service") or SERVICE),
        )


def sign_headers(
    credentials: ReadOnlyCredentials,
    region: str,
    service: str,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
) -> dict[str, str]:
    """Headers to add so the request is SigV4-signed (reads the clock for X-Amz-Date).

    `url` must be byte-for-byte what goes on the wire (already percent-encoded),
    because the canonical request includes the path and query string.
    """
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    SigV4Auth(credentials, service, region).add_auth(request)
    added = {"Authorization", "X-Amz-Date", "X-Amz-Security-Token"}
    return {key: value for key, value in request.headers.items() if key in added}


class SigV4Signer:
    """Signs requests with cached credentials; owns no network resources between calls."""

    def __init__(self, settings: SigV4Settings) -> None:
        if not settings.region:
            raise ProviderAuthError("sigv4: authentication.sigv4.region is required")
        self.settings = settings
        self._lock = asyncio.Lock()
        self._cached: ReadOnlyCredentials | None = None
        self._expires: dt.datetime | None = None

    async def sign(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> dict[str, str]:
        credentials = await self.credentials()
        return sign_headers(
            credentials,
            self.settings.region,
            self.settings.service,
            method,
            url,
            headers,
            body,
        )

    async def credentials(self) -> ReadOnlyCredentials:
        async with self._lock:
            now = dt.datetime.now(dt.UTC)
            if self._cached is not None and (self._expires is None or now < self._expires):
                return self._cached
            self._cached, self._expires = await self._fetch()
            return self._cached

    async def _fetch(self) -> tuple[ReadOnlyCredentials, dt.datetime | None]:
        from aiobotocore.session import AioSession

        session = AioSession(profile=self.settings.profile or None)
        try:
            base = await session.get_credentials()
        except Exception as exc:  # botocore raises many unrelated types here
            raise ProviderAuthError(f"sigv4: cannot load AWS credentials: {exc}") from exc
        if base is None:
            raise ProviderAuthError(
                "sigv4: no AWS credentials found (environment, profile or web identity)"
            )
        if not self.settings.role_arn:
            frozen = await base.get_frozen_credentials()
            # Refreshable chains refresh themselves; re-read them every few minutes.
            return frozen, dt.datetime.now(dt.UTC) + REFRESH_MARGIN
        return await self._assume_role(session)

    async def _assume_role(self, session: Any) -> tuple[ReadOnlyCredentials, dt.datetime | None]:
        try:
            async with (
                asyncio.timeout(STS_TIMEOUT_S),
                session.create_client("sts", region_name=self.settings.region) as sts,
            ):
                answer = await sts.assume_role(
                    RoleArn=self.settings.role_arn, RoleSessionName="analysisd"
                )
        except Exception as exc:
            raise ProviderAuthError(
                f"sigv4: AssumeRole {self.settings.role_arn} failed: {exc}"
            ) from exc
        creds = answer["Credentials"]
        expires: dt.datetime = creds["Expiration"]
        frozen = ReadOnlyCredentials(
            creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]
        )
        return frozen, expires - REFRESH_MARGIN
