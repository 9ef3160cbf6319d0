"""The daemon as a real subprocess (`python -m analysisd.cli serve`): kill -9 and SIGTERM tests."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

COMPLETED = frozenset({"Successful", "Failed", "Error", "Inconclusive"})


@dataclass
class DaemonProcess:
    process: asyncio.subprocess.Process
    log_path: Path
    base: str = ""

    async def kill9(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            return await self.process.wait()


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _tail(path: Path, offset: int) -> str:
    # Small reads of a local log file; blocking briefly is fine in a test helper.
    with path.open("rb") as handle:
        handle.seek(offset)
        return handle.read().decode("utf-8", "replace")


async def start_daemon(
    store: str | None,
    secrets_dir: Path,
    log_path: Path,
    *,
    config: Path | None = None,
    env: dict[str, str] | None = None,
) -> DaemonProcess:
    """Start `analysisd serve --port 0` and wait for its `serving` log line (with the port)."""
    args = [sys.executable, "-m", "analysisd.cli", "serve", "--host", "127.0.0.1", "--port", "0"]
    if store is not None:
        args += ["--store", store]
    args += ["--secrets-dir", str(secrets_dir)]
    if config is not None:
        args += ["--config", str(config)]
    env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
    # Only lines written by this process count (the log is shared across restarts).
    offset = _size(log_path)
    log_file = log_path.open("ab")
    try:
        process = await asyncio.create_subprocess_exec(
            *args, stdout=log_file, stderr=log_file, env=env, cwd=str(Path(__file__).parents[2])
        )
    finally:
        log_file.close()
    proc = DaemonProcess(process, log_path)
    async with asyncio.timeout(30):
        while not proc.base:
            if process.returncode is not None:
                raise RuntimeError(f"daemon exited {process.returncode}: {_tail(log_path, 0)}")
            for line in _tail(log_path, offset).splitlines():
                if '"serving"' in line:
                    event = json.loads(line)
                    if event.get("port"):
                        proc.base = f"http://127.0.0.1:{event['port']}"
            await asyncio.sleep(0.05)
    return proc


async def wait_all_completed(
    session: aiohttp.ClientSession, base: str, namespace: str, expected: int, limit: float = 120
) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/namespaces/{namespace}/analysisruns"
    async with asyncio.timeout(limit):
        while True:
            async with session.get(url) as resp:
                items: list[dict[str, Any]] = (await resp.json())["items"]
            done = [i for i in items if (i.get("status") or {}).get("phase") in COMPLETED]
            if len(done) == expected:
                return items
            await asyncio.sleep(0.1)
