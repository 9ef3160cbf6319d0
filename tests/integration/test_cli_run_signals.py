"""`analysisd run` interrupted or cut off: exit 130/143 with the status so far, and a
closed stdout costs the output, never a traceback or the exit code.

Real subprocesses of the CLI measure a real aiohttp endpoint on 127.0.0.1. The
endpoint answers the first request and holds every later one until the test ends,
so a signal sent once the second request arrives lands mid-measurement, after
exactly one measurement was recorded (the next is only scheduled from the first's
finishedAt): the partial status is known exactly.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Endpoint:
    url: str = ""
    hits: int = 0
    second_hit: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def endpoint() -> AsyncIterator[Endpoint]:
    ep = Endpoint()

    async def handle(request: web.Request) -> web.Response:
        ep.hits += 1
        if ep.hits >= 2:
            ep.second_hit.set()
            await ep.release.wait()  # in flight when the signal comes
        return web.json_response({"data": {"rate": 0.99}})

    app = web.Application()
    app.router.add_get("/rate", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    ep.url = f"http://127.0.0.1:{runner.addresses[0][1]}/rate"
    try:
        yield ep
    finally:
        ep.release.set()
        await runner.cleanup()


def write_template(tmp_path: Path, url: str, *, count: int, interval: str = "100ms") -> Path:
    doc: dict[str, Any] = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "gate"},
        "spec": {
            "metrics": [
                {
                    "name": "success-rate",
                    "count": count,
                    "interval": interval,
                    "successCondition": "result >= 0.95",
                    "provider": {"web": {"url": url, "jsonPath": "{$.data.rate}"}},
                }
            ]
        },
    }
    path = tmp_path / "template.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


async def start_run(path: Path, *extra: str, stdout: Any = asyncio.subprocess.PIPE) -> Any:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "analysisd.cli",
        "run",
        str(path),
        *extra,
        stdout=stdout,
        stderr=asyncio.subprocess.PIPE,
        cwd=str(REPO),
    )


async def interrupt_mid_run(
    endpoint: Endpoint, tmp_path: Path, signum: signal.Signals, *extra: str
) -> tuple[int, bytes, str]:
    """Start an endless run, signal it while its second measurement is in flight."""
    path = write_template(tmp_path, endpoint.url, count=0)  # count 0: until terminated
    proc = await start_run(path, *extra)
    try:
        async with asyncio.timeout(60):
            await endpoint.second_hit.wait()
        proc.send_signal(signum)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out, err.decode()


def assert_partial_status(run: dict[str, Any]) -> None:
    status = run["status"]
    assert status["message"] == "Run Terminated"
    (metric,) = status["metricResults"]
    # The first measurement is there; the one in flight was dropped.
    assert metric["count"] == 1
    assert [m["phase"] for m in metric["measurements"]] == ["Successful"]
    assert metric["measurements"][0]["value"] == "0.99"


async def test_sigint_mid_run_exits_130_and_prints_the_status_so_far(
    endpoint: Endpoint, tmp_path: Path
) -> None:
    code, out, err = await interrupt_mid_run(endpoint, tmp_path, signal.SIGINT, "-o", "json")
    assert code == 130, err
    assert_partial_status(json.loads(out))
    assert "interrupted by SIGINT" in err
    assert "Traceback" not in err


async def test_sigterm_mid_run_exits_143_and_prints_the_status_so_far(
    endpoint: Endpoint, tmp_path: Path
) -> None:
    code, out, err = await interrupt_mid_run(endpoint, tmp_path, signal.SIGTERM, "-o", "yaml")
    assert code == 143, err
    assert_partial_status(yaml.safe_load(out))
    assert "interrupted by SIGTERM" in err
    assert "Traceback" not in err


async def test_sigint_with_stdout_already_closed_still_exits_130_without_a_traceback(
    endpoint: Endpoint, tmp_path: Path
) -> None:
    path = write_template(tmp_path, endpoint.url, count=0)
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will ever read: every write to stdout fails with EPIPE
    try:
        proc = await start_run(path, "-o", "json", stdout=write_end)
    finally:
        os.close(write_end)
    async with asyncio.timeout(60):
        await endpoint.second_hit.wait()
    proc.send_signal(signal.SIGINT)
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 130, err.decode()
    assert b"Traceback" not in err and b"BrokenPipeError" not in err


async def test_finished_run_with_stdout_closed_keeps_the_verdicts_exit_code(
    tmp_path: Path,
) -> None:
    async def rate(request: web.Request) -> web.Response:
        return web.json_response({"data": {"rate": 0.5}})  # fails the condition

    app = web.Application()
    app.router.add_get("/rate", rate)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/rate"
        path = write_template(tmp_path, url, count=2)
        read_end, write_end = os.pipe()
        os.close(read_end)
        try:
            proc = await start_run(path, "-o", "json", stdout=write_end)
        finally:
            os.close(write_end)
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        await runner.cleanup()
    assert proc.returncode == 1, err.decode()  # Failed, as if the output had been read
    assert b"Traceback" not in err and b"BrokenPipeError" not in err


async def test_piped_into_head_gives_one_line_and_no_traceback(tmp_path: Path) -> None:
    async def rate(request: web.Request) -> web.Response:
        return web.json_response({"data": {"rate": 0.99}})

    app = web.Application()
    app.router.add_get("/rate", rate)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/rate"
        path = write_template(tmp_path, url, count=3)
        # The shell's pipeline as a user types it; the exit status is analysisd's.
        script = (
            f"{sys.executable} -m analysisd.cli run {path} -o json | head -1; "
            'exit "${PIPESTATUS[0]}"'
        )
        proc = await asyncio.create_subprocess_exec(
            "bash",
            "-c",
            script,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=str(REPO),
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        await runner.cleanup()
    assert proc.returncode == 0, err.decode()
    assert out == b"{\n"
    assert b"Traceback" not in err and b"BrokenPipeError" not in err


@pytest.mark.parametrize("command", [[], ["run"], ["lint"], ["judge"], ["serve"]])
def test_every_entry_answers_version(command: list[str]) -> None:
    from analysisd import __version__

    done = subprocess.run(
        [sys.executable, "-m", "analysisd.cli", *command, "--version"],
        capture_output=True,
        text=True,
        cwd=str(REPO),
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"analysisd {__version__}"
