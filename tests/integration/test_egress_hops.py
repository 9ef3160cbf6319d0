"""Every hop of a policy session is checked by its client middleware (providers.http).

A redirect to a refused target is refused before it is sent, naming the redirect; a
caller that does not follow redirects (the outbox) gets the 3xx answer itself; the
first URL is refused before anything is sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from providers.egress import EgressPolicy, EgressRefused
from providers.http import RequestPolicy, client_session, using_policy


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

        app = web.Application()
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
