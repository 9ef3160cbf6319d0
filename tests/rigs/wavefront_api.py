"""A local Wavefront chart query API (``GET /api/v2/chart/api``), from Wavefront's API reference.

- ``Authorization: Bearer <token>`` required: otherwise 401 with Wavefront's status body
  ``{"status": {"result": "ERROR", "message": "...", "code": 401}}``.
- ``q`` (the query) and ``s`` (start, epoch ms) required: otherwise 400 with
  ``{"query": ..., "errorType": "BadRequest", "errorMessage": ...}``.
- ``server.series[query] = [Series(label, points, host, tags)]`` answers those series, each
  with its points in ``[s, e]`` (``e`` defaults to now) and, with ``i=true``, the points
  outside the window too; ``p`` (max points) keeps the points nearest ``s``. Another query
  answers no ``timeseries`` and the warning ``No metrics matching - <query>``, as Wavefront
  does; ``server.query_errors[query] = "..."`` answers 400 ``QueryExecutionFailed``.
- Answers carry ``query``, ``name``, ``granularity``, ``stats``, ``timeseries`` (label, host,
  tags, data as ``[epoch s, value]``) like the API's fixtures.

``server.script`` holds ``Canned`` answers given first; ``server.requests`` keeps each request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web


@dataclass
class Series:
    label: str
    points: Sequence[tuple[float, float]]  # (epoch seconds, value)
    host: str = "checkout-7f9c"
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Canned:
    status: int
    body: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Seen:
    query: Mapping[str, str]
    headers: Mapping[str, str]


class WavefrontApi:
    """``async with WavefrontApi(token="t") as server: server.url``."""

    def __init__(self, *, token: str) -> None:
        self.token = token
        self.series: dict[str, list[Series]] = {}
        self.query_errors: dict[str, str] = {}
        self.script: list[Canned] = []
        self.requests: list[Seen] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> WavefrontApi:
        app = web.Application()
        app.router.add_get("/api/v2/chart/api", self._chart)
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

    async def _chart(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(Seen(dict(request.query), dict(request.headers)))
        if self.script:
            canned = self.script.pop(0)
            if canned.delay_s:
                await asyncio.sleep(canned.delay_s)
            return web.Response(status=canned.status, text=canned.body, headers=canned.headers)
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response(
                {"status": {"result": "ERROR", "message": "Authorization required", "code": 401}},
                status=401,
            )
        query = request.query.get("q", "")
        if not query or "s" not in request.query:
            return web.json_response(
                {
                    "query": query,
                    "errorType": "BadRequest",
                    "errorMessage": "q and s are required",
                },
                status=400,
            )
        if query in self.query_errors:
            return web.json_response(
                {
                    "query": query,
                    "errorType": "QueryExecutionFailed",
                    "errorMessage": self.query_errors[query],
                },
                status=400,
            )
        try:
            start = int(request.query["s"]) / 1000
            end = int(request.query.get("e") or time.time() * 1000) / 1000
            max_points = int(request.query.get("p") or 0)
        except ValueError:
            return web.json_response(
                {"query": query, "errorType": "BadRequest", "errorMessage": "s, e, p: numbers"},
                status=400,
            )
        outside = request.query.get("i") == "true"
        answer: dict[str, Any] = {
            "query": query,
            "name": query,
            "granularity": 1,
            "stats": {"keys": 1, "points": 1, "summaries": 1, "latency": 1, "queries": 1},
        }
        found = self.series.get(query)
        if not found:
            answer["warnings"] = f"No metrics matching - {query}"
            return web.json_response(answer)
        timeseries = []
        for series in found:
            points = sorted(series.points)
            if not outside:
                points = [p for p in points if start <= p[0] <= end]
            if max_points > 0:
                points = sorted(points, key=lambda p: abs(p[0] - start))[:max_points]
                points.sort()
            if not points and not outside:
                continue
            timeseries.append(
                {
                    "label": series.label,
                    "host": series.host,
                    "tags": dict(series.tags),
                    "data": [[int(stamp), value] for stamp, value in points],
                }
            )
        if timeseries:
            answer["timeseries"] = timeseries
        return web.json_response(answer)
