"""The five vendor providers obey a namespace's egress policy (providers.http), like the others.

A namespace allowed only ``https://metrics.shop.example/`` cannot reach a peer on 127.0.0.1 through
any of them: the measurement is an Error naming the policy, and nothing is sent. The peer here
is a plain TCP listener that counts connections.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from providers.egress import EgressPolicy
from providers.http import RequestPolicy
from providers.registry import ProviderRegistry, Scope
from tests.rigs.phases import measure_metric

pytestmark = pytest.mark.integration


@pytest.fixture
async def listener() -> AsyncIterator[tuple[str, list[int]]]:
    connections: list[int] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", connections
    finally:
        server.close()
        await server.wait_closed()


def blocks(url: str) -> dict[str, dict[str, Any]]:
    return {
        "graphite": {"address": url, "query": "target=a.b&from=-5min"},
        "influxdb": {"query": 'from(bucket: "b") |> range(start: -5m)'},
        "newRelic": {"query": "SELECT count(*) FROM Transaction"},
        "wavefront": {"address": url, "query": 'ts("a.b")'},
        "skywalking": {"address": url, "query": "{ a }", "interval": "5m"},
    }


@pytest.mark.parametrize("kind", ["graphite", "influxdb", "newRelic", "wavefront", "skywalking"])
async def test_a_namespace_cannot_reach_what_its_policy_refuses(
    listener: tuple[str, list[int]], kind: str
) -> None:
    url, connections = listener
    values = {
        ("influxdb", "authToken"): "t0ken-influx",
        ("influxdb", "org"): "acme",
        ("influxdb", "address"): url,
        ("newrelic", "personal-api-key"): "NRAK-KEY",
        ("newrelic", "account-id"): "1",
        ("newrelic", "base-url-nerdgraph"): f"{url}/graphql",
        ("wavefront-api-tokens", "127.0.0.1"): "wf-token",
    }
    policy = RequestPolicy(egress=EgressPolicy.build("shop", ["https://metrics.shop.example/"]))

    def scopes(namespace: str) -> Scope:
        return Scope(namespace, lambda s, k: values.get((s, k)), policy)

    async with ProviderRegistry(secrets=lambda s, k: None, scopes=scopes) as registry:
        view = registry.for_namespace("shop")
        spec = {"name": "m", "provider": {kind: blocks(url)[kind]}}
        outcome = await _measure_in(view, spec)
    assert outcome.phase == "Error"
    assert "shop" in outcome.message and "127.0.0.1" in outcome.message, outcome.message
    assert type(outcome.error).__name__ == "EgressRefused"
    assert connections == []


async def _measure_in(view: Any, spec: dict[str, Any]) -> Any:
    class _Scoped:
        def bind(self, kind: str, config: Any) -> Any:
            return view.bind(kind, config)

    return await measure_metric(_Scoped(), spec)  # type: ignore[arg-type]
