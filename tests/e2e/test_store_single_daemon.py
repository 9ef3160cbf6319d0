"""One daemon per SQLite file: a second `analysisd serve` on the same file is refused,
naming the holder (two real processes)."""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

from tests.e2e.process import start_daemon


async def test_second_daemon_on_one_sqlite_file_is_refused_naming_the_holder(
    tmp_path: Path,
) -> None:
    store = f"sqlite:///{tmp_path / 'analysisd.db'}"
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    first = await start_daemon(store, secrets, tmp_path / "first.log")
    try:
        second = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "analysisd.cli", "serve", "--host", "127.0.0.1", "--port", "0"),
            *("--store", store, "--secrets-dir", str(secrets)),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=str(Path(__file__).parents[2]),
        )
        async with asyncio.timeout(60):
            _, err = await second.communicate()
        message = err.decode()
        assert second.returncode == 2, message
        assert f"pid={first.process.pid}" in message
        assert f"host={socket.gethostname()}" in message
        assert "in use by another analysisd" in message
    finally:
        assert await first.terminate() == 0
    # The holder gone (lock released by the kernel), the file is free again.
    again = await start_daemon(store, secrets, tmp_path / "again.log")
    await again.kill9()
    # Even after kill -9 nothing stale is left behind: the kernel dropped the lock.
    after_kill = await start_daemon(store, secrets, tmp_path / "after.log")
    assert await after_kill.terminate() == 0
