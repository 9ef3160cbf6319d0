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

import pytest

PG_DSN = os.environ.get("ANALYSISD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@dataclass(frozen=True)
class ScratchSchema:
    admin: Any  # an asyncpg connection outside the schema, for inspection
    name: str

    @property
    def url(self) -> str:
        return f"{PG_DSN}?search_path={self.name}"


@asynccontextmanager
async def scratch_schema(prefix: str) -> AsyncIterator[ScratchSchema]:
    """Create a fresh schema; skip the test when PostgreSQL cannot be reached."""
    asyncpg = pytest.importorskip("asyncpg")
    try:
        admin = await asyncpg.connect(PG_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_DSN}: {exc}")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    await admin.execute(f"CREATE SCHEMA {name}")
    try:
        yield ScratchSchema(admin, name)
    finally:
        await admin.execute(f"DROP SCHEMA {name} CASCADE")
        await admin.close()
