"""The Web provider through ProviderRegistry against a real aiohttp app on 127.0.0.1."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from providers.base import (
    ProviderAuthError,
    ProviderBadBody,
    ProviderConfigError,
    ProviderConnectionError,
    ProviderHTTPError,
    ProviderRateLimited,
    ProviderTimeout,
)
from providers.oauth2 import OAuth2ClientCredentials
from providers.registry import LimitsConfig, ProviderRegistry
from providers.web import PHASE_METADATA_KEY

SECRET = "s3cr3t-header-value-123"


class App:
    """Endpoints with counters; each test reads what the server saw."""

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.seen: list[dict[str, Any]] = []
        self.rate_limited_left = 0
        self.token_requests: list[dict[str, str]] = []
        self.never = asyncio.Event()
        self.url = ""

    def count(self, name: str) -> None:
        self.hits[name] = self.hits.get(name, 0) + 1

    async def echo(self, request: web.Request) -> web.Response:
        self.count("echo")
        body = await request.text()
        self.seen.append({"method": request.method, "headers": dict(request.headers)})
        return web.json_response(
            {
                "method": request.method,
                "contentType": request.headers.get("Content-Type", ""),
                "header": request.headers.get("X-Team", ""),
                "body": body,
                "data": {"ok": True, "count": 3, "name": "canary"},
            }
        )

    async def text(self, request: web.Request) -> web.Response:
        return web.Response(text="all good", content_type="text/plain")

    async def cookie(self, request: web.Request) -> web.Response:
        response = web.json_response({"ok": True})
        response.set_cookie("session", "from-another-metric")
        return response

    async def empty(self, request: web.Request) -> web.Response:
        return web.Response(body=b"")

    async def slow(self, request: web.Request) -> web.Response:
        await self.never.wait()
        return web.Response(text="late")

    async def broken(self, request: web.Request) -> web.Response:
        # Echoes the request headers, as debugging error pages do.
        return web.Response(status=500, text=f"boom; saw {dict(request.headers)}")

    async def limited(self, request: web.Request) -> web.Response:
        self.count("limited")
        if self.rate_limited_left > 0:
            self.rate_limited_left -= 1
            return web.Response(status=429, headers={"Retry-After": "2"}, text="slow down")
        return web.json_response({"v": 0.5})

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.token_requests.append(
            {
                "grant_type": str(form.get("grant_type", "")),
                "scope": str(form.get("scope", "")),
                "authorization": request.headers.get("Authorization", ""),
            }
        )
        if request.headers.get("Authorization", "") != _basic("analysisd", "client-secret-xyz"):
            return web.json_response({"error": "invalid_client"}, status=401)
        return web.json_response(
            {"access_token": "tok-1", "token_type": "bearer", "expires_in": 3600}
        )

    async def protected(self, request: web.Request) -> web.Response:
        self.count("protected")
        if request.headers.get("Authorization") != "Bearer tok-1":
            return web.Response(status=401, text="no token")
        return web.json_response({"score": 97})

    async def series(self, request: web.Request) -> web.Response:
        self.seen.append({"query": dict(request.query)})
        return web.json_response({"points": [1, 2.5, None, "4"]})


def _basic(user: str, password: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
async def app() -> AsyncIterator[App]:
    state = App()
    application = web.Application()
    for path, handler in {
        "/echo": state.echo,
        "/text": state.text,
        "/cookie": state.cookie,
        "/empty": state.empty,
        "/slow": state.slow,
        "/broken": state.broken,
        "/limited": state.limited,
        "/protected": state.protected,
        "/series": state.series,
    }.items():
        application.router.add_route("*", path, handler)
    application.router.add_post("/token", state.token)
    runner = web.AppRunner(application)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    state.url = f"http://127.0.0.1:{port}"
    yield state
    state.never.set()
    await runner.cleanup()


class RecordedSleep:
    """Stands in for asyncio.sleep: records the waits asked for, returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
async def registry() -> AsyncIterator[ProviderRegistry]:
    async with ProviderRegistry(
        secrets=lambda name, key: None, limits=LimitsConfig(coalesce_window=0)
    ) as reg:
        yield reg


