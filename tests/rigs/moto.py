"""A real ``moto_server`` on 127.0.0.1 for CloudWatch tests (session-scoped).

Import into a test module::

    from tests.rigs.moto import moto_server, aws_env  # noqa: F401

``moto_server`` starts ``moto_server -H 127.0.0.1 -p <free port>`` once per
session and yields a :class:`MotoServer` (``url``, ``region``). ``aws_env`` (per
test) points the AWS SDK at it through the environment: dummy credentials,
``AWS_REGION``/``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL`` (aiobotocore honours
it), no shared config files and no instance metadata — and restores the
environment afterwards. :class:`CloudWatchFake` covers what moto cannot.

What moto does and does not do (checked with moto 5.2): GetMetricData answers
MetricStat queries (buckets start at StartTime, empty buckets omitted, newest
first) but returns empty Values for metric-math Expression queries; percentile
statistics (p99) answer HTTP 500; ``Messages`` and ``NextToken`` never appear;
Namespace is ignored when Dimensions are given. State is shared for the whole
session, so tests use their own namespaces (:func:`unique_namespace`).
"""

from __future__ import annotations

import ast
import asyncio
import json
import math
import os
import shutil
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from aiohttp import web

from tests.rigs.peers import peer_missing

REGION = "us-east-1"
STARTUP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class MotoServer:
    url: str
    region: str = REGION


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def unique_namespace(prefix: str = "analysisd-test") -> str:
    return f"{prefix}/{uuid.uuid4().hex[:12]}"


def _wait_until_serving(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=1.0):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"moto_server did not serve {url} within {STARTUP_TIMEOUT_S}s")


