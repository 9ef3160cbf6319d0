"""PrometheusProvider against a loopback fake: faults real Prometheus will not produce, and auth.

A fake only where the real server cannot be made to misbehave on demand (5xx,
429, garbage bodies) or to check credentials (basic, OAuth2, SigV4).
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import pytest
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from providers.base import (
    ProviderBadBody,
    ProviderError,
    ProviderHTTPError,
    ProviderRateLimited,
    ProviderTimeout,
)
from providers.prometheus import PrometheusProvider

pytestmark = pytest.mark.integration

VECTOR_OK = {
    "status": "success",
    "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1.0, "0.5"]}]},
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    method: str
    path: str
    headers: Mapping[str, str]
    form: dict[str, list[str]]
    body: bytes
    url: str


@dataclass
class FakePrometheus:
    url: str = ""
    seen: list[Seen] = field(default_factory=list)
    token_requests: list[dict[str, list[str]]] = field(default_factory=list)
    handler: Handler | None = None
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def answer(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        text = body if isinstance(body, str) else json.dumps(body)

        async def handler(request: web.Request) -> web.StreamResponse:
            return web.Response(status=status, text=text, headers=headers)

        self.handler = handler


@pytest.fixture
async def fake() -> AsyncIterator[FakePrometheus]:
    state = FakePrometheus()
    state.answer(200, VECTOR_OK)

    async def api(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        form = parse_qs(body.decode()) if body else parse_qs(request.query_string)
        state.seen.append(
            Seen(request.method, request.path, dict(request.headers), form, body, str(request.url))
        )
        assert state.handler is not None
        return await state.handler(request)

    async def token(request: web.Request) -> web.StreamResponse:
        state.token_requests.append(parse_qs((await request.read()).decode()))
        return web.json_response(
            {"access_token": "token-abc", "token_type": "bearer", "expires_in": 3600}
        )

    app = web.Application()
    app.router.add_route("*", "/api/v1/{tail:.*}", api)
    app.router.add_post("/oauth/token", token)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.url = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        state.release.set()
        await runner.cleanup()


def _no_secrets(name: str, key: str) -> str | None:
    return None


async def measure(config: Mapping[str, Any]) -> Any:
    provider = PrometheusProvider.create(config, _no_secrets)
    try:
        return await provider.measure(config)
    finally:
        await provider.aclose()


def cfg(fake: FakePrometheus, query: str = "up", **extra: Any) -> dict[str, Any]:
    return {"address": fake.url, "query": query, **extra}


async def test_server_error_keeps_status_body_address_and_query(fake: FakePrometheus) -> None:
    fake.answer(500, "internal meltdown")
    with pytest.raises(ProviderHTTPError) as caught:
        await measure(cfg(fake, 'sum(rate(x{a="b"}[1m]))'))
    message = str(caught.value)
    assert caught.value.status == 500
    assert "internal meltdown" in message
    assert fake.url in message
    assert 'sum(rate(x{a="b"}[1m]))' in message


async def test_huge_error_body_is_truncated(fake: FakePrometheus) -> None:
    fake.answer(502, "x" * 20_000)
    with pytest.raises(ProviderHTTPError) as caught:
        await measure(cfg(fake))
    assert len(str(caught.value)) < 2_000


async def test_429_with_retry_after_is_rate_limited(fake: FakePrometheus) -> None:
    fake.answer(429, "slow down", {"Retry-After": "7"})
    with pytest.raises(ProviderRateLimited) as caught:
        await measure(cfg(fake))
    assert caught.value.status == 429
    assert caught.value.retry_after == 7


async def test_503_with_retry_after_is_rate_limited(fake: FakePrometheus) -> None:
    fake.answer(503, "busy", {"Retry-After": "2"})
    with pytest.raises(ProviderRateLimited) as caught:
        await measure(cfg(fake))
    assert caught.value.retry_after == 2


async def test_invalid_json_is_a_bad_body(fake: FakePrometheus) -> None:
    fake.answer(200, "<html>proxy login</html>")
    with pytest.raises(ProviderBadBody, match="not JSON") as caught:
        await measure(cfg(fake))
    assert "proxy login" in str(caught.value)


async def test_status_error_in_a_200_is_a_bad_body(fake: FakePrometheus) -> None:
    fake.answer(200, {"status": "error", "errorType": "execution", "error": "many-to-many"})
    with pytest.raises(ProviderBadBody, match="many-to-many"):
        await measure(cfg(fake))


@pytest.mark.parametrize(
    "data",
    [
        {"resultType": "histogram", "result": []},
        {"resultType": "vector", "result": [{"metric": {}}]},
        {"resultType": "vector", "result": [{"metric": {}, "value": [1, "fast"]}]},
        {"resultType": "scalar", "result": "oops"},
        {"resultType": "matrix", "result": [{"metric": {}}]},
        "not an object",
    ],
    ids=["unknown-type", "missing-value", "non-numeric", "bad-scalar", "bad-matrix", "no-data"],
)
async def test_wrong_shape_is_a_bad_body(fake: FakePrometheus, data: Any) -> None:
    fake.answer(200, {"status": "success", "data": data})
    with pytest.raises(ProviderBadBody) as caught:
        await measure(cfg(fake, "my_query"))
    assert "my_query" in str(caught.value)
    assert fake.url in str(caught.value)


async def test_warnings_are_recorded_as_argo_spells_them(fake: FakePrometheus) -> None:
    fake.answer(200, {**VECTOR_OK, "warnings": ["partial data", "slow store"]})
    reading = await measure(cfg(fake))
    assert reading.result == [0.5]
    assert reading.metadata["warnings"] == '"partial data", "slow store"'


async def test_query_is_posted_as_a_form_with_a_server_timeout(fake: FakePrometheus) -> None:
    await measure(cfg(fake, 'up{job="a b"}', timeout=10))
    (seen,) = fake.seen
    assert (seen.method, seen.path) == ("POST", "/api/v1/query")
    assert seen.form["query"] == ['up{job="a b"}']
    assert float(seen.form["timeout"][0]) == pytest.approx(9.0)


async def test_servers_refusing_post_get_a_get(fake: FakePrometheus) -> None:
    async def no_post(request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            return web.Response(status=405)
        return web.json_response(VECTOR_OK)

    fake.handler = no_post
    reading = await measure(cfg(fake, 'rate(x{a="1"}[5m])'))
    assert reading.result == [0.5]
    assert [s.method for s in fake.seen] == ["POST", "GET"]
    assert fake.seen[1].form["query"] == ['rate(x{a="1"}[5m])']


async def test_slow_server_times_out(fake: FakePrometheus) -> None:
    async def stall(request: web.Request) -> web.StreamResponse:
        await asyncio.wait_for(fake.release.wait(), timeout=30)
        return web.json_response(VECTOR_OK)

    fake.handler = stall
    with pytest.raises(ProviderTimeout) as caught:
        await measure(cfg(fake, timeout=0.2))
    assert fake.url in str(caught.value)


async def test_custom_headers_reach_the_server(fake: FakePrometheus) -> None:
    headers = [{"key": "X-Scope-OrgID", "value": "tenant_a"}, {"name": "X-Extra", "value": "1"}]
    await measure(cfg(fake, headers=headers))
    assert fake.seen[0].headers["X-Scope-OrgID"] == "tenant_a"
    assert fake.seen[0].headers["X-Extra"] == "1"


async def test_basic_auth_reaches_the_server_and_never_the_message(fake: FakePrometheus) -> None:
    auth = {"basicAuth": {"username": "reader", "password": "s3cr3t-pw"}}
    await measure(cfg(fake, authentication=auth))
    expected = base64.b64encode(b"reader:s3cr3t-pw").decode()
    assert fake.seen[0].headers["Authorization"] == f"Basic {expected}"
    fake.answer(401, "unauthorized")
    with pytest.raises(ProviderHTTPError) as caught:
        await measure(cfg(fake, authentication=auth))
    assert "s3cr3t-pw" not in str(caught.value)
    assert expected not in str(caught.value)


async def test_userinfo_in_address_is_not_shown(fake: FakePrometheus) -> None:
    fake.answer(500, "nope")
    address = fake.url.replace("http://", "http://user:hunter2@")
    with pytest.raises(ProviderHTTPError) as caught:
        await measure({"address": address, "query": "up"})
    assert "hunter2" not in str(caught.value)


async def test_oauth2_token_is_fetched_once_and_sent_as_bearer(fake: FakePrometheus) -> None:
    auth = {
        "oauth2": {
            "tokenUrl": f"{fake.url}/oauth/token",
            "clientId": "analysisd",
            "clientSecret": "client-secret-value",
            "scopes": ["metrics.read"],
        }
    }
    config = cfg(fake, authentication=auth)
    provider = PrometheusProvider.create(config, _no_secrets)
    try:
        await provider.measure(config)
        await provider.measure(config)
    finally:
        await provider.aclose()
    assert [s.headers["Authorization"] for s in fake.seen] == ["Bearer token-abc"] * 2
    assert len(fake.token_requests) == 1


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> ReadOnlyCredentials:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session-token-example")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return ReadOnlyCredentials(
        "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token-example"
    )


def expected_signature(seen: Seen, credentials: ReadOnlyCredentials, region: str) -> str:
    """Recompute the SigV4 signature of the request as the server received it."""
    signed = seen.headers["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    headers = {name: seen.headers[name] for name in seen.headers if name.lower() in signed}
    request = AWSRequest(method=seen.method, url=seen.url, data=seen.body, headers=headers)
    request.context["timestamp"] = seen.headers["X-Amz-Date"]
    signer = SigV4Auth(credentials, "aps", region)
    canonical = signer.canonical_request(request)
    return str(signer.signature(signer.string_to_sign(request, canonical), request))


async def test_sigv4_signs_with_the_aps_scope_when_enabled(
    fake: FakePrometheus, aws_env: ReadOnlyCredentials
) -> None:
    auth = {"sigv4": {"region": "eu-west-1", "enabled": True}}
    reading = await measure(cfg(fake, 'sum(rate(x{a="b"}[5m]))', authentication=auth))
    assert reading.result == [0.5]
    seen = fake.seen[0]
    authorization = seen.headers["Authorization"]
    date = seen.headers["X-Amz-Date"][:8]
    assert authorization.startswith(
        f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{date}/eu-west-1/aps/aws4_request, "
    )
    assert "host" in authorization and "x-amz-date" in authorization
    assert seen.headers["X-Amz-Security-Token"] == "session-token-example"
    signature = authorization.rsplit("Signature=", 1)[1]
    assert signature == expected_signature(seen, aws_env, "eu-west-1")


async def test_sigv4_is_off_for_plain_addresses_by_default(
    fake: FakePrometheus, aws_env: ReadOnlyCredentials
) -> None:
    await measure(cfg(fake, authentication={"sigv4": {"region": "eu-west-1"}}))
    assert "Authorization" not in fake.seen[0].headers


@pytest.fixture
async def tls_url(tmp_path: Any) -> AsyncIterator[str]:
    """A self-signed HTTPS Prometheus fake on loopback."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    openssl = await asyncio.create_subprocess_exec(
        "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert await openssl.wait() == 0
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def api(request: web.Request) -> web.StreamResponse:
        return web.json_response(VECTOR_OK)

    app = web.Application()
    app.router.add_route("*", "/api/v1/{tail:.*}", api)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_insecure_accepts_a_self_signed_certificate(tls_url: str) -> None:
    reading = await measure({"address": tls_url, "query": "up", "insecure": True})
    assert reading.result == [0.5]


async def test_self_signed_certificate_is_refused_by_default(tls_url: str) -> None:
    with pytest.raises(ProviderError) as caught:
        await measure({"address": tls_url, "query": "up"})
    assert not isinstance(caught.value, ProviderHTTPError)
    assert "127.0.0.1" in str(caught.value)
