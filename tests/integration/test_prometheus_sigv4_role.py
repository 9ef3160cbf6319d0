"""SigV4 with roleArn: credentials come from STS AssumeRole (a real moto_server on loopback)."""

# ruff: noqa: F811  (pytest fixtures are imported, then named as parameters)

from __future__ import annotations

import pytest

from providers.base import ProviderAuthError
from providers.sigv4 import SigV4Settings, SigV4Signer
from tests.rigs.moto import MotoServer, aws_env, moto_server  # noqa: F401

pytestmark = pytest.mark.integration

ROLE = "arn:aws:iam::123456789012:role/analysisd-amp-reader"


async def test_role_credentials_sign_the_request(aws_env: MotoServer) -> None:
    signer = SigV4Signer(SigV4Settings(region=aws_env.region, role_arn=ROLE))
    credentials = await signer.credentials()
    headers = await signer.sign(
        "POST", "https://aps-workspaces.example/api/v1/query", {}, b"query=up"
    )
    # The assumed role's keys, not the caller's ("testing"), sign the request.
    assert credentials.access_key != "testing"
    assert credentials.token
    assert f"Credential={credentials.access_key}/" in headers["Authorization"]
    assert f"/{aws_env.region}/aps/aws4_request" in headers["Authorization"]
    assert headers["X-Amz-Security-Token"] == credentials.token
    # Cached: a second signature does not assume the role again.
    assert await signer.credentials() is credentials


def test_region_is_required() -> None:
    with pytest.raises(ProviderAuthError, match="region"):
        SigV4Signer(SigV4Settings(region=""))
