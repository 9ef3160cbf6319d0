"""The daemon's long-lived loops (deliverer, TTL collector, lease loop) outlive store errors.

The stores are the real SQLite and PostgreSQL stores, subclassed so that chosen calls
fail the way a busy database does ("database is locked") a given number of times, or
until cleared. Each test shows the loop goes on, logs every failure with its
exception through structlog, and that /readyz names a loop that is failing or dead.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator, Callable, Collection, MutableMapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
from structlog.testing import capture_logs

from analysisd.config import Settings
from analysisd.daemon import Daemon
from analysisd.outbox import CALLBACK_URL, COMPLETED_EVENT, MEASUREMENT_EVENT
from analysisd.store import SqliteStore
from analysisd.store.postgres import PostgresStore
from analysisd.store.records import OutboxRow, RunRecord
from tests.e2e.rig import Receiver, ScriptedSource, receiver, run_manifest, scripted_metric
from tests.e2e.rig import settings_for as rig_settings
from tests.rigs.postgres import scratch_schema

FOREVER = 10**9


class Fatal(BaseException):
    """Escapes `except Exception`: what kills a loop outright."""


class Faults:
    """Which store calls fail, how many more times, and with what."""

    def __init__(self) -> None:
        self.left: Counter[str] = Counter()
        self.raised: Counter[str] = Counter()
        self.errors: dict[str, Callable[[], BaseException]] = {}
        self.raising = asyncio.Event()  # set whenever a call fails

    def fail(
        self,
        method: str,
        times: int = FOREVER,
        error: Callable[[], BaseException] = lambda: sqlite3.OperationalError("database is locked"),
    ) -> None:
        self.left[method] = times
        self.errors[method] = error

    def clear(self, method: str) -> None:
        self.left[method] = 0

    def check(self, method: str) -> None:
        if self.left[method] > 0:
            self.left[method] -= 1
            self.raised[method] += 1
            self.raising.set()
            raise self.errors[method]()


class FlakySqliteStore(SqliteStore):
    """The real SQLite store; the deliverer's and TTL collector's calls fail on demand."""

    def __init__(self, path: Path, faults: Faults) -> None:
        super().__init__(path)
        self.faults = faults

    async def due_deliveries(
        self, now: float, limit: int = 100, *, skip: Collection[str] = ()
    ) -> list[OutboxRow]:
        self.faults.check("due_deliveries")
        return await super().due_deliveries(now, limit, skip=skip)

    async def next_delivery_at(self) -> float | None:
        self.faults.check("next_delivery_at")
        return await super().next_delivery_at()

    async def record_attempt(
        self,
        row: OutboxRow,
        *,
        state: str,
        at: float,
        next_attempt_at: float,
        status: int | None,
        error: str | None,
    ) -> None:
        self.faults.check("record_attempt")
        await super().record_attempt(
            row, state=state, at=at, next_attempt_at=next_attempt_at, status=status, error=error
        )

    async def completed_runs_with_ttl(self, limit: int = 1000) -> list[RunRecord]:
        self.faults.check("completed_runs_with_ttl")
        return await super().completed_runs_with_ttl(limit)


class FlakyPostgresStore(PostgresStore):
    """The real PostgreSQL store; lease renewal fails on demand."""

    def __init__(self, dsn: str, faults: Faults, *, owner: str, lease_seconds: float) -> None:
        super().__init__(dsn, owner=owner, lease_seconds=lease_seconds)
        self.faults = faults

    async def renew_leases(self) -> list[tuple[str, str]]:
        self.faults.check("renew_leases")
        return await super().renew_leases()


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    # Loops checked every 50 ms, so a few failed passes take well under a second.
    return rig_settings(tmp_path, **{"ttl_check_interval": 0.05, **overrides})


@asynccontextmanager
async def daemon_on(settings: Settings, store: Any) -> AsyncIterator[tuple[Daemon, str]]:
    daemon = Daemon(settings, source=ScriptedSource(), store=store)
    await daemon.start()
    try:
        yield daemon, f"http://127.0.0.1:{daemon.port}"
    finally:
        await daemon.aclose()


async def readyz(http: aiohttp.ClientSession, base: str) -> tuple[int, dict[str, Any]]:
    async with http.get(f"{base}/readyz") as resp:
        body: dict[str, Any] = await resp.json()
        return resp.status, body


async def until_readyz(http: aiohttp.ClientSession, base: str, status: int) -> dict[str, Any]:
    """Poll /readyz until it answers `status` (bounded, so a hang is a failure)."""
    async with asyncio.timeout(30):
        while True:
            code, body = await readyz(http, base)
            if code == status:
                return body
            await asyncio.sleep(0.02)


def leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner)]
    return [exc]


def failures_of(logs: Sequence[MutableMapping[str, Any]], loop: str) -> list[Any]:
    return [e for e in logs if e["event"] == "loop pass failed" and e.get("loop") == loop]


async def all_delivered(http: aiohttp.ClientSession, base: str, names: list[str]) -> None:
    async with asyncio.timeout(30):
        for name in names:
            url = f"{base}/api/v1/namespaces/ns/analysisruns/{name}/deliveries"
            while True:
                async with http.get(url) as resp:
                    items = (await resp.json())["items"]
                if items and {i["state"] for i in items} == {"delivered"}:
                    break
                await asyncio.sleep(0.02)


async def post_hooked_runs(
    http: aiohttp.ClientSession, base: str, rec: Receiver, names: list[str]
) -> None:
    for name in names:
        manifest = run_manifest(
            name, [scripted_metric(count=2)], annotations={CALLBACK_URL: rec.url}
        )
        async with http.post(f"{base}/api/v1/namespaces/ns/analysisruns", json=manifest) as r:
            assert r.status == 201, await r.text()


async def test_deliverer_outlives_a_locked_database_and_delivers_every_event(
    tmp_path: Path,
) -> None:
    faults = Faults()
    # Every call the deliverer makes fails twice first, as a locked database does;
    # next_delivery_at used to be outside the loop's try, so one failure ended it.
    for method in ("due_deliveries", "next_delivery_at", "record_attempt"):
        faults.fail(method, times=2)
    store = FlakySqliteStore(tmp_path / "analysisd.db", faults)
    names = ["r0", "r1", "r2"]
    with capture_logs() as logs:
        async with (
            receiver() as rec,
            daemon_on(settings_for(tmp_path), store) as (_, base),
            aiohttp.ClientSession() as http,
        ):
            async with asyncio.timeout(30):  # the idle deliverer's own calls fail first
                while faults.left["next_delivery_at"] or faults.left["due_deliveries"]:
                    faults.raising.clear()
                    await faults.raising.wait()
            await post_hooked_runs(http, base, rec, names)
            # Two measurements and one completion per run, each at least once.
            await rec.wait_for(lambda r: len(r.unique_ids()) == 9)
            await all_delivered(http, base, names)
            assert len(rec.unique_ids(COMPLETED_EVENT)) == 3
            assert len(rec.unique_ids(MEASUREMENT_EVENT)) == 6
            await until_readyz(http, base, 200)
    assert faults.raised == {"due_deliveries": 2, "next_delivery_at": 2, "record_attempt": 2}
    failed = failures_of(logs, "outbox-deliverer")
    errors = [leaf for event in failed for leaf in leaves(event["exc_info"])]
    # Each store error logged with its exception (two failed records may share a pass).
    assert len(errors) == 6
    assert all(isinstance(e, sqlite3.OperationalError) for e in errors)
    assert all("database is locked" in str(e) for e in errors)
    assert all(event["log_level"] == "error" for event in failed)


async def test_readyz_names_a_failing_deliverer_until_it_recovers(tmp_path: Path) -> None:
    faults = Faults()
    faults.fail("next_delivery_at")
    store = FlakySqliteStore(tmp_path / "analysisd.db", faults)
    async with (
        receiver() as rec,
        daemon_on(settings_for(tmp_path), store) as (_, base),
        aiohttp.ClientSession() as http,
    ):
        body = await until_readyz(http, base, 503)
        assert body["status"] == "unhealthy"
        assert list(body["loops"]) == ["outbox-deliverer"]
        assert body["loops"]["outbox-deliverer"].startswith("failing:")
        assert "locked" not in str(body)  # the error text stays in the log
        faults.clear("next_delivery_at")
        assert await until_readyz(http, base, 200) == {"status": "ready"}
        await post_hooked_runs(http, base, rec, ["after"])
        await rec.wait_for(lambda r: len(r.unique_ids(COMPLETED_EVENT)) == 1)


async def test_readyz_names_a_dead_deliverer_and_the_log_says_why(tmp_path: Path) -> None:
    faults = Faults()
    faults.fail("next_delivery_at", times=1, error=lambda: Fatal("escaped every handler"))
    store = FlakySqliteStore(tmp_path / "analysisd.db", faults)
    with capture_logs() as logs:
        async with (
            daemon_on(settings_for(tmp_path), store) as (_, base),
            aiohttp.ClientSession() as http,
        ):
            body = await until_readyz(http, base, 503)
            assert body["loops"]["outbox-deliverer"].startswith("dead:")
    died = [e for e in logs if e["event"] == "loop died"]
    assert len(died) == 1
    assert died[0]["loop"] == "outbox-deliverer"
    assert isinstance(died[0]["exc_info"], Fatal)


async def test_ttl_collector_outlives_store_errors_and_logs_them(tmp_path: Path) -> None:
    faults = Faults()
    faults.fail("completed_runs_with_ttl", times=3)
    store = FlakySqliteStore(tmp_path / "analysisd.db", faults)
    manifest = run_manifest("short-lived", [scripted_metric(value=1)])
    manifest["spec"]["ttlStrategy"] = {"secondsAfterCompletion": 0}
    with capture_logs() as logs:
        async with (
            daemon_on(settings_for(tmp_path), store) as (_, base),
            aiohttp.ClientSession() as http,
        ):
            async with http.post(
                f"{base}/api/v1/namespaces/ns/analysisruns", json=manifest
            ) as resp:
                assert resp.status == 201
            url = f"{base}/api/v1/namespaces/ns/analysisruns/short-lived"
            async with asyncio.timeout(30):
                while True:  # deleted by the collector once its store calls work again
                    async with http.get(url) as resp:
                        if resp.status == 404:
                            break
                    await asyncio.sleep(0.02)
    assert faults.raised["completed_runs_with_ttl"] == 3
    failed = failures_of(logs, "ttl-collector")
    assert [e["failures"] for e in failed] == [1, 2, 3]
    assert all(isinstance(e["exc_info"], sqlite3.OperationalError) for e in failed)
    assert any(e["event"] == "loop recovered" and e["loop"] == "ttl-collector" for e in logs)


async def test_lease_loop_outlives_store_errors_and_readyz_names_it(tmp_path: Path) -> None:
    faults = Faults()
    async with scratch_schema("loops") as schema:
        settings = replace(
            settings_for(tmp_path, ttl_check_interval=0), store=schema.url, lease_duration=0.3
        )
        store = FlakyPostgresStore(schema.url, faults, owner="loops-test", lease_seconds=0.3)
        with capture_logs() as logs:
            async with (
                daemon_on(settings, store) as (_, base),
                aiohttp.ClientSession() as http,
            ):
                faults.fail("renew_leases")
                body = await until_readyz(http, base, 503)
                assert list(body["loops"]) == ["lease-loop"]
                faults.clear("renew_leases")
                await until_readyz(http, base, 200)
    failed = failures_of(logs, "lease-loop")
    assert len(failed) >= 3
    assert all(isinstance(e["exc_info"], sqlite3.OperationalError) for e in failed)
    assert any(e["event"] == "loop recovered" and e["loop"] == "lease-loop" for e in logs)
