"""`analysisd run` end to end: a real aiohttp server on 127.0.0.1, the real Web provider.

The CLI runs as a subprocess (its own event loop, exit code, stdout) while the
server runs in the test's loop. Error cases set consecutiveErrorLimit 0 so one
Error measurement decides the run (Argo retries errors only every 10 s).
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SECRET_TOKEN = "tok-9f3a-very-secret"
LONG_BODY = "internal boom " + "x" * 5000


@dataclass
class Server:
    url: str
    hits: dict[str, int]


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    hits: dict[str, int] = {}

    def count(request: web.Request) -> int:
        hits[request.path] = hits.get(request.path, 0) + 1
        return hits[request.path]

    async def healthy(request: web.Request) -> web.Response:
        count(request)
        return web.json_response({"data": {"rate": 0.99}})

    async def degrading(request: web.Request) -> web.Response:
        # Healthy for two requests, then the error rate climbs.
        n = count(request)
        return web.json_response({"data": {"rate": 0.99 if n <= 2 else 0.5}})

    async def slow(request: web.Request) -> web.Response:
        count(request)
        await asyncio.sleep(5)
        return web.json_response({"data": {"rate": 0.99}})

    async def boom(request: web.Request) -> web.Response:
        count(request)
        return web.Response(status=500, text=LONG_BODY)

    async def not_json(request: web.Request) -> web.Response:
        count(request)
        return web.Response(text="<html>definitely not json</html>")

    async def empty(request: web.Request) -> web.Response:
        count(request)
        return web.Response(body=b"", content_type="application/json")

    async def echo_auth(request: web.Request) -> web.Response:
        count(request)
        auth = request.headers.get("Authorization", "")
        return web.Response(status=503, text=f"upstream rejected credentials {auth}")

    app = web.Application()
    for path, handler in {
        "/healthy": healthy,
        "/degrading": degrading,
        "/slow": slow,
        "/boom": boom,
        "/notjson": not_json,
        "/empty": empty,
        "/auth": echo_auth,
    }.items():
        app.router.add_get(path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield Server(f"http://127.0.0.1:{port}", hits)
    finally:
        await runner.cleanup()


def template(
    url: str,
    *,
    count: int = 1,
    interval: str | None = None,
    limits: dict[str, Any] | None = None,
    web_extra: dict[str, Any] | None = None,
    args: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    metric: dict[str, Any] = {
        "name": "success-rate",
        "count": count,
        "successCondition": "result >= 0.95",
        "provider": {"web": {"url": url, "jsonPath": "{$.data.rate}", **(web_extra or {})}},
        **(limits or {}),
    }
    if interval:
        metric["interval"] = interval
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "web-check"},
        "spec": {"args": args or [], "metrics": [metric]},
    }


@dataclass
class Outcome:
    code: int
    run: dict[str, Any]
    stderr: str

    @property
    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = self.run["status"]
        return status

    @property
    def metric(self) -> dict[str, Any]:
        result: dict[str, Any] = self.status["metricResults"][0]
        return result

    @property
    def last_message(self) -> str:
        message: str = self.metric["measurements"][-1].get("message", "")
        return message


async def analysisd_run(tmp_path: Path, doc: dict[str, Any], *extra: str) -> Outcome:
    path = tmp_path / "template.yaml"
    path.write_text(yaml.safe_dump(doc))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "analysisd.cli",
        "run",
        str(path),
        "-o",
        "json",
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=str(REPO),
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    assert out, f"no output; stderr: {err.decode()}"
    return Outcome(proc.returncode, json.loads(out), err.decode())


async def test_healthy_series_ends_successful_after_count_measurements(
    server: Server, tmp_path: Path
) -> None:
    doc = template(f"{server.url}/healthy", count=3, interval="100ms")
    result = await analysisd_run(tmp_path, doc)
    assert result.code == 0, result.stderr
    assert result.status["phase"] == "Successful"
    assert result.metric["count"] == 3 and result.metric["successful"] == 3
    assert [m["value"] for m in result.metric["measurements"]] == ["0.99"] * 3
    assert server.hits["/healthy"] == 3
    assert "success-rate: Successful" in result.stderr  # plain progress lines off a TTY


async def test_unhealthy_series_fails_once_failures_exceed_the_limit(
    server: Server, tmp_path: Path
) -> None:
    doc = template(f"{server.url}/degrading", count=6, interval="100ms", limits={"failureLimit": 1})
    result = await analysisd_run(tmp_path, doc)
    assert result.code == 1, result.stderr
    assert result.status["phase"] == "Failed"
    # Successful, Successful, Failed, Failed: the second failure exceeds failureLimit 1.
    assert [m["phase"] for m in result.metric["measurements"]] == [
        "Successful",
        "Successful",
        "Failed",
        "Failed",
    ]
    assert result.status["message"] == (
        'Metric "success-rate" assessed Failed due to failed (2) > failureLimit (1)'
    )
    assert server.hits["/degrading"] == 4


async def test_arg_values_reach_the_provider(server: Server, tmp_path: Path) -> None:
    doc = template("{{args.base}}/healthy", args=[{"name": "base"}])
    result = await analysisd_run(tmp_path, doc, "--arg", f"base={server.url}")
    assert result.code == 0, result.stderr
    assert server.hits["/healthy"] == 1


def one_error(url: str, **web_extra: Any) -> dict[str, Any]:
    return template(url, limits={"consecutiveErrorLimit": 0}, web_extra=web_extra)


async def test_timeout_is_an_error_naming_the_url(server: Server, tmp_path: Path) -> None:
    result = await analysisd_run(tmp_path, one_error(f"{server.url}/slow", timeoutSeconds=1))
    assert result.code == 2, result.stderr
    assert result.status["phase"] == "Error"
    assert result.metric["measurements"][0]["phase"] == "Error"
    assert f"{server.url}/slow" in result.last_message
    assert "within 1s" in result.last_message


async def test_connection_refused_is_an_error_naming_the_url(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/metrics"
    result = await analysisd_run(tmp_path, one_error(url))
    assert result.code == 2, result.stderr
    assert result.status["phase"] == "Error"
    assert url in result.last_message or f"127.0.0.1:{port}" in result.last_message


async def test_server_error_names_url_status_and_truncated_body(
    server: Server, tmp_path: Path
) -> None:
    result = await analysisd_run(tmp_path, one_error(f"{server.url}/boom"))
    assert result.code == 2, result.stderr
    message = result.last_message
    assert f"{server.url}/boom" in message
    assert "500" in message
    assert "internal boom" in message
    assert len(message) < len(LONG_BODY)
    assert result.status["message"].startswith(
        'Metric "success-rate" assessed Error due to consecutiveErrors (1) > '
        "consecutiveErrorLimit (0)"
    )


async def test_non_json_body_is_an_error_of_the_condition(server: Server, tmp_path: Path) -> None:
    # Argo master (PR #4770): a non-JSON body is the result as a string, and the
    # numeric condition cannot compare it.
    result = await analysisd_run(tmp_path, one_error(f"{server.url}/notjson"))
    assert result.code == 2, result.stderr
    measurement = result.metric["measurements"][0]
    assert measurement["phase"] == "Error"
    assert measurement["value"] == "<html>definitely not json</html>"
    assert "successCondition" in result.last_message


async def test_empty_body_is_an_error_of_the_condition(server: Server, tmp_path: Path) -> None:
    result = await analysisd_run(tmp_path, one_error(f"{server.url}/empty"))
    assert result.code == 2, result.stderr
    measurement = result.metric["measurements"][0]
    assert measurement["phase"] == "Error"
    assert measurement.get("value", "") == ""
    assert "successCondition" in result.last_message


async def test_json_path_miss_is_an_error(server: Server, tmp_path: Path) -> None:
    doc = one_error(f"{server.url}/healthy", jsonPath="{$.data.latency}")
    result = await analysisd_run(tmp_path, doc)
    assert result.code == 2, result.stderr
    assert result.metric["measurements"][0]["phase"] == "Error"
    assert "latency" in result.last_message


async def test_secret_header_value_is_redacted_from_messages(
    server: Server, tmp_path: Path
) -> None:
    secrets = tmp_path / "secrets" / "web-token"
    secrets.mkdir(parents=True)
    (secrets / "token").write_text(SECRET_TOKEN)
    doc = one_error(
        f"{server.url}/auth",
        headers=[{"key": "Authorization", "value": "Bearer {{args.token}}"}],
    )
    doc["spec"]["args"] = [
        {"name": "token", "valueFrom": {"secretKeyRef": {"name": "web-token", "key": "token"}}}
    ]
    result = await analysisd_run(tmp_path, doc, "--secrets-dir", str(tmp_path / "secrets"))
    assert result.code == 2, result.stderr
    assert f"{server.url}/auth" in result.last_message
    assert "503" in result.last_message
    assert "upstream rejected credentials *****" in result.last_message
    assert SECRET_TOKEN not in json.dumps(result.run)
    assert SECRET_TOKEN not in result.stderr


async def test_ctrl_c_terminates_an_indefinite_run_gracefully(
    server: Server, tmp_path: Path
) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(yaml.safe_dump(template(f"{server.url}/healthy", count=0, interval="100ms")))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "analysisd.cli",
        "run",
        str(path),
        "-o",
        "json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=str(REPO),
    )
    assert proc.stderr is not None
    # Wait for the first measurement's progress line, then interrupt.
    while b"success-rate: Successful" not in await asyncio.wait_for(proc.stderr.readline(), 60):
        pass
    proc.send_signal(signal.SIGINT)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    run = json.loads(out)
    assert proc.returncode == 130  # interrupted is not a pass, whatever the phase
    assert run["status"]["phase"] == "Successful"
    assert run["status"]["message"] == "Run Terminated"
    assert run["status"]["metricResults"][0]["count"] >= 1
