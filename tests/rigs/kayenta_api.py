"""A local Kayenta (the three endpoints Argo's kayenta provider calls), from Kayenta's API.

- ``GET /canaryConfig?application=&configurationAccountName=``: the stored configs of that
  application as Kayenta lists them (``id``, ``name``, ``updatedTimestamp``,
  ``updatedTimestampIso``, ``applications``); ``server.configs[id] = (name, [apps])``.
- ``POST /canary/{configId}?application=&metricsAccountName=&configurationAccountName=
  &storageAccountName=`` with a CanaryAdhocExecutionRequest-like body (``scopes``,
  ``thresholds``): 200 ``{"canaryExecutionId": "..."}``; an unknown config id is 404 with
  Spring's error body, a body that is not JSON or has no ``scopes`` a 400.
- ``GET /canary/{executionId}``: the CanaryExecutionStatusResponse: ``complete`` false
  (``status: running``) for the first ``server.polls_to_complete`` reads, then
  ``complete: true``, ``status: succeeded`` and ``result.judgeResult.score`` with
  ``server.score`` and its classification against the request's thresholds. An unknown
  execution id is 404. ``server.never_complete`` keeps every execution running.

``server.script`` holds ``Canned`` answers given first (by path prefix, or for any path);
``server.requests`` keeps each request (method, path, query, body text, headers).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from aiohttp import web


@dataclass
class Canned:
    status: int
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    path_prefix: str = ""  # "" answers any path; else only paths starting with it


EXECUTION_PREFIX = "01"  # every execution id starts with it (as Kayenta's ULIDs do)


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    body: str
    headers: dict[str, str]


@dataclass
class Execution:
    config_id: str
    application: str
    request: dict[str, Any]
    reads: int = 0


def spring_error(status: int, reason: str, message: str, path: str) -> web.Response:
    """Kayenta's (Spring Boot's) error body."""
    body = {
        "timestamp": datetime.now(UTC).isoformat(),
        "status": status,
        "error": reason,
        "message": message,
        "path": path,
    }
    return web.json_response(body, status=status)


def classification(score: float, thresholds: dict[str, Any]) -> str:
    if score >= float(thresholds.get("pass", 100)):
        return "Pass"
    if score >= float(thresholds.get("marginal", 75)):
        return "Marginal"
    return "Fail"


class KayentaApi:
    """``async with KayentaApi() as server: server.url``."""

    def __init__(self) -> None:
        self.configs: dict[str, tuple[str, list[str]]] = {}
        self.executions: dict[str, Execution] = {}
        self.score: float = 95.0
        self.polls_to_complete = 1
        self.never_complete = False
        self.script: list[Canned] = []
        self.requests: list[Seen] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    def add_config(self, name: str, application: str) -> str:
        config_id = str(uuid.uuid4())
        while config_id.startswith(EXECUTION_PREFIX):
            # Never the executions' prefix: a test scripting answers for "/canary/01..."
            # (the polls) must not catch the start request of a config id that begins
            # with it (one in 256 did).
            config_id = str(uuid.uuid4())
        self.configs[config_id] = (name, [application])
        return config_id

    async def __aenter__(self) -> KayentaApi:
        app = web.Application(middlewares=[self._record_and_script])
        app.router.add_get("/canaryConfig", self._list_configs)
        app.router.add_post("/canary/{config_id}", self._start)
        app.router.add_get("/canary/{execution_id}", self._status)
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

    @web.middleware
    async def _record_and_script(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.text()
        self.requests.append(
            Seen(request.method, request.path, dict(request.query), body, dict(request.headers))
        )
        for i, canned in enumerate(self.script):
            if request.path.startswith(canned.path_prefix):
                del self.script[i]
                if canned.delay_s:
                    await asyncio.sleep(canned.delay_s)
                return web.Response(
                    status=canned.status,
                    text=canned.body,
                    headers=canned.headers,
                    content_type=None if "Content-Type" in canned.headers else "application/json",
                )
        response: web.StreamResponse = await handler(request)
        return response

    async def _list_configs(self, request: web.Request) -> web.Response:
        application = request.query.get("application")
        now = int(time.time() * 1000)
        listed = [
            {
                "id": config_id,
                "name": name,
                "updatedTimestamp": now,
                "updatedTimestampIso": datetime.fromtimestamp(now / 1000, UTC).isoformat(),
                "applications": applications,
            }
            for config_id, (name, applications) in self.configs.items()
            if application is None or application in applications
        ]
        return web.json_response(listed)

    async def _start(self, request: web.Request) -> web.Response:
        config_id = request.match_info["config_id"]
        if config_id not in self.configs:
            return spring_error(
                404, "Not Found", f"No canary config with id '{config_id}' found", request.path
            )
        try:
            body = json.loads(await request.text())
        except ValueError as exc:
            return spring_error(400, "Bad Request", f"JSON parse error: {exc}", request.path)
        if not isinstance(body, dict) or not isinstance(body.get("scopes"), dict):
            return spring_error(400, "Bad Request", "scopes are required", request.path)
        execution_id = f"{EXECUTION_PREFIX}{uuid.uuid4().hex[:24].upper()}"
        self.executions[execution_id] = Execution(
            config_id, request.query.get("application", ""), body
        )
        return web.json_response({"canaryExecutionId": execution_id})

    async def _status(self, request: web.Request) -> web.Response:
        execution_id = request.match_info["execution_id"]
        execution = self.executions.get(execution_id)
        if execution is None:
            return spring_error(
                404, "Not Found", f"No canary execution with id '{execution_id}'", request.path
            )
        execution.reads += 1
        status: dict[str, Any] = {
            "application": execution.application,
            "pipelineId": execution_id,
            "canaryConfigId": execution.config_id,
            "stageStatus": {"fetchControl0": "succeeded", "judge": "running"},
            "complete": False,
            "status": "running",
        }
        if self.never_complete or execution.reads < self.polls_to_complete:
            return web.json_response(status)
        thresholds = execution.request.get("thresholds") or {}
        status.update(
            complete=True,
            status="succeeded",
            stageStatus={"fetchControl0": "succeeded", "judge": "succeeded"},
            result={
                "judgeResult": {
                    "judgeName": "NetflixACAJudge-v1.0",
                    "results": [],
                    "groupScores": [],
                    "score": {
                        "score": self.score,
                        "classification": classification(self.score, thresholds),
                        "classificationReason": "",
                    },
                },
                "canaryDuration": "PT30M",
            },
        )
        return web.json_response(status)
