"""A scratch schema per test in the real PostgreSQL (127.0.0.1:5432, database test).

Each test gets its own schema, dropped afterwards, so tests sharing the database never
see each other's tables; the store is pointed at it with ``?search_path=<schema>``
(asyncpg passes unknown DSN query parameters on as server settings).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from tests.rigs.peers import peer_missing

PG_DSN = os.environ.get("ANALYSISD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@dataclass(frozen=True)
class ScratchSchema:
    admin: Any  # an asyncpg connection outside the schema, for inspection
    name: str

    @property
    def url(self) -> str:
        return f"{PG_DSN}?search_path={self.name}"


async def connect_admin(dsn: str = PG_DSN) -> Any:
    """An asyncpg connection to `dsn`; a missing driver or server skips (fails under CI)."""
    try:
        import asyncpg
    except ImportError:
        peer_missing("asyncpg is not installed (pip install -e '.[postgres]')")
    try:
        return await asyncpg.connect(dsn, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        peer_missing(f"PostgreSQL not reachable at {dsn}: {exc}")


@asynccontextmanager
async def scratch_schema(prefix: str) -> AsyncIterator[ScratchSchema]:
    """Create a fresh schema; no PostgreSQL skips the test (fails it under CI)."""
    admin = await connect_admin()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    await admin.execute(f"CREATE SCHEMA {name}")
    try:
        yield ScratchSchema(admin, name)
    finally:
        await admin.execute(f"DROP SCHEMA {name} CASCADE")
        await admin.close()
