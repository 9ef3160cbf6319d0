"""providers.http.request_checked follows redirects exactly as aiohttp does.

The Web provider sends its first hop without the session's middleware and builds a
redirect's next hop itself (then aiohttp follows the rest). Differential: for every
redirect status, method, Location form and origin change, what the final server sees
(method, body, credentials, path) and what the caller gets (status, body, or the
exception's type) must equal what aiohttp's own redirect handling gives.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from providers.egress import EgressPolicy, EgressRefused
from providers.http import RequestPolicy, client_session, request_checked, using_policy

STATUSES = (301, 302, 303, 307, 308)
KINDS = (
    "absolute",
    "root-relative",
    "relative",
    "scheme-relative-path",
    "scheme-no-slashes",
    "cross-origin",
    "chain2",
    "chain9",
    "chain10",
    "loop",
    "no-location",
    "non-http",
    "query",
)


class Servers:
    def __init__(self) -> None:
        self.runners: list[web.AppRunner] = []
        self.urls: list[str] = []

    async def start(self) -> None:
        for _ in range(2):
            app = web.Application()
            app.router.add_route("*", "/r/{status}/{kind}", self.redirect)
            app.router.add_route("*", "/r/{status}/{kind}/{n}", self.redirect)
            app.router.add_route("*", "/dir/{status}/{kind}", self.redirect)
            app.router.add_route("*", "/echo", self.echo)
            app.router.add_route("*", "/dir/echo", self.echo)
            runner = web.AppRunner(app)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            self.runners.append(runner)
            self.urls.append(f"http://127.0.0.1:{runner.addresses[0][1]}")

    async def redirect(self, request: web.Request) -> web.Response:
        status = int(request.match_info["status"])
        kind = request.match_info["kind"]
        here = self.urls[0] if request.url.port == int(self.urls[0].rsplit(":", 1)[1]) else None
        other = self.urls[1]
        locations = {
            "absolute": f"{here or other}/echo",
            "root-relative": "/echo",
            "relative": "echo",
            "scheme-relative-path": "http:/echo",
            "scheme-no-slashes": "http:echo",
            "cross-origin": f"{other}/echo",
            "query": "/echo?a=1&b=%2F",
        }
        headers: dict[str, str] = {}
        if kind.startswith("chain"):  # exactly that many redirects, then the answer
            n, last = int(request.match_info.get("n", "1")), int(kind[5:])
            headers["Location"] = f"/r/{status}/{kind}/{n + 1}" if n < last else "/echo"
        elif kind == "loop":
            headers["Location"] = f"/r/{status}/loop"
        elif kind == "non-http":
            headers["Location"] = "ftp://127.0.0.1/x"
        elif kind in locations:
            headers["Location"] = locations[kind]
        return web.Response(status=status, headers=headers, text="moved")

    async def echo(self, request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response(
            {
                "method": request.method,
                "path": request.path_qs,
                "host": request.host,
                "body": body.decode(),
                "authorization": request.headers.get("Authorization"),
                "content_type": request.headers.get("Content-Type"),
            }
        )

    async def stop(self) -> None:
        for runner in self.runners:
            await runner.cleanup()


@pytest.fixture
async def servers() -> AsyncIterator[Servers]:
    peers = Servers()
    await peers.start()
    yield peers
    await peers.stop()


async def outcome(response: aiohttp.ClientResponse) -> tuple[int, Any]:
    async with response:
        text = await response.text()
    try:
        return response.status, json.loads(text)
    except ValueError:
        return response.status, text


@pytest.mark.parametrize("method", ["GET", "POST", "PUT"])
async def test_every_redirect_ends_where_aiohttps_own_following_ends(
    servers: Servers, method: str
) -> None:
    headers = {"Authorization": "Bearer s3cret", "Content-Type": "application/json"}
    data = b'{"q": 1}' if method != "GET" else None
    timeout = aiohttp.ClientTimeout(total=10)
    policy = RequestPolicy(EgressPolicy.build("shop", None))
    compared = 0
    async with aiohttp.ClientSession() as plain, client_session() as ours:
        for status in STATUSES:
            for kind in KINDS:
                for prefix in ("/r", "/dir"):
                    url = f"{servers.urls[0]}{prefix}/{status}/{kind}"
                    expected: Any
                    got: Any
                    try:
                        expected = await outcome(
                            await plain.request(
                                method, url, headers=headers, data=data, timeout=timeout
                            )
                        )
                    except aiohttp.ClientError as exc:
                        expected = type(exc).__name__
                    with using_policy(policy):
                        try:
                            got = await outcome(
                                await request_checked(
                                    ours,
                                    method,
                                    url,
                                    headers=headers,
                                    data=data,
                                    client_timeout=timeout,
                                )
                            )
                        except aiohttp.ClientError as exc:
                            got = type(exc).__name__
                    assert got == expected, (method, status, kind, prefix)
                    compared += 1
    assert compared == len(STATUSES) * len(KINDS) * 2


async def test_a_refused_second_hop_is_named_as_a_redirect(servers: Servers) -> None:
    first, other = servers.urls
    policy = RequestPolicy(EgressPolicy.build("shop", [first]))
    async with client_session() as session:
        with using_policy(policy), pytest.raises(EgressRefused) as info:
            await request_checked(
                session,
                "GET",
                f"{first}/r/302/cross-origin",
                headers={},
                data=None,
                client_timeout=aiohttp.ClientTimeout(total=10),
            )
    assert f"(a redirect from {first})" in str(info.value)
    assert other not in str(info.value).split("(a redirect")[1]


async def test_a_refused_first_url_is_never_sent(servers: Servers) -> None:
    first, other = servers.urls
    policy = RequestPolicy(EgressPolicy.build("shop", [first]))
    async with client_session() as session:
        with using_policy(policy), pytest.raises(EgressRefused) as info:
            await request_checked(
                session,
                "GET",
                f"{other}/echo",
                headers={},
                data=None,
                client_timeout=aiohttp.ClientTimeout(total=10),
            )
    assert "a redirect" not in str(info.value)
