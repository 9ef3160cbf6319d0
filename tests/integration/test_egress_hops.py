"""Every hop of a policy session is checked by its client middleware (providers.http).

A redirect to a refused target is refused before it is sent, naming the redirect; a
caller that does not follow redirects (the outbox) gets the 3xx answer itself; the
first URL is refused before anything is sent. And the response cap: a body with a
Content-Length is read in one go when it fits, a compressed one is counted as it
is decompressed.
"""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from providers.egress import EgressPolicy, EgressRefused
from providers.http import (
    RequestPolicy,
    ResponseTooLarge,
    client_session,
    read_capped,
    using_policy,
)


class Peer:
    def __init__(self) -> None:
        self.hits: list[str] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self, target: str = "") -> None:
        async def away(request: web.Request) -> web.Response:
            self.hits.append(request.path)
            raise web.HTTPFound(f"{target}/ok?token=s3cret")

        async def ok(request: web.Request) -> web.Response:
            self.hits.append(request.path)
            return web.json_response({"v": 1})

        async def bomb(request: web.Request) -> web.Response:
            body = gzip.compress(b"0" * 1_000_000)  # about 1 KB on the wire
            return web.Response(body=body, headers={"Content-Encoding": "gzip"})

        async def plain(request: web.Request) -> web.Response:
            return web.Response(body=b"x" * 5000)

        app = web.Application()
        app.router.add_get("/bomb", bomb)
        app.router.add_get("/plain", plain)
        app.router.add_get("/away", away)
        app.router.add_get("/ok", ok)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"


@pytest.fixture
async def peers() -> AsyncIterator[tuple[Peer, Peer]]:
    allowed, other = Peer(), Peer()
    await other.start()
    await allowed.start(other.url)
    yield allowed, other
    for peer in (allowed, other):
        assert peer.runner is not None
        await peer.runner.cleanup()


async def test_a_refused_redirect_target_is_named_as_a_redirect_and_never_sent(
    peers: tuple[Peer, Peer],
) -> None:
    allowed, other = peers
    policy = RequestPolicy(EgressPolicy.build("shop", [allowed.url]))
    async with client_session() as session:
        with using_policy(policy), pytest.raises(EgressRefused) as info:
            async with session.get(f"{allowed.url}/away"):
                pass
    message = str(info.value)
    assert "not under any allowed prefix" in message
    assert f"(a redirect from {allowed.url})" in message
    assert "s3cret" not in message
    assert allowed.hits == ["/away"] and other.hits == []


async def test_an_allowed_redirect_is_followed(peers: tuple[Peer, Peer]) -> None:
    allowed, other = peers
    policy = RequestPolicy(EgressPolicy.build("shop", [allowed.url, other.url]))
    async with client_session() as session:
        with using_policy(policy):
            async with session.get(f"{allowed.url}/away") as response:
                assert await response.json() == {"v": 1}
    assert other.hits == ["/ok"]


async def test_without_following_the_3xx_answer_is_the_callers(peers: tuple[Peer, Peer]) -> None:
    allowed, other = peers
    policy = RequestPolicy(EgressPolicy.build("shop", [allowed.url]))
    async with client_session() as session:
        with using_policy(policy):
            async with session.get(f"{allowed.url}/away", allow_redirects=False) as response:
                assert response.status == 302
            # The next request of the task is an ordinary first hop, refused plainly.
            with pytest.raises(EgressRefused) as info:
                async with session.get(f"{other.url}/ok"):
                    pass
    assert "a redirect from" not in str(info.value)
    assert other.hits == []


async def test_a_callers_own_middleware_runs_after_the_policy(peers: tuple[Peer, Peer]) -> None:
    allowed, other = peers
    seen: list[str] = []

    async def mine(
        request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        seen.append(str(request.url))
        return await handler(request)

    policy = RequestPolicy(EgressPolicy.build("shop", [allowed.url]))
    async with client_session(middlewares=(mine,)) as session:
        with using_policy(policy):
            async with session.get(f"{allowed.url}/ok") as response:
                assert response.status == 200
            with pytest.raises(EgressRefused):
                async with session.get(f"{other.url}/ok"):
                    pass
    assert seen == [f"{allowed.url}/ok"]  # the refused request never reached it


async def test_the_cap_counts_a_compressed_body_as_decompressed(peers: tuple[Peer, Peer]) -> None:
    allowed, _ = peers
    policy = RequestPolicy(EgressPolicy.build("shop", [allowed.url]), max_response_bytes=100_000)
    async with client_session() as session:
        with using_policy(policy):
            async with session.get(f"{allowed.url}/bomb") as response:
                assert response.content_length is not None
                assert response.content_length < 100_000
                with pytest.raises(ResponseTooLarge, match="100000-byte cap"):
                    await read_capped(response, "web", allowed.url)
            async with session.get(f"{allowed.url}/plain") as response:
                assert await read_capped(response, "web", allowed.url) == b"x" * 5000
            async with session.get(f"{allowed.url}/plain") as response:
                with pytest.raises(ResponseTooLarge, match="Content-Length 5000"):
                    await read_capped(response, "web", allowed.url, 4000)
