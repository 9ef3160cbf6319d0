"""A faithful local Datadog metrics API on 127.0.0.1 for the real datadog-api-client.

No real Datadog can be reached from tests, so this server answers the three
endpoints analysisd uses with Datadog's request checks and response shapes:

- ``GET /api/v1/query?from=&to=&query=`` (seconds) -> ``{"status": "ok",
  "res_type": "time_series", "series": [{"pointlist": [[ms, v], ...], ...}], ...}``
- ``POST /api/v2/query/scalar`` (``data.type == "scalar_request"``, ms times,
  metrics queries need ``aggregator``) -> ``{"data": {"type": "scalar_response",
  "attributes": {"columns": [group columns..., number column]}}}``
- ``POST /api/v2/query/timeseries`` (``timeseries_request``) -> ``{"data":
  {"type": "timeseries_response", "attributes": {"series", "times", "values"}}}``

Authentication: ``DD-API-KEY`` and ``DD-APPLICATION-KEY`` must match, else 403
``{"errors": ["Forbidden"]}`` (Datadog's answer). A malformed request is a 400
with ``{"errors": [...]}``. Tests choose answers per query text (``v1``,
``scalar``, ``timeseries``) and can queue canned raw answers (``script``: 429
with X-RateLimit-Reset, 5xx, garbage, empty body, slow answers) which are served
first, in order. Every request is recorded in ``requests``.

Use: ``async with DatadogFake(api_key=..., app_key=...) as fake: fake.url``.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web

JSON = "application/json"


@dataclass
class Canned:
    """One raw answer served instead of the computed one."""

    status: int = 200
    body: str | bytes = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class ScalarAnswer:
    """A scalar answer: one number per group (``groups`` None -> ungrouped)."""

    values: list[float | None]
    groups: list[list[str]] | None = None
    group_name: str = "service"


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]


class DatadogFake:
    def __init__(self, *, api_key: str = "test-api-key", app_key: str = "test-app-key") -> None:
        self.api_key = api_key
        self.app_key = app_key
        # v1: query text -> list of series, each a pointlist [[ms, value], ...]
        self.v1: dict[str, list[list[list[Any]]]] = {}
        # v2 scalar: formula text -> answer (formula == query name for a lone query)
        self.scalar: dict[str, ScalarAnswer] = {}
        # v2 timeseries: the query text of the first query -> (times ms, [values per series])
        self.timeseries: dict[str, tuple[list[int], list[list[float | None]]]] = {}
        self.script: list[Canned] = []
        self.requests: list[RecordedRequest] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> DatadogFake:
        app = web.Application()
        app.router.add_get("/api/v1/query", self._v1_query)
        app.router.add_post("/api/v2/query/scalar", self._v2_scalar)
        app.router.add_post("/api/v2/query/timeseries", self._v2_timeseries)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ------------------------------------------------------------ common checks

    async def _prologue(self, request: web.Request) -> web.StreamResponse | Any:
        """Record, serve scripted answers, check keys; return the parsed body or a response."""
        raw = await request.read()
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        self.requests.append(
            RecordedRequest(
                request.method, request.path, dict(request.query), body, dict(request.headers)
            )
        )
        if self.script:
            canned = self.script.pop(0)
            if canned.delay_s:
                await asyncio.sleep(canned.delay_s)
            return web.Response(status=canned.status, body=canned.body, headers=canned.headers)
        if (
            request.headers.get("DD-API-KEY") != self.api_key
            or request.headers.get("DD-APPLICATION-KEY") != self.app_key
        ):
            return _errors(403, "Forbidden")
        return body

    # ------------------------------------------------------------ endpoints

    async def _v1_query(self, request: web.Request) -> web.StreamResponse:
        checked = await self._prologue(request)
        if isinstance(checked, web.StreamResponse):
            return checked
        params = request.query
        for name in ("from", "to", "query"):
            if name not in params:
                return _errors(400, f"The parameter '{name}' is required")
        try:
            start, end = int(params["from"]), int(params["to"])
        except ValueError:
            return _errors(400, "from and to must be integers (seconds)")
        query = params["query"]
        series = [
            {
                "pointlist": points,
                "metric": query,
                "scope": "*",
                "expression": query,
                "display_name": query,
                "aggr": None,
                "length": len(points),
                "start": start * 1000,
                "end": end * 1000,
                "interval": 60,
                "unit": None,
                "query_index": 0,
                "tag_set": [],
            }
            for points in self.v1.get(query, [])
        ]
        return web.json_response(
            {
                "status": "ok",
                "res_type": "time_series",
                "resp_version": 1,
                "query": query,
                "from_date": start * 1000,
                "to_date": end * 1000,
                "series": series,
                "values": [],
                "times": [],
                "message": "",
                "group_by": [],
            }
        )

    async def _v2_scalar(self, request: web.Request) -> web.StreamResponse:
        checked = await self._prologue(request)
        if isinstance(checked, web.StreamResponse):
            return checked
        problem = _check_formula_request(checked, "scalar_request", needs_aggregator=True)
        if problem:
            return _errors(400, problem)
        attributes = checked["data"]["attributes"]
        formulas = attributes.get("formulas") or []
        formula = formulas[0]["formula"] if formulas else attributes["queries"][0]["name"]
        answer = self.scalar.get(formula)
        columns: list[dict[str, Any]] = []
        if answer is not None:
            if answer.groups is not None:
                columns.append(
                    {"name": answer.group_name, "type": "group", "values": answer.groups}
                )
            columns.append(
                {
                    "name": formula,
                    "type": "number",
                    "values": answer.values,
                    "meta": {"unit": None},
                }
            )
        return web.json_response(
            {"data": {"type": "scalar_response", "attributes": {"columns": columns}}}
        )

    async def _v2_timeseries(self, request: web.Request) -> web.StreamResponse:
        checked = await self._prologue(request)
        if isinstance(checked, web.StreamResponse):
            return checked
        problem = _check_formula_request(checked, "timeseries_request", needs_aggregator=False)
        if problem:
            return _errors(400, problem)
        attributes = checked["data"]["attributes"]
        times, values = self.timeseries.get(attributes["queries"][0]["query"], ([], []))
        series: list[dict[str, Any]] = [
            {"group_tags": [], "query_index": 0, "unit": None} for _ in values
        ]
        return web.json_response(
            {
                "data": {
                    "type": "timeseries_response",
                    "attributes": {"series": series, "times": times, "values": values},
                }
            }
        )


def _errors(status: int, *messages: str) -> web.Response:
    return web.json_response({"errors": list(messages)}, status=status)


def _check_formula_request(body: Any, kind: str, *, needs_aggregator: bool) -> str:
    """Datadog's validation of a formula query request; '' when it is fine."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        return "Invalid body: 'data' is required"
    data = body["data"]
    if data.get("type") != kind:
        return f"Invalid type: expected {kind!r}"
    attributes = data.get("attributes")
    if not isinstance(attributes, dict):
        return "Invalid body: 'data.attributes' is required"
    for name in ("from", "to"):
        if not isinstance(attributes.get(name), int) or isinstance(attributes.get(name), bool):
            return f"Invalid '{name}': an integer (milliseconds) is required"
    if attributes["from"] >= attributes["to"]:
        return "Invalid time range: 'from' must be before 'to'"
    if attributes["to"] < 10_000_000_000:
        return "Invalid time range: times are in milliseconds"
    queries = attributes.get("queries")
    if not isinstance(queries, list) or not queries:
        return "Invalid body: at least one query is required"
    names = set()
    for index, query in enumerate(queries):
        if not isinstance(query, dict):
            return f"queries[{index}] must be an object"
        if query.get("data_source") != "metrics":
            return f"queries[{index}].data_source: only 'metrics' is served here"
        if not isinstance(query.get("query"), str) or not query["query"]:
            return f"queries[{index}].query is required"
        if needs_aggregator and not query.get("aggregator"):
            return f"queries[{index}].aggregator is required"
        names.add(query.get("name"))
    for index, formula in enumerate(attributes.get("formulas") or []):
        if not isinstance(formula, dict) or not isinstance(formula.get("formula"), str):
            return f"formulas[{index}].formula is required"
    interval = attributes.get("interval", 1)
    if kind == "timeseries_request" and (not isinstance(interval, int) or interval <= 0):
        return "Invalid 'interval': a positive integer (milliseconds) is required"
    return ""
