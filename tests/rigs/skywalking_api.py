"""A local SkyWalking OAP query endpoint (``POST /graphql``), executed by graphql-core.

Built from SkyWalking's query protocol (``metrics-v2.graphqls``, ``common.graphqls``): the
metrics queries Argo's SkyWalking examples use, over the schema subset below, so a document,
argument or variable OAP would refuse is refused here with GraphQL's own error.

    scalar Long
    enum Scope { All Service ServiceInstance Endpoint Process ServiceRelation ... }
    enum Step { DAY HOUR MINUTE SECOND }
    input Duration { start: String!, end: String!, step: Step!, coldStage: Boolean }
    input Entity { scope, serviceName, normal, serviceInstanceName, endpointName, dest... }
    input MetricsCondition { name: String!, entity: Entity! }
    type KVInt { id: ID!, value: Long, isEmptyValue: Boolean! }
    type IntValues { values: [KVInt!]! }
    type MetricsValues { label: String, values: IntValues }
    Query.readMetricsValues(condition, duration): MetricsValues!
    Query.readMetricsValue(condition, duration): Long!

Data: ``server.metrics[(metric name, service name)] = [values]``, one per minute, the last
one at the end of any duration asked for; minutes before the first are empty (value 0,
``isEmptyValue: true``, as OAP answers). A duration whose start or end is not
``yyyy-MM-dd HHmm`` (step MINUTE) is OAP's error; an unknown metric name too.

With ``basic_auth=(user, password)`` requests without those credentials get 401 (an OAP
behind an authenticating proxy). ``server.script`` holds ``Canned`` answers given first.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from aiohttp import web
from graphql import GraphQLError, build_schema, graphql

SDL = """
scalar Long

enum Scope {
  All Service ServiceInstance Endpoint Process
  ServiceRelation ServiceInstanceRelation EndpointRelation ProcessRelation
}
enum Step { DAY HOUR MINUTE SECOND }

input Duration { start: String!  end: String!  step: Step!  coldStage: Boolean }
input Entity {
  scope: Scope
  serviceName: String
  normal: Boolean
  serviceInstanceName: String
  endpointName: String
  processName: String
  destServiceName: String
  destNormal: Boolean
  destServiceInstanceName: String
  destEndpointName: String
  destProcessName: String
}
input MetricsCondition { name: String!  entity: Entity! }

type KVInt { id: ID!  value: Long  isEmptyValue: Boolean! }
type IntValues { values: [KVInt!]! }
type MetricsValues { label: String  values: IntValues }

type Query {
  readMetricsValues(condition: MetricsCondition!, duration: Duration!): MetricsValues!
  readMetricsValue(condition: MetricsCondition!, duration: Duration!): Long!
}
"""
SCHEMA = build_schema(SDL)
_FORMATS = {"MINUTE": "%Y-%m-%d %H%M", "HOUR": "%Y-%m-%d %H", "DAY": "%Y-%m-%d"}


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


class SkyWalkingOap:
    """``async with SkyWalkingOap() as oap: oap.url`` (the OAP's base address)."""

    def __init__(self, *, basic_auth: tuple[str, str] | None = None) -> None:
        self.metrics: dict[tuple[str, str], Sequence[int]] = {}
        self.script: list[Canned] = []
        self.requests: list[Seen] = []
        self._expected = (
            "Basic " + base64.b64encode(f"{basic_auth[0]}:{basic_auth[1]}".encode()).decode()
            if basic_auth
            else None
        )
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> SkyWalkingOap:
        app = web.Application()
        app.router.add_post("/graphql", self._graphql)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- resolvers

    def _minutes(self, duration: Mapping[str, Any]) -> list[datetime]:
        step = duration["step"]
        pattern = _FORMATS.get(step)
        if pattern is None:
            raise GraphQLError(f"Unsupported step: {step}")
        try:
            start = datetime.strptime(duration["start"], pattern)
            end = datetime.strptime(duration["end"], pattern)
        except ValueError:
            raise GraphQLError(
                f'Unparseable date: "{duration["start"]}" / "{duration["end"]}"'
            ) from None
        if end < start:
            raise GraphQLError("Duration end is before start")
        unit = {"MINUTE": timedelta(minutes=1), "HOUR": timedelta(hours=1)}.get(
            step, timedelta(days=1)
        )
        slots = []
        while start <= end and len(slots) < 10_000:
            slots.append(start)
            start += unit
        return slots

    def _series(self, condition: Mapping[str, Any]) -> tuple[str, Sequence[int]]:
        name = condition["name"]
        service = condition["entity"].get("serviceName") or ""
        known = {metric for metric, _ in self.metrics}
        if name not in known:
            raise GraphQLError(f"Metrics [{name}] is not defined")
        return name, self.metrics.get((name, service), [])

    def _read_values(self, info: Any, condition: Any, duration: Any) -> dict[str, Any]:
        name, values = self._series(condition)
        slots = self._minutes(duration)
        padded = [None] * max(0, len(slots) - len(values)) + list(values)[-len(slots) :]
        return {
            "label": None,
            "values": {
                "values": [
                    {
                        "id": f"{name}_{slot:%Y%m%d%H%M}",
                        "value": 0 if value is None else value,
                        "isEmptyValue": value is None,
                    }
                    for slot, value in zip(slots, padded, strict=True)
                ]
            },
        }

    def _read_value(self, info: Any, condition: Any, duration: Any) -> int:
        _, values = self._series(condition)
        slots = self._minutes(duration)
        present = list(values)[-len(slots) :]
        return sum(present) // len(present) if present else 0

    # -- HTTP

    async def _graphql(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = None
        self.requests.append(Seen(dict(request.headers), body))
        if self._expected is not None and request.headers.get("Authorization") != self._expected:
            return web.Response(status=401, text="401 Unauthorized\n")
        if self.script:
            canned = self.script.pop(0)
            if canned.delay_s:
                await asyncio.sleep(canned.delay_s)
            return web.Response(status=canned.status, text=canned.body, headers=canned.headers)
        if not isinstance(body, Mapping) or not isinstance(body.get("query"), str):
            return web.json_response({"errors": [{"message": "query is required"}]}, status=400)
        variables = body.get("variables") if isinstance(body.get("variables"), Mapping) else None
        result = await graphql(
            SCHEMA,
            body["query"],
            root_value={
                "readMetricsValues": self._read_values,
                "readMetricsValue": self._read_value,
            },
            variable_values=variables,
        )
        answer: dict[str, Any] = {"data": result.data}
        if result.errors:
            answer["errors"] = [error.formatted for error in result.errors]
        return web.json_response(answer)