async def test_get_with_json_path_gives_float_result_and_json_value(
    app: App, registry: ProviderRegistry
) -> None:
    reading = await registry.measure(
        "web", {"url": f"{app.url}/echo", "jsonPath": "{$.data.count}"}
    )
    assert reading.result == 3.0 and isinstance(reading.result, float)  # Argo: float64
    assert reading.value == "3"


async def test_json_path_string_match_keeps_go_json_quotes(
    app: App, registry: ProviderRegistry
) -> None:
    reading = await registry.measure("web", {"url": f"{app.url}/echo", "jsonPath": "{.data.name}"})
    assert reading.result == "canary"
    assert reading.value == '"canary"'


async def test_default_json_path_is_whole_document(app: App, registry: ProviderRegistry) -> None:
    reading = await registry.measure("web", {"url": f"{app.url}/echo"})
    assert reading.result["data"]["ok"] is True
    assert reading.value.startswith('{"body":""')  # keys sorted as Go marshals maps


async def test_post_json_body_sets_content_type(app: App, registry: ProviderRegistry) -> None:
    config = {"url": f"{app.url}/echo", "method": "POST", "jsonBody": {"q": "rate", "n": 1}}
    reading = await registry.measure("web", {**config, "jsonPath": "{$}"})
    assert reading.result["method"] == "POST"
    assert reading.result["contentType"] == "application/json"
    assert json.loads(reading.result["body"]) == {"q": "rate", "n": 1}


async def test_put_string_body_and_headers_are_sent(app: App, registry: ProviderRegistry) -> None:
    config = {
        "url": f"{app.url}/echo",
        "method": "PUT",
        "body": "plain payload",
        "headers": [{"key": "X-Team", "value": "payments"}],
    }
    reading = await registry.measure("web", config)
    assert reading.result["method"] == "PUT"
    assert reading.result["body"] == "plain payload"
    assert reading.result["header"] == "payments"


async def test_body_and_json_body_together_is_argos_config_error(
    app: App, registry: ProviderRegistry
) -> None:
    config = {"url": f"{app.url}/echo", "method": "POST", "body": "x", "jsonBody": {"a": 1}}
    with pytest.raises(ProviderConfigError, match="use either Body or JSONBody"):
        await registry.measure("web", config)


async def test_body_with_get_is_argos_config_error(app: App, registry: ProviderRegistry) -> None:
    with pytest.raises(ProviderConfigError, match="can only be used with POST or PUT"):
        await registry.measure("web", {"url": f"{app.url}/echo", "body": "x"})


async def test_json_path_miss_names_the_missing_key(app: App, registry: ProviderRegistry) -> None:
    with pytest.raises(ProviderBadBody, match="Could not find JSONPath in body: nope is not found"):
        await registry.measure("web", {"url": f"{app.url}/echo", "jsonPath": "{.data.nope}"})


async def test_empty_match_is_no_value(app: App, registry: ProviderRegistry) -> None:
    config = {"url": f"{app.url}/series", "jsonPath": "{.points[1:1]}"}
    with pytest.raises(ProviderBadBody, match="produced no value"):
        await registry.measure("web", config)


async def test_timeout_is_provider_timeout(app: App, registry: ProviderRegistry) -> None:
    with pytest.raises(ProviderTimeout, match=r"web at http://127\.0\.0\.1:\d+/slow"):
        await registry.measure("web", {"url": f"{app.url}/slow", "timeoutSeconds": 0.2})


async def test_connection_refused_is_connection_error(registry: ProviderRegistry) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ProviderConnectionError, match="cannot connect"):
        await registry.measure("web", {"url": f"http://127.0.0.1:{port}/x"})


async def test_server_error_keeps_status_and_body(app: App, registry: ProviderRegistry) -> None:
    with pytest.raises(ProviderHTTPError) as caught:
        await registry.measure("web", {"url": f"{app.url}/broken"})
    assert caught.value.status == 500
    assert "HTTP 500" in str(caught.value) and "boom" in str(caught.value)


