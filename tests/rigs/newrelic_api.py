"""A local NerdGraph (New Relic's GraphQL API) for NRQL queries, executed by graphql-core.

Built from New Relic's NerdGraph documentation (the NRQL query tutorial and the
``NrdbResultContainer`` type): ``POST /graphql`` with ``{"query", "variables"}``, answered by
a real GraphQL executor over the schema subset below, so a document or variable the real API
would refuse is refused here with GraphQL's own error text.

    scalar Nrql, NrdbResult (any JSON)
    Query.actor: Actor
    Actor.account(id: Int!): Account
    Account.nrql(query: Nrql!, timeout: Int, async: Boolean): NrdbResultContainer
    NrdbResultContainer { results currentResults previousResults otherResult totalResult
                          metadata { eventTypes facets messages timeWindow {...} } nrql }

Authentication as NerdGraph does it: no ``Api-Key`` header -> HTTP 401 with a GraphQL error
body; a wrong key -> HTTP 200 with an error whose ``extensions.error_code`` is
``BAD_API_KEY`` (the two cases newrelic-client-go tells apart). An account other than
``account_id`` -> ``data.actor.account: null`` with a "Not authorized" error on that path.

NRQL: ``server.results[nrql] = [rows]`` answers those rows; ``server.nrql_errors[nrql] =
"..."`` answers a NRQL error on ``actor.account.nrql`` (as a syntax error does); any other
NRQL answers ``results: []``. ``server.script`` holds ``Canned`` answers given first.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web
from graphql import GraphQLError, build_schema, graphql

SDL = """
scalar Nrql
scalar NrdbResult
scalar EpochMilliseconds

type Query { actor: Actor }
type Actor { account(id: Int!): Account }
type Account {
  id: Int
  name: String
  nrql(query: Nrql!, timeout: Int, async: Boolean): NrdbResultContainer
}
type NrdbResultContainer {
  results: [NrdbResult]
  currentResults: [NrdbResult]
  previousResults: [NrdbResult]
  otherResult: NrdbResult
  totalResult: NrdbResult
  metadata: NrdbMetadata
  nrql: Nrql
}
type NrdbMetadata {
  eventTypes: [String]
  facets: [String]
  messages: [String]
  timeWindow: NrdbMetadataTimeWindow
}
type NrdbMetadataTimeWindow {
  begin: EpochMilliseconds
  compareWith: String
  end: EpochMilliseconds
  since: String
  until: String
}
"""
SCHEMA = build_schema(SDL)


@dataclass
class Canned:
    status: int
    body: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Seen:
    headers: Mapping[str, str]
    body: Any


class NerdGraph:
    """``async with NerdGraph(api_key="NRAK-...", account_id=1234) as server: server.url``."""

    def __init__(self, *, api_key: str, account_id: int) -> None:
        self.api_key = api_key
        self.account_id = account_id
        self.results: dict[str, list[dict[str, Any]]] = {}
        self.nrql_errors: dict[str, str] = {}
        self.script: list[Canned] = []
        self.requests: list[Seen] = []
        self._runner: web.AppRunner | None = None
        self.base = ""

    @property
    def url(self) -> str:
        """The NerdGraph URL (a profile's ``base-url-nerdgraph``)."""
        return f"{self.base}/graphql"

    async def __aenter__(self) -> NerdGraph:
        app = web.Application()
        app.router.add_post("/graphql", self._graphql)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _account(self, info: Any, id: int) -> dict[str, Any]:
        if id != self.account_id:
            raise GraphQLError(f"Not authorized to access account: {id}")
        return {"id": id, "name": "analysisd tests", "nrql": self._nrql}

    def _nrql(self, info: Any, query: str, timeout: int | None = None, **_: Any) -> dict[str, Any]:
        if query in self.nrql_errors:
            raise GraphQLError(self.nrql_errors[query])
        rows = self.results.get(query, [])
        return {
            "results": rows,
            "nrql": query,
            "metadata": {"eventTypes": ["Transaction"], "facets": None, "messages": []},
        }

    async def _graphql(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = None
        self.requests.append(Seen(dict(request.headers), body))
        if self.script:
            canned = self.script.pop(0)
            if canned.delay_s:
                await asyncio.sleep(canned.delay_s)
            return web.Response(status=canned.status, text=canned.body, headers=canned.headers)
        key = request.headers.get("Api-Key") or request.headers.get("X-Api-Key")
        if not key:
            return web.json_response(
                {"errors": [{"message": "Unauthorized: missing API key"}]}, status=401
            )
        if key != self.api_key:
            return web.json_response(
                {
                    "data": {"actor": None},
                    "errors": [
                        {
                            "message": "Invalid API key",
                            "extensions": {
                                "errorClass": "UNAUTHORIZED",
                                "error_code": "BAD_API_KEY",
                            },
                        }
                    ],
                }
            )
        if not isinstance(body, Mapping) or not isinstance(body.get("query"), str):
            return web.json_response(
                {"errors": [{"message": "Must provide query string."}]}, status=400
            )
        variables = body.get("variables") if isinstance(body.get("variables"), Mapping) else None
        result = await graphql(
            SCHEMA,
            body["query"],
            root_value={"actor": lambda info: {"account": self._account}},
            variable_values=variables,
        )
        answer: dict[str, Any] = {"data": result.data}
        if result.errors:
            answer["errors"] = [error.formatted for error in result.errors]
        return web.json_response(answer)
