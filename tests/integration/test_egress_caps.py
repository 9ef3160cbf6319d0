"""Egress policy and response caps at the HTTP boundary, with real servers on 127.0.0.1.

Each provider call goes through ProviderRegistry.for_namespace(ns): the namespace's
policy is checked before every request, on every redirect hop and against every
address DNS returns; bodies are read chunk by chunk and dropped at the cap.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

from providers.egress import EgressPolicy, EgressRefused, parse_prefix
from providers.http import RequestPolicy, ResponseTooLarge
from providers.registry import LimitsConfig, ProviderRegistry, Scope


class Peer:
    """A loopback server that counts what reaches it."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.port = 0
        self.runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, extra: Callable[[web.Application], None] | None = None) -> None:
        app = web.Application()
        app.router.add_get("/ok", self.ok)
        app.router.add_get("/huge", self.huge)
        app.router.add_get("/huge-declared", self.huge_declared)
        app.router.add_post("/token", self.token)
        if extra is not None:
            extra(app)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def ok(self, request: web.Request) -> web.Response:
        self.hits.append(request.path_qs)
        return web.json_response({"v": 1.0})

    async def token(self, request: web.Request) -> web.Response:
        self.hits.append(request.path)
        return web.json_response({"access_token": "tok", "expires_in": 600})

    async def huge(self, request: web.Request) -> web.StreamResponse:
        """100 MB generated on the fly (chunked, no length announced)."""
        self.hits.append(request.path)
        response = web.StreamResponse()
        await response.prepare(request)
        chunk = b"x" * 65536
        try:
            for _ in range(100 * 1024 * 1024 // len(chunk)):
                await response.write(chunk)
        except (ConnectionError, RuntimeError):
            pass  # the client stopped reading: exactly what should happen
        return response

    async def huge_declared(self, request: web.Request) -> web.StreamResponse:
        self.hits.append(request.path)
        response = web.StreamResponse()
        response.content_length = 100 * 1024 * 1024
        await response.prepare(request)
        with contextlib.suppress(ConnectionError, RuntimeError):
            await response.write(b"x" * 65536)
        return response


@pytest.fixture
async def peers() -> AsyncIterator[tuple[Peer, Peer]]:
    allowed, other = Peer(), Peer()

    def redirects(app: web.Application) -> None:
        async def away(request: web.Request) -> web.Response:
            allowed.hits.append(request.path)
            raise web.HTTPFound(f"{other.url}/ok?stolen=1")

        app.router.add_get("/away", away)

    await allowed.start(redirects)
    await other.start()
    yield allowed, other
    for peer in (allowed, other):
        assert peer.runner is not None
        await peer.runner.cleanup()


def registry_for(policies: dict[str, RequestPolicy]) -> ProviderRegistry:
    def scope(namespace: str) -> Scope:
        return Scope(namespace, lambda name, key: None, policies[namespace])

    return ProviderRegistry(
        secrets=lambda name, key: None,
        limits=LimitsConfig(coalesce_window=0, max_attempts=1),
        scopes=scope,
    )


def web_block(url: str, **extra: Any) -> dict[str, Any]:
    return {"url": url, "jsonPath": "{$.v}", "timeoutSeconds": 5, **extra}


async def test_a_url_outside_the_namespace_prefixes_is_refused_naming_the_rule(
    peers: tuple[Peer, Peer],
) -> None:
    allowed, other = peers
    policy = RequestPolicy(EgressPolicy.build("shop", [allowed.url]))
    async with registry_for({"shop": policy}) as registry:
        shop = registry.for_namespace("shop")
        reading = await shop.measure("web", web_block(f"{allowed.url}/ok"))
        assert reading.result == 1.0
        with pytest.raises(EgressRefused) as info:
            await shop.measure("web", web_block(f"{other.url}/ok?token=abc"))
    message = str(info.value)
    assert "namespace 'shop'" in message
    assert f"egress: {allowed.url}" in message
    assert "token=abc" not in message  # query values never shown
    assert other.hits == []


async def test_a_redirect_to_a_refused_target_is_never_followed(peers: tuple[Peer, Peer]) -> None:
    allowed, other = peers
    policy = RequestPolicy(EgressPolicy.build("shop", [allowed.url]))
    async with registry_for({"shop": policy}) as registry:
        with pytest.raises(EgressRefused, match="not under any allowed prefix"):
            await registry.for_namespace("shop").measure("web", web_block(f"{allowed.url}/away"))
    assert allowed.hits == ["/away"]
    assert other.hits == []


async def test_a_name_resolving_to_the_daemon_itself_is_refused_after_dns(
    peers: tuple[Peer, Peer],
) -> None:
    allowed, _ = peers
    # The "daemon" listens where `allowed` does; localhost resolves there.
    policy = RequestPolicy(EgressPolicy.build("shop", None, [("127.0.0.1", allowed.port)]))
    async with registry_for({"shop": policy}) as registry:
        shop = registry.for_namespace("shop")
        for url in (f"http://localhost:{allowed.port}/ok", f"{allowed.url}/ok"):
            with pytest.raises(EgressRefused, match="daemon's own listen address"):
                await shop.measure("web", web_block(url))
    assert allowed.hits == []


async def test_link_local_is_refused_by_default_and_reachable_only_when_named() -> None:
    block = web_block("http://169.254.169.254/latest/meta-data")
    async with registry_for({"a": RequestPolicy()}) as registry:
        with pytest.raises(EgressRefused, match="link-local"):
            await registry.for_namespace("a").measure("web", block)
    named = EgressPolicy.build("b", ["http://169.254.169.254"])
    named.check_url("http://169.254.169.254/latest/meta-data")  # no refusal


async def test_oauth2_token_url_is_held_to_the_same_policy(peers: tuple[Peer, Peer]) -> None:
    allowed, other = peers
    policy = RequestPolicy(EgressPolicy.build("shop", [allowed.url]))
    block = web_block(
        f"{allowed.url}/ok",
        authentication={
            "oauth2": {"tokenUrl": f"{other.url}/token", "clientId": "c", "clientSecret": "s"}
        },
    )
    async with registry_for({"shop": policy}) as registry:
        with pytest.raises(EgressRefused, match="not under any allowed prefix"):
            await registry.for_namespace("shop").measure("web", block)
    assert other.hits == []


async def test_namespaces_with_different_policies_do_not_share_an_answer(
    peers: tuple[Peer, Peer],
) -> None:
    allowed, other = peers
    policies = {
        "open": RequestPolicy(EgressPolicy.build("open", None)),
        "closed": RequestPolicy(EgressPolicy.build("closed", [allowed.url])),
    }
    registry = ProviderRegistry(
        secrets=lambda name, key: None,
        limits=LimitsConfig(coalesce_window=5.0, max_attempts=1),
        scopes=lambda ns: Scope(ns, lambda name, key: None, policies[ns]),
    )
    async with registry:
        block = web_block(f"{other.url}/ok")
        assert (await registry.for_namespace("open").measure("web", block)).result == 1.0
        # Within the reuse window, but another policy: asked afresh, and refused.
        with pytest.raises(EgressRefused):
            await registry.for_namespace("closed").measure("web", block)


@pytest.mark.parametrize("path", ["/huge", "/huge-declared"])
async def test_a_response_past_the_cap_stops_reading_and_names_the_setting(
    peers: tuple[Peer, Peer], path: str
) -> None:
    allowed, _ = peers
    policy = RequestPolicy(
        EgressPolicy.build("shop", None),
        max_response_bytes=1024 * 1024,
        cap_setting="namespaces.shop.maxResponseBytes",
    )
    async with registry_for({"shop": policy}) as registry:
        with pytest.raises(ResponseTooLarge) as info:
            async with asyncio.timeout(10):
                await registry.for_namespace("shop").measure("web", web_block(allowed.url + path))
    assert "1048576-byte cap (namespaces.shop.maxResponseBytes)" in str(info.value)


@pytest.mark.parametrize(
    ("prefix", "url", "allowed"),
    [
        ("https://*.corp.example", "https://prom.corp.example/api", True),
        ("https://*.corp.example", "https://corp.example/api", False),
        ("https://*.corp.example", "https://evilcorp.example/api", False),
        ("https://*.corp.example", "http://prom.corp.example/api", False),
        ("https://api.example.com/v1", "https://api.example.com/v1/q", True),
        ("https://api.example.com/v1", "https://api.example.com/v1", True),
        ("https://api.example.com/v1", "https://api.example.com/v10", False),
        ("https://api.example.com/v1", "https://api.example.com:8443/v1", False),
        ("http://prom:9090", "http://prom:9090/api/v1/query", True),
        ("http://prom:9090", "http://prom/api/v1/query", False),
        ("http://[::1]:9090", "http://[::1]:9090/x", True),
    ],
)
def test_url_prefixes_match_scheme_host_port_and_whole_path_segments(
    prefix: str, url: str, allowed: bool
) -> None:
    policy = EgressPolicy("ns", (parse_prefix(prefix),))
    if allowed:
        policy.check_url(url)
    else:
        with pytest.raises(EgressRefused):
            policy.check_url(url)


async def test_datadog_reads_its_secret_in_the_runs_namespace_and_obeys_its_egress(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from providers.base import ProviderAuthError
    from tests.rigs.datadog_fake import DatadogFake

    for name in ("DD_API_KEY", "DD_APP_KEY", "DD_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    api, app = "dd-api-key-0123456789abcdef", "dd-app-key-fedcba9876543210"
    async with DatadogFake(api_key=api, app_key=app) as fake:
        fake.v1["avg:a{*}"] = [[[int(time.time()) * 1000, 0.5]]]
        keys = {"api-key": api, "app-key": app, "address": fake.url}

        def payments_secrets(secret: str, key: str) -> str | None:
            return keys.get(key) if secret == "datadog" else None

        scopes = {
            "payments": Scope("payments", payments_secrets, RequestPolicy()),
            "shop": Scope("shop", lambda secret, key: None, RequestPolicy()),
            "closed": Scope(
                "closed", payments_secrets, RequestPolicy(EgressPolicy.build("closed", []))
            ),
        }
        registry = ProviderRegistry(
            secrets=lambda secret, key: None,
            limits=LimitsConfig(coalesce_window=0, max_attempts=1),
            scopes=scopes.__getitem__,
        )
        async with registry:
            block = {"query": "avg:a{*}"}
            with pytest.raises(ProviderAuthError, match="API or App key not found"):
                await registry.for_namespace("shop").measure("datadog", block)
            with pytest.raises(EgressRefused, match="namespace 'closed'"):
                await registry.for_namespace("closed").measure("datadog", block)
            reading = await registry.for_namespace("payments").measure("datadog", block)
            assert reading.result == 0.5
