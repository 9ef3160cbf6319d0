"""One daemon per SQLite file: an OS lock on `<db>.lock`, naming its holder.

SQLite's own locks only serialise writes; two daemons on one file would both
resume and run every stored run (each measurement taken twice). The lock is
flock(2) on a sidecar file, so the kernel releases it when the holder exits,
even by `kill -9`, and no stale lock is ever left to clean up. The holder
writes its pid and host into the file, so the refusal says who holds it.
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path

from analysisd.store.base import StoreError


class StoreLocked(StoreError):
    """Another process holds the store's lock; the message names it."""


class FileLock:
    """An exclusive, non-blocking flock on `path`, held until release()."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, what: str) -> None:
        """Take the lock or raise StoreLocked naming the holder's pid and host."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise StoreLocked(
                f"{what} is in use by another analysisd ({holder}; lock file {self.path}); "
                "one daemon per SQLite file — use PostgreSQL for several replicas"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        # Ours now: say who we are (truncate first: a shorter record than the last one).
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid={os.getpid()} host={socket.gethostname()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        # The file stays: removing it would let a third process lock a new inode
        # while a second still waits on the old one.
        fd, self._fd = self._fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 256, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "holder unknown"
