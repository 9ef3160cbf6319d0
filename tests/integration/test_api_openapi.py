"""The OpenAPI document and the router describe the same API; schemathesis finds no 5xx."""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.process import start_daemon
from tests.e2e.rig import ScriptedSource, running_daemon, settings_for

_METHODS = {"GET", "POST", "PUT", "DELETE", "PATCH"}


async def test_openapi_document_lists_exactly_the_routes_the_router_serves(tmp_path: Path) -> None:
    async with running_daemon(settings_for(tmp_path), ScriptedSource()) as (daemon, base):
        async with aiohttp.ClientSession() as s, s.get(f"{base}/openapi.json") as resp:
            assert resp.status == 200
            document = await resp.json()
        assert document["openapi"].startswith("3.")
        documented = {
            (method.upper(), path)
            for path, item in document["paths"].items()
            for method in item
            if method.upper() in _METHODS
        }
        assert daemon._runner is not None
        served = set()
        for route in daemon._runner.app.router.routes():
            if route.method not in _METHODS:
                continue
            info = route.resource.get_info() if route.resource else {}
            path = info.get("formatter") or info.get("path")
            if path == "/" or str(path).startswith("/ui"):  # pages for people, not the REST API
                continue
            served.add((route.method, re.sub(r"\{(\w+)\}", r"{\1}", str(path))))
        assert documented == served


async def test_every_documented_operation_has_an_id_and_error_schema(tmp_path: Path) -> None:
    from analysisd.api.openapi import build_openapi

    document = build_openapi()
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    for path, item in document["paths"].items():
        if path.startswith("/api/"):
            for op in item.values():
                assert "400" in op["responses"] or "404" in op["responses"], path


@pytest.mark.slow
async def test_schemathesis_finds_no_server_error_or_schema_violation(tmp_path: Path) -> None:
    cli = shutil.which("schemathesis") or shutil.which("st")
    if cli is None:
        pytest.skip("schemathesis CLI not installed")
    (tmp_path / "secrets").mkdir()
    daemon = await start_daemon(
        f"sqlite:///{tmp_path / 'st.db'}", tmp_path / "secrets", tmp_path / "daemon.log"
    )
    try:
        checks = ",".join(
            (
                "not_a_server_error",
                "response_schema_conformance",
                "status_code_conformance",
                "content_type_conformance",
            )
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{daemon.base}/openapi.json",
            "--checks",
            checks,
            "--max-examples",
            "10",
            "--seed",
            "1",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=str(tmp_path),
        )
        async with asyncio.timeout(120):
            out, _ = await proc.communicate()
        assert proc.returncode == 0, out.decode()[-4000:]
    finally:
        assert await daemon.terminate() == 0
    assert "unhandled error" not in (tmp_path / "daemon.log").read_text()