async def test_secret_header_value_never_in_error_messages(
    app: App, registry: ProviderRegistry
) -> None:
    headers = [{"key": "Authorization", "value": f"Bearer {SECRET}"}]
    failures: list[str] = []
    for path, extra in [("/broken", {}), ("/slow", {"timeoutSeconds": 0.2}), ("/echo", {})]:
        config: dict[str, Any] = {"url": f"{app.url}{path}", "headers": headers, **extra}
        if path == "/echo":
            config["jsonPath"] = "{.missing}"
        try:
            await registry.measure("web", config)
        except Exception as exc:  # every failure kind, whatever its class
            failures.append(str(exc) + repr(exc.args) + str(getattr(exc, "body", "")))
    assert len(failures) == 3
    assert all(SECRET not in text for text in failures)
    assert "boom" in failures[0]  # the body is still shown, minus the secret


async def test_429_retry_after_is_honoured_then_succeeds(app: App) -> None:
    app.rate_limited_left = 1
    sleep = RecordedSleep()
    async with ProviderRegistry(secrets=lambda n, k: None, sleep=sleep) as registry:
        reading = await registry.measure("web", {"url": f"{app.url}/limited", "jsonPath": "{.v}"})
    assert reading.result == 0.5
    assert app.hits["limited"] == 2
    assert sleep.waits and sleep.waits[0] >= 2.0  # waited at least what the server asked


async def test_429_until_attempts_run_out_raises_rate_limited(app: App) -> None:
    app.rate_limited_left = 100
    sleep = RecordedSleep()
    limits = LimitsConfig(max_attempts=3)
    async with ProviderRegistry(secrets=lambda n, k: None, limits=limits, sleep=sleep) as registry:
        with pytest.raises(ProviderRateLimited) as caught:
            await registry.measure("web", {"url": f"{app.url}/limited"})
    assert caught.value.retry_after == 2.0
    assert app.hits["limited"] == 3


async def test_non_json_body_is_string_result_for_conditions(
    app: App, registry: ProviderRegistry
) -> None:
    reading = await registry.measure("web", {"url": f"{app.url}/text", "jsonPath": "{.a}"})
    assert reading.result == "all good" and reading.value == "all good"
    assert PHASE_METADATA_KEY not in reading.metadata


async def test_non_json_body_v19_mode_marks_successful(
    app: App, registry: ProviderRegistry
) -> None:
    config = {"url": f"{app.url}/text", "nonJSONBody": "successful"}
    reading = await registry.measure("web", config)
    assert reading.value == "all good"
    assert reading.metadata[PHASE_METADATA_KEY] == "Successful"


async def test_empty_body_is_empty_string(app: App, registry: ProviderRegistry) -> None:
    reading = await registry.measure("web", {"url": f"{app.url}/empty"})
    assert reading.result == "" and reading.value == ""


def _oauth_config(app: App, secret: str = "client-secret-xyz") -> dict[str, Any]:
    return {
        "url": f"{app.url}/protected",
        "jsonPath": "{.score}",
        "authentication": {
            "oauth2": {
                "tokenUrl": f"{app.url}/token",
                "clientId": "analysisd",
                "clientSecret": secret,
                "scopes": ["metrics.read", "metrics.list"],
            }
        },
    }


async def test_oauth2_token_is_fetched_once_and_reused(
    app: App, registry: ProviderRegistry
) -> None:
    for _ in range(3):
        reading = await registry.measure("web", _oauth_config(app))
        assert reading.result == 97.0
    assert len(app.token_requests) == 1
    assert app.token_requests[0]["grant_type"] == "client_credentials"
    assert app.token_requests[0]["scope"] == "metrics.read metrics.list"
    assert app.hits["protected"] == 3


async def test_oauth2_rejected_client_is_auth_error_without_the_secret(
    app: App, registry: ProviderRegistry
) -> None:
    with pytest.raises(ProviderAuthError) as caught:
        await registry.measure("web", _oauth_config(app, secret="wrong-secret-value"))
    assert "HTTP 401" in str(caught.value)
    assert "wrong-secret-value" not in str(caught.value)
    assert "protected" not in app.hits  # no API call without a token