def require_moto_server(name: str = "moto_server") -> str:
    """The moto_server executable; skip (fail under CI) when it is not installed."""
    binary = shutil.which(name)
    if binary is None:
        peer_missing(f"{name} is not installed (pip install 'moto[server]')")
    return binary


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    binary = require_moto_server()
    port = free_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    process = subprocess.Popen(
        [binary, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(url, process)
        yield MotoServer(url=url)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def aws_env(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """Point the AWS SDK at moto for one test, with dummy credentials."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", moto_server.region)
    monkeypatch.setenv("AWS_DEFAULT_REGION", moto_server.region)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.url)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return moto_server


# ---------------------------------------------------------------- where moto falls short


@dataclass
class FakeReply:
    """A raw answer the fake serves instead of a computed one (faults)."""

    status: int = 200
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


MetricKey = tuple[str, str, tuple[tuple[str, str], ...]]  # namespace, name, dimensions


class CloudWatchFake:
    """A small CloudWatch GetMetricData server speaking botocore's JSON 1.0 protocol.

    It does what moto does not: metric-math ``Expression`` queries (``+ - * /``
    between query ids and numbers, matched by timestamp), ``Messages`` and
    ``NextToken`` paging (``page_size``). Data: ``put(namespace, name, points,
    dimensions)`` with ``points`` = [(datetime, value)]; MetricStat buckets
    aggregate with Sum, Average, Minimum, Maximum or SampleCount per Period,
    from StartTime, empty buckets omitted, newest first unless
    ``ScanBy=TimestampAscending``. ``script`` holds canned replies served first.
    """

    TARGET = "GraniteServiceVersion20100801.GetMetricData"

    def __init__(
        self, *, page_size: int | None = None, messages: list[dict[str, str]] | None = None
    ) -> None:
        self.page_size = page_size
        self.messages = messages or []
        self.data: dict[
            tuple[str, str, tuple[tuple[str, str], ...]], list[tuple[float, float]]
        ] = {}
        self.script: list[FakeReply] = []
        self.requests: list[dict[str, Any]] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    def put(
        self,
        namespace: str,
        name: str,
        points: list[tuple[datetime, float]],
        dimensions: dict[str, str] | None = None,
    ) -> None:
        key = (namespace, name, tuple(sorted((dimensions or {}).items())))
        self.data.setdefault(key, []).extend((ts.timestamp(), value) for ts, value in points)

    async def __aenter__(self) -> CloudWatchFake:
        app = web.Application()
        app.router.add_post("/", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        self.requests.append(body)
        if self.script:
            reply = self.script.pop(0)
            if reply.delay_s:
                await asyncio.sleep(reply.delay_s)
            return web.Response(status=reply.status, text=reply.body, headers=reply.headers)
        if request.headers.get("X-Amz-Target") != self.TARGET:
            return _aws_error(400, "UnknownOperationException", "only GetMetricData is served")
        if "Authorization" not in request.headers:
            return _aws_error(403, "MissingAuthenticationToken", "Request is missing a signature")
        try:
            results = self._results(body)
        except ValueError as exc:
            return _aws_error(400, "ValidationError", str(exc))
        start = int(body.get("NextToken") or 0)
        answer: dict[str, Any] = {"Messages": self.messages}
        if self.page_size is not None:
            # Page over the flattened points, one Id's points after another.
            flat = [(i, j) for i, r in enumerate(results) for j in range(len(r["Values"]))]
            chosen = flat[start : start + self.page_size]
            if start + self.page_size < len(flat):
                answer["NextToken"] = str(start + self.page_size)
            paged = []
            for index, result in enumerate(results):
                picks = [j for i, j in chosen if i == index]
                if picks or start == 0:
                    paged.append(
                        {
                            **result,
                            "Timestamps": [result["Timestamps"][j] for j in picks],
                            "Values": [result["Values"][j] for j in picks],
                        }
                    )
            results = paged
        answer["MetricDataResults"] = results
        return web.json_response(answer, content_type="application/x-amz-json-1.0")

    def _results(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        start, end = float(body["StartTime"]), float(body["EndTime"])
        ascending = body.get("ScanBy") == "TimestampAscending"
        series: dict[str, dict[float, float]] = {}
        queries = body["MetricDataQueries"]
        for query in queries:
            if "MetricStat" in query:
                series[query["Id"]] = self._metric_stat(query["MetricStat"], start, end)
        for query in queries:
            if "Expression" in query:
                series[query["Id"]] = _evaluate(query["Expression"], series)
        results = []
        for query in queries:
            if query.get("ReturnData", True) is False:
                continue
            points = sorted(series[query["Id"]].items(), reverse=not ascending)
            label = query.get("Label") or query["Id"]
            results.append(
                {
                    "Id": query["Id"],
                    "Label": label,
                    "StatusCode": "Complete",
                    "Timestamps": [t for t, _ in points],
                    "Values": [v for _, v in points],
                }
            )
        return results

    def _metric_stat(self, stat: dict[str, Any], start: float, end: float) -> dict[float, float]:
        metric = stat["Metric"]
        dims = tuple(sorted((d["Name"], d["Value"]) for d in metric.get("Dimensions", [])))
        points = self.data.get((metric.get("Namespace", ""), metric["MetricName"], dims), [])
        period = int(stat["Period"])
        buckets: dict[float, list[float]] = {}
        for stamp, value in points:
            if start <= stamp < end:
                bucket = start + period * int((stamp - start) // period)
                buckets.setdefault(bucket, []).append(value)
        reduce = _STATISTICS.get(stat["Stat"])
        if reduce is None:
            raise ValueError(f"statistic {stat['Stat']!r} is not served by this fake")
        return {bucket: reduce(values) for bucket, values in buckets.items()}


_STATISTICS: dict[str, Callable[[list[float]], float]] = {
    "Sum": sum,
    "Average": lambda v: sum(v) / len(v),
    "Minimum": min,
    "Maximum": max,
    "SampleCount": lambda v: float(len(v)),
}

_OPERATORS: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    # CloudWatch metric math: x / 0 is no data point, which we drop below.
    ast.Div: lambda a, b: a / b if b else math.nan,
}


def _evaluate(expression: str, series: dict[str, dict[float, float]]) -> dict[float, float]:
    """Metric math over query ids: arithmetic, point by point on common timestamps."""

    def walk(node: ast.AST) -> dict[float, float] | float:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.Name):
            if node.id not in series:
                raise ValueError(f"Unknown identifier {node.id!r} in expression")
            return series[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            op = _OPERATORS[type(node.op)]
            left, right = walk(node.left), walk(node.right)
            if isinstance(left, float) and isinstance(right, float):
                return op(left, right)
            stamps = set(left) if isinstance(left, dict) else set(right)  # type: ignore[arg-type]
            if isinstance(left, dict) and isinstance(right, dict):
                stamps &= set(right)
            out = {}
            for stamp in stamps:
                a = left[stamp] if isinstance(left, dict) else left
                b = right[stamp] if isinstance(right, dict) else right
                value = op(a, b)
                if not math.isnan(value):
                    out[stamp] = value
            return out
        raise ValueError(f"Unsupported expression {expression!r}")

    result = walk(ast.parse(expression, mode="eval"))
    if isinstance(result, float):
        raise ValueError(f"expression {expression!r} has no metric")
    return result


def _aws_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response(
        {"__type": code, "message": message},
        status=status,
        content_type="application/x-amz-json-1.0",
        headers={"x-amzn-query-error": f"{code};Sender"},
    )
