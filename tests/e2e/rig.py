"""Test rig for the daemon: an in-process daemon on an ephemeral port, a webhook receiver.

Importable from tests/integration too. Everything binds 127.0.0.1 port 0.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aiohttp import web

from analysisd.config import Settings
from analysisd.daemon import Daemon
from analysisd.outbox import SIGNATURE_HEADER, verify
from providers.base import ProviderError, Reading

# Scripted blocks are Web blocks that pass the door (admission parses them); the
# ScriptedSource answers them, so this address is never contacted.
SCRIPTED_URL = "http://scripted.invalid/"


class ScriptedSource:
    """A MeasurementSource whose provider block says what to return: {"value": x} or
    {"error": "message"}; `values` (a list) yields one item per call, then repeats the last."""

    def __init__(self) -> None:
        self.calls = 0
        self._positions: dict[str, int] = {}

    async def measure(self, kind: str, config: Mapping[str, Any]) -> Reading:
        self.calls += 1
        if "error" in config:
            raise ProviderError(str(config["error"]), provider=kind)
        if "values" in config:
            key = json.dumps(config, sort_keys=True)
            i = self._positions.get(key, 0)
            self._positions[key] = i + 1
            values = config["values"]
            value = values[min(i, len(values) - 1)]
        else:
            value = config.get("value")
        return Reading(result=value, value=str(value))


@dataclass
class Delivery:
    headers: Mapping[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data

    def signed_with(self, key: str) -> bool:
        return verify(self.body, key, self.headers.get(SIGNATURE_HEADER, ""))


@dataclass
class Receiver:
    """A real webhook receiver; `status` is what it answers (503 = down)."""

    url: str = ""
    status: int = 200
    deliveries: list[Delivery] = field(default_factory=list)
    refused: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def by_type(self, event_type: str) -> list[Delivery]:
        return [d for d in self.deliveries if d.event["type"] == event_type]

    def unique_ids(self, event_type: str | None = None) -> set[str]:
        return {
            d.event["id"]
            for d in self.deliveries
            if event_type is None or d.event["type"] == event_type
        }

    async def wait_for(self, predicate: Any, limit: float = 30.0) -> None:
        async with asyncio.timeout(limit):
            while not predicate(self):
                self.arrived.clear()
                await self.arrived.wait()


@asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        if rec.status >= 300:
            rec.refused += 1
            rec.arrived.set()
            return web.Response(status=rec.status, text="down for maintenance")
        rec.deliveries.append(Delivery(dict(request.headers), body))
        rec.arrived.set()
        return web.Response(status=rec.status)

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    rec.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield rec
    finally:
        await runner.cleanup()


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    base = Settings(
        host="127.0.0.1",
        port=0,
        store=f"sqlite:///{tmp_path / 'analysisd.db'}",
        secrets_dir=str(tmp_path / "secrets"),
        shutdown_grace=5.0,
        webhook_backoff_base=0.05,
        webhook_backoff_max=0.2,
        webhook_poll_interval=0.05,
        webhook_timeout=2.0,
    )
    return replace(base, **overrides)


def write_secret(tmp_path: Path, name: str, key: str, value: str, namespace: str = "ns") -> None:
    """A secret of `namespace` in the daemon's layout: secrets/<namespace>/<name>/<key>."""
    folder = tmp_path / "secrets" / namespace / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / key).write_text(value)


@asynccontextmanager
async def running_daemon(
    settings: Settings, source: Any | None = None
) -> AsyncIterator[tuple[Daemon, str]]:
    daemon = Daemon(settings, source=source)
    await daemon.start()
    try:
        yield daemon, f"http://127.0.0.1:{daemon.port}"
    finally:
        await daemon.aclose()


def run_manifest(
    name: str,
    metrics: list[dict[str, Any]],
    *,
    annotations: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    args: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"metrics": metrics}
    if args:
        spec["args"] = args
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {
            "name": name,
            "labels": dict(labels or {}),
            "annotations": dict(annotations or {}),
        },
        "spec": spec,
    }


def scripted_metric(
    name: str = "m", *, count: int = 1, interval: str = "50ms", **provider: Any
) -> dict[str, Any]:
    metric: dict[str, Any] = {
        "name": name,
        "count": count,
        "successCondition": "result < 10",
        "provider": {"web": {"url": SCRIPTED_URL, **(provider or {"value": 1})}},
    }
    if count > 1:
        metric["interval"] = interval
    return metric