async def test_series_reads_array_with_placeholders(app: App, registry: ProviderRegistry) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    config = {"url": f"{app.url}/series?q=${{query}}&from=${{start}}", "jsonPath": "{.points}"}
    values = await registry.series("web", config, "sum(x)", start, start + timedelta(minutes=5), 60)
    assert values[:2] == [1.0, 2.5] and values[3] == 4.0
    assert values[2] != values[2]  # null -> NaN
    assert app.seen[-1]["query"] == {"q": "sum(x)", "from": str(int(start.timestamp()))}


# -- TLS ------------------------------------------------------------------------------


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_insecure_skips_tls_verification_and_default_verifies(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    application = web.Application()

    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    application.router.add_get("/ok", ok)
    runner = web.AppRunner(application)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    url = f"https://127.0.0.1:{runner.addresses[0][1]}/ok"
    try:
        async with ProviderRegistry(secrets=lambda n, k: None) as registry:
            with pytest.raises(ProviderConnectionError, match="certificate"):
                await registry.measure("web", {"url": url})
            reading = await registry.measure(
                "web", {"url": url, "insecure": True, "jsonPath": "{.ok}"}
            )
            assert reading.result is True
    finally:
        await runner.cleanup()


# -- OAuth2 token source ------------------------------------------------------------------


async def test_oauth2_falls_back_to_form_credentials_and_refreshes_before_expiry() -> None:
    seen: list[dict[str, str]] = []

    async def token(request: web.Request) -> web.Response:
        form = await request.post()
        seen.append(
            {
                "auth": request.headers.get("Authorization", ""),
                **{k: str(v) for k, v in form.items()},
            }
        )
        if form.get("client_secret") != "form-secret":
            return web.json_response({"error": "invalid_client"}, status=401)
        return web.json_response({"access_token": f"t{len(seen)}", "expires_in": 60})

    application = web.Application()
    application.router.add_post("/token", token)
    runner = web.AppRunner(application)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    now = [0.0]
    try:
        async with aiohttp.ClientSession() as session:
            source = OAuth2ClientCredentials(
                session,
                f"http://127.0.0.1:{runner.addresses[0][1]}/token",
                "client",
                "form-secret",
                clock=lambda: now[0],
            )
            assert await source.token() == "t2"  # Basic refused, form accepted
            assert seen[0]["auth"].startswith("Basic ") and "client_secret" not in seen[0]
            assert seen[1]["client_id"] == "client"
            now[0] = 49.0  # within expires_in minus the 10 s margin: cached
            assert await source.token() == "t2"
            now[0] = 51.0  # past it: refreshed, with the style that worked
            assert await source.token() == "t3"
            assert len(seen) == 3 and "client_secret" in seen[2]
    finally:
        await runner.cleanup()


async def test_duplicate_header_names_keep_the_last_value_case_insensitively(
    app: App, registry: ProviderRegistry
) -> None:
    headers = [{"key": "x-team", "value": "first"}, {"key": "X-Team", "value": "second"}]
    reading = await registry.measure("web", {"url": f"{app.url}/echo", "headers": headers})
    assert reading.result["header"] == "second"


async def test_a_cookie_set_by_one_endpoint_is_never_sent_again(
    app: App, registry: ProviderRegistry
) -> None:
    # Argo's Go http.Client has no cookie jar: each request stands alone. By host
    # name: aiohttp's default jar would keep this cookie (it drops those of bare IPs).
    url = app.url.replace("127.0.0.1", "localhost")
    await registry.measure("web", {"url": f"{url}/cookie", "jsonPath": "{$.ok}"})
    await registry.measure("web", {"url": f"{url}/echo", "jsonPath": "{$.data.ok}"})
    assert app.seen[-1]["headers"].get("Cookie") is None


def test_decode_json_takes_go_shaped_numbers_and_refuses_a_byte_order_mark() -> None:
    from providers.web import decode_json

    assert decode_json(b'{"n": 1, "l": [2, 3.5]}') == (True, {"n": 1.0, "l": [2.0, 3.5]})
    assert decode_json('\ufeff{"n": 1}'.encode()) == (False, '\ufeff{"n": 1}')
    assert decode_json(b"NaN") == (False, "NaN")  # Go rejects NaN/Infinity literals
    assert decode_json(b"") == (False, "")
